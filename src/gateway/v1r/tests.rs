//! Tests of v1r: signing layout, the fault table, reply decoding, LAN/Wi-Fi failover, the
//! customer password.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::rsa_key::RsaKey;
use crate::config::{GatewayConfig, Mode};
use crate::gateway::proto::{
    bytes_to_sign, expires_at, Body, Envelope, Message, RoutableMessage, DOMAIN_ENERGY_DEVICE,
};
use crate::gateway::queries::QuerySet;
use crate::gateway::source::Fetch;
use crate::gateway::tedapi::{Client, Error, Expect, Reply};
use crate::gateway::Firmware;
use crate::secret::Secret;
use crate::wire::hex_lower as hex;

use super::*;

const TEST_KEY: &str = include_str!("../../../tests/fixtures/v1r/test_rsa_private.pem");
const TEST_PUB: &[u8] = include_bytes!("../../../tests/fixtures/v1r/test_rsa_public.der");
const DIN: &str = "1232100-00-E--TG123456789ABC";

#[test]
fn tlv_matches_appendix_a() {
    let env = config_envelope(DIN).encode();
    let tlv = bytes_to_sign(DIN, 0x6700_0000, &env).unwrap();
    let expect_head = format!("000107010107021c{}040467000000ff", hex(DIN.as_bytes()));
    assert_eq!(hex(&tlv), format!("{expect_head}{}", hex(&env)));
    assert!(hex(&tlv).ends_with("6a736f6e"));
    assert!(bytes_to_sign(&"D".repeat(256), 1, &env).is_err());
}

#[test]
fn expiry_is_ceil_now_plus_12() {
    assert_eq!(expires_at(1000.0), 1012);
    assert_eq!(expires_at(1000.2), 1013);
    assert_eq!(expires_at(f64::NAN), 12);
    assert_eq!(expires_at(1e20), u32::MAX);
}

#[test]
fn key_loads_signs_and_never_prints() {
    let key = RsaKey::from_pem(TEST_KEY).unwrap();
    assert_eq!(key.bits(), 4096);
    assert_eq!(key.public_der(), TEST_PUB);
    assert_eq!(key.fingerprint().len(), 64);
    let dbg = format!("{key:?}");
    assert!(!dbg.contains("PRIVATE") && dbg.contains(key.fingerprint()));
    let sig = key.sign(b"hello").unwrap();
    assert_eq!(sig.len(), 512);
    // PKCS#1 v1.5 is deterministic.
    assert_eq!(sig, key.sign(b"hello").unwrap());
    for bad in [
        "",
        "hello",
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    ] {
        assert!(RsaKey::from_pem(bad).is_err());
    }
    let e = RsaKey::load("/nonexistent/tedapi_rsa_private.pem").unwrap_err();
    assert!(e.contains("pypowerwall register"), "{e}");
}

#[test]
fn signed_request_layout() {
    let key = RsaKey::from_pem(TEST_KEY).unwrap();
    let env = config_envelope(DIN).encode();
    let uuid = uuid4();
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4");
    let bytes = signed_request(&key, DIN, &env, 1000.5, &uuid).unwrap();
    let m = RoutableMessage::decode(&bytes).unwrap();
    assert_eq!(m.to_domain, Some(DOMAIN_ENERGY_DEVICE));
    assert_eq!(m.payload, env);
    assert_eq!(m.expires_at, 1013);
    assert_eq!(m.public_key, TEST_PUB);
    assert_eq!(m.uuid, uuid.as_bytes());
    assert_eq!(
        m.signature,
        key.sign(&bytes_to_sign(DIN, 1013, &env).unwrap()).unwrap()
    );
    assert!(hex(&bytes).starts_with("32020807"));
}

fn reply(fault: i32, payload: &[u8]) -> Vec<u8> {
    RoutableMessage {
        fault,
        payload: payload.to_vec(),
        ..RoutableMessage::default()
    }
    .encode()
}

