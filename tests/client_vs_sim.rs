//! Our TEDAPI client against our simulator over real TLS on 127.0.0.1: every fixture, every
//! fault kind. Each fault gives a typed error within the time-out (or the documented `{}` for a
//! broken JSON payload), and the client recovers once the fault is cleared.

use std::time::{Duration, Instant};

use pypowerwall_server::gateway::tedapi::{Client, ClientOptions, Error};
use pypowerwall_server::json::Value;
use pypowerwall_server::sim::{self, Fault, Fixture, SimOptions};

const PWD: &str = "ABCDEFGHIJ";

fn sim(fixture: Fixture) -> sim::SimHandle {
    sim::start(SimOptions {
        gw_pwd: Some(PWD.into()),
        frozen: true,
        ..SimOptions::new(fixture)
    })
    .unwrap()
}

fn client(s: &sim::SimHandle, timeout: Duration) -> Client {
    let mut o = ClientOptions::new(s.addr().to_string(), PWD);
    o.timeout = timeout;
    let mut c = Client::new(o).unwrap();
    c.set_cooldown_period(Duration::from_millis(300));
    c
}

#[test]
fn every_fixture_reads_completely() {
    for (fixture, pw3) in [
        (Fixture::Pw2, false),
        (Fixture::Pw3, true),
        (Fixture::Demo, false),
    ] {
        let s = sim(fixture);
        let mut c = client(&s, Duration::from_secs(2));
        assert_eq!(c.detect_pw3().unwrap(), pw3, "{fixture:?}");
        let din = c.din().unwrap();
        assert_eq!(din, s.din());
        let config = c.config(&din).unwrap();
        assert_eq!(
            config.get("vin").and_then(Value::as_str),
            Some(din.as_str())
        );
        let status = c.status(&din).unwrap();
        assert!(
            status.path(&["control", "systemStatus"]).is_some(),
            "{fixture:?}"
        );
        assert!(c.controller(&din).unwrap().get("control").is_some());
        let fw = c.firmware(&din).unwrap();
        match fixture {
            Fixture::Pw2 => assert_eq!(fw.version, ""),
            Fixture::Pw3 => assert_eq!(fw.version, "25.10.1 7d8f0a8b"),
            Fixture::Demo => assert!(!fw.version.is_empty()),
        }
        if pw3 {
            let blocks = config
                .get("battery_blocks")
                .and_then(Value::as_array)
                .unwrap();
            for b in blocks {
                let bdin = b.get("vin").and_then(Value::as_str).unwrap();
                let comp = c.components(bdin, Some(&din)).unwrap();
                assert!(comp.path(&["components", "pch"]).is_some(), "{bdin}");
            }
        }
    }
}

#[test]
fn wrong_password_is_an_auth_error() {
    let s = sim(Fixture::Pw2);
    let mut o = ClientOptions::new(s.addr().to_string(), "WRONG-PASS");
    o.timeout = Duration::from_secs(2);
    let mut c = Client::new(o).unwrap();
    assert!(matches!(c.din(), Err(Error::Auth)));
}

#[test]
fn every_fault_is_a_typed_error_and_recovers() {
    let s = sim(Fixture::Pw2);
    let timeout = Duration::from_millis(800);
    let mut c = client(&s, timeout);
    let din = c.din().unwrap();
    for fault in [
        Fault::Timeout,
        Fault::Close,
        Fault::Http429,
        Fault::Http500,
        Fault::Http403,
        Fault::Garbage,
        Fault::Truncated,
        Fault::BadJson,
        Fault::BadGzip,
        Fault::HalfBody,
    ] {
        s.set_fault(fault);
        let t0 = Instant::now();
        let got = c.status(&din);
        let took = t0.elapsed();
        assert!(
            took < timeout + Duration::from_millis(700),
            "{fault:?} took {took:?}"
        );
        match (fault, &got) {
            (Fault::Timeout, Err(Error::Timeout)) => {}
            (Fault::Http429, Err(Error::Http(429))) => {
                // No gateway traffic during the cooldown.
                let before = s.stats().status;
                assert!(matches!(c.status(&din), Err(Error::Cooldown { .. })));
                assert_eq!(s.stats().status, before);
                std::thread::sleep(Duration::from_millis(350));
            }
            (Fault::Http500, Err(Error::Http(500))) => {}
            (Fault::Http403, Err(Error::Auth)) => {}
            // A broken JSON payload inside a good reply is `{}`, as pypowerwall does.
            (Fault::BadJson, Ok(v)) => assert_eq!(v, &Value::object()),
            (Fault::Close | Fault::HalfBody, Err(Error::Unreachable(_) | Error::BadReply(_))) => {}
            (Fault::Garbage | Fault::Truncated | Fault::BadGzip, Err(Error::BadReply(_))) => {}
            _ => panic!("{fault:?}: unexpected {got:?}"),
        }
        s.set_fault(Fault::None);
        let v = c
            .status(&din)
            .unwrap_or_else(|e| panic!("no recovery after {fault:?}: {e}"));
        assert!(v.get("control").is_some(), "after {fault:?}");
    }
}