#[test]
fn fault_table() {
    let ok = Envelope::decode(&[]).unwrap().encode();
    assert_eq!(
        decode_reply(200, &reply(0, b"\x08\x01"), "fp"),
        Ok(vec![8, 1])
    );
    let _ = ok;
    assert_eq!(decode_reply(401, b"", "fp"), Err(Error::Auth));
    assert_eq!(decode_reply(403, b"", "fp"), Err(Error::Auth));
    assert_eq!(decode_reply(500, b"", "fp"), Err(Error::Http(500)));
    for (fault, text) in [
        (FAULT_UNKNOWN_KEY_ID, "UNKNOWN_KEY_ID"),
        (FAULT_TIME_EXPIRED, "TIME_EXPIRED"),
        (FAULT_TIMEOUT, "TIMEOUT"),
        (FAULT_INVALID_SIGNATURE, "INVALID_SIGNATURE"),
        (1, "BUSY"),
        (99, "UNKNOWN_FAULT"),
    ] {
        match decode_reply(200, &reply(fault, b"\x08\x01"), "abcd") {
            Err(Error::Rejected(why)) => assert!(why.contains(text), "{why}"),
            other => panic!("{fault}: {other:?}"),
        }
    }
    match decode_reply(200, &reply(FAULT_UNKNOWN_KEY_ID, b""), "abcd") {
        Err(Error::Rejected(why)) => assert!(why.contains("abcd")),
        other => panic!("{other:?}"),
    }
    for body in [
        reply(0, b"Authorization NOT verified"),
        b"authorization not verified".to_vec(),
    ] {
        match decode_reply(200, &body, "fp") {
            Err(Error::Rejected(why)) => assert!(why.contains("PENDING_VERIFICATION")),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        decode_reply(200, &reply(0, b""), "fp"),
        Err(Error::Rejected(_))
    ));
    assert!(matches!(
        decode_reply(200, b"\xff\xff\xff", "fp"),
        Err(Error::BadReply(_))
    ));
}

#[test]
fn inner_replies_and_fallbacks() {
    let env = Message::reply(
        DIN,
        Body::QueryResponse {
            status: 1,
            data: r#"{"a":1}"#.into(),
        },
    );
    let bare = env.envelope.encode();
    let full = env.encode();
    for bytes in [&bare, &full] {
        match decode_inner(bytes, Expect::Query) {
            Ok(Reply::Json(v)) => assert_eq!(v.to_py(), r#"{"a": 1}"#),
            other => panic!("{other:?}"),
        }
    }
    match decode_inner(b"xx{\"vin\": \"X\", \"b\": {}}yy", Expect::Config) {
        Ok(Reply::Json(v)) => {
            assert_eq!(v.to_py(), r#"{"vin": "X", "b": {}, "battery_blocks": []}"#)
        }
        other => panic!("{other:?}"),
    }
    assert!(decode_inner(b"no json", Expect::Query).is_err());
    assert_eq!(
        decode_inner(b"", Expect::Firmware),
        Ok(Reply::Firmware(Firmware::default()))
    );
    let mut seed = 0x2545_f491u32;
    for len in 0..300 {
        let bytes = crate::gateway::proto::noise(&mut seed, len);
        let _ = decode_reply(200, &bytes, "fp");
        for e in [
            Expect::Config,
            Expect::Query,
            Expect::QueryStrict,
            Expect::Firmware,
        ] {
            let _ = decode_inner(&bytes, e);
        }
    }
}

#[test]
fn three_lan_failures_switch_to_wifi_and_a_probe_switches_back() {
    use crate::gateway::tedapi::ClientOptions;
    use crate::sim::{self, Fault, Fixture, SimOptions};
    let gw_pwd = "ABCDEFGHIJ";
    let lan_sim = sim::start(SimOptions {
        fixture: Fixture::Pw3,
        gw_pwd: Some(gw_pwd.into()),
        frozen: true,
        v1r_public_key: Some(TEST_PUB.to_vec()),
        ..SimOptions::default()
    })
    .unwrap();
    let wifi_sim = sim::start(SimOptions {
        fixture: Fixture::Pw3,
        gw_pwd: Some(gw_pwd.into()),
        frozen: true,
        ..SimOptions::default()
    })
    .unwrap();
    let lan = V1rClient::new(V1rOptions {
        host: lan_sim.addr().to_string(),
        password: "FGHIJ".into(),
        key: Arc::new(RsaKey::from_pem(TEST_KEY).unwrap()),
        timeout: Duration::from_secs(5),
        pin: None,
        query_set: QuerySet::V2024_06,
    })
    .unwrap();
    let wifi = Client::new(ClientOptions::new(wifi_sim.addr().to_string(), gw_pwd)).unwrap();
    let mut t = Transport {
        id: "t".into(),
        lan,
        wifi: Some(wifi),
        leader: None,
        lan_failed: false,
        lan_fail_count: 0,
        lan_retry_at: None,
        wifi_fail_count: 0,
        wifi_retry_at: None,
    };
    let din = t.din().unwrap();
    assert!(t.status(&din).is_ok());
    assert_eq!(wifi_sim.stats().status, 0);
    // Followers only over Wi-Fi.
    let follower = "1707000-11-J--TG12000000002Z";
    assert!(t.components(follower, Some(&din)).is_ok());
    assert_eq!(wifi_sim.stats().components, 1);
    lan_sim.set_fault(Fault::Http500);
    for _ in 0..LAN_TRIP_AFTER {
        assert!(t.status(&din).is_err());
    }
    assert!(t.lan_failed);
    assert_eq!(t.lan_retry_at.map(|at| at > Instant::now()), Some(true));
    assert!(t.status(&din).is_ok());
    assert!(t.config(&din).is_ok());
    assert_eq!(wifi_sim.stats().status, 1);
    // The LAN is back; the probe runs once its time has come.
    lan_sim.set_fault(Fault::None);
    t.lan_retry_at = Some(Instant::now());
    assert!(t.status(&din).is_ok());
    assert!(!t.lan_failed);
    assert_eq!(wifi_sim.stats().status, 1);
}

#[test]
fn backoffs() {
    assert_eq!(backoff(0).as_secs(), 60);
    assert_eq!(backoff(3).as_secs(), 480);
    assert_eq!(backoff(7).as_secs(), 7680);
    assert_eq!(backoff(100).as_secs(), 7680);
}

#[test]
fn customer_password_is_the_end_of_gw_pwd() {
    let mut cfg = GatewayConfig {
        id: "x".into(),
        name: "x".into(),
        host: "h".into(),
        gw_pwd: Some("ABCDEFGHIJ".into()),
        password: None,
        poll_interval: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        tls_fingerprint: None,
        query_set: QuerySet::V2024_06,
        simulated: false,
        mode: Mode::V1r,
        email: String::new(),
        auth_mode: crate::config::AuthMode::Cookie,
        rsa_key_path: None,
        rsa_key: None,
        wifi_host: None,
        wifi_v1r_fallback: false,
        solar_only: false,
        timezone: None,
        cloud: None,
    };
    assert_eq!(customer_password(&cfg).as_deref(), Some("FGHIJ"));
    cfg.password = Some("pw".into());
    assert_eq!(customer_password(&cfg).as_deref(), Some("pw"));
    cfg.password = None;
    cfg.gw_pwd = Some("ÄBC".into());
    assert_eq!(customer_password(&cfg).as_deref(), Some("ÄBC"));
}

/// See: issue 14. A `PW_PASSWORD` that is not exactly 5 characters broke the v1r native
/// login: it was written into a `gw_pwd` field and its last 5 characters taken again.
#[test]
fn r14_native_login_uses_the_customer_password_as_given() {
    let key = include_str!("../../../tests/fixtures/v1r/test_rsa_private.pem");
    let key = Arc::new(RsaKey::from_pem(key).unwrap());
    for (password, gw_pwd, want) in [
        (Some("Secret-12345"), Some("ABCDEFGHIJ"), "Secret-12345"),
        (Some("abc"), None, "abc"),
        (None, Some("ABCDEFGHIJ"), "FGHIJ"),
    ] {
        let cfg = GatewayConfig {
            id: "x".into(),
            name: "x".into(),
            host: "127.0.0.1:9".into(),
            gw_pwd: gw_pwd.map(Secret::from),
            password: password.map(Secret::from),
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            tls_fingerprint: None,
            query_set: QuerySet::V2024_06,
            simulated: false,
            mode: Mode::V1r,
            email: String::new(),
            auth_mode: crate::config::AuthMode::Cookie,
            rsa_key_path: Some("test_rsa_private.pem".into()),
            rsa_key: Some(key.clone()),
            wifi_host: None,
            wifi_v1r_fallback: false,
            solar_only: false,
            timezone: None,
            cloud: None,
        };
        let link = V1r::new(cfg).connect().unwrap();
        let native = link.native().expect("a native fetcher");
        assert!(native.logs_in_with(want), "{password:?} / {gw_pwd:?}");
    }
}
