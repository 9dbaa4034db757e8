//! End-to-end tests of the gateway simulator over real TLS on 127.0.0.1.

use std::io::Read;
use std::time::Duration;

use pypowerwall_server::gateway::proto::{Body, Message, Participant};
use pypowerwall_server::gateway::queries::{QuerySet, SignedQueries};
use pypowerwall_server::json;
use pypowerwall_server::sim::{self, Fixture, SimHandle, SimOptions};
use pypowerwall_server::wire::tls;

const PW2: &str = "src/sim/fixtures/pw2";
const PW3: &str = "src/sim/fixtures/pw3";
const GW_PWD: &str = "ABCDEFGHIJ";
/// base64("Tesla_Energy_Device:ABCDEFGHIJ")
const GOOD_BASIC: &str = "Basic VGVzbGFfRW5lcmd5X0RldmljZTpBQkNERUZHSElK";
const LEADER: &str = "1707000-11-J--TG12000000001Z";
const FOLLOWER: &str = "1707000-11-J--TG12000000002Z";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fixture_text(path: &str) -> String {
    String::from_utf8(fixture(path)).unwrap()
}

fn start(fixture: Fixture, frozen: bool, gw_pwd: Option<&str>, gzip: bool) -> SimHandle {
    sim::start(SimOptions {
        frozen,
        gzip,
        gw_pwd: gw_pwd.map(str::to_string),
        ..SimOptions::new(fixture)
    })
    .unwrap()
}

struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

#[derive(Debug)]
struct Got {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Got {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl Client {
    fn new(sim: &SimHandle) -> Client {
        Client::with_timeout(sim, Duration::from_secs(5))
    }

    fn with_timeout(sim: &SimHandle, timeout: Duration) -> Client {
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls::gateway_client_config(None))
            .timeout(timeout)
            .build();
        Client {
            agent,
            base: sim.base_url(),
            auth: None,
        }
    }

    fn authed(mut self, header: &str) -> Client {
        self.auth = Some(header.to_string());
        self
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Got, String> {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.set("Authorization", a);
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let res = match body {
            Some(b) => req
                .set("Content-type", "application/octet-string")
                .send_bytes(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(e.to_string()),
        };
        let status = resp.status();
        let mut names = resp.headers_names();
        names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let headers = names
            .into_iter()
            .flat_map(|n| {
                resp.all(&n)
                    .into_iter()
                    .map(|v| (n.clone(), v.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut body = Vec::new();
        resp.into_reader()
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        Ok(Got {
            status,
            body,
            headers,
        })
    }

    fn get(&self, path: &str) -> Got {
        self.send("GET", path, &[], None).unwrap()
    }

    fn post(&self, path: &str, body: &[u8]) -> Got {
        self.send("POST", path, &[], Some(body)).unwrap()
    }

    /// POSTs a TEDAPI message to `/tedapi/v1` (or a follower route) and decodes the answer.
    fn tedapi(&self, din: &str, routed: Option<&str>, body: Body) -> Message {
        let (path, via) = match routed {
            Some(leader) => (format!("/tedapi/device/{din}/v1"), Some(leader)),
            None => ("/tedapi/v1".to_string(), None),
        };
        let got = self.post(&path, &Message::request(din, via, body).encode());
        assert_eq!(got.status, 200, "{path}: {}", got.text());
        Message::decode(&got.body).unwrap()
    }
}

fn queries() -> SignedQueries {
    SignedQueries::load(QuerySet::V2024_06).unwrap()
}

fn config_request() -> Body {
    Body::ReadFile {
        domain: 1,
        name: "config.json".into(),
    }
}

fn query_data(m: &Message) -> String {
    match &m.envelope.body {
        Body::QueryResponse { data, .. } => data.clone(),
        other => panic!("not a query response: {other:?}"),
    }
}

fn json_of(text: &str) -> json::Value {
    json::parse(text).unwrap()
}

fn power(status: &json::Value, location: &str) -> i64 {
    status
        .path(&["control", "meterAggregates"])
        .and_then(|a| a.as_array())
        .and_then(|a| {
            a.iter()
                .find(|m| m.get("location").and_then(|l| l.as_str()) == Some(location))
        })
        .and_then(|m| m.get("realPowerW"))
        .and_then(|v| v.as_i64())
        .unwrap()
}

/// `ISLAND_GridConnected` of a PW2-style status.
fn island(status: &json::Value) -> Option<&str> {
    status
        .path(&[
            "esCan",
            "bus",
            "ISLANDER",
            "ISLAND_GridConnection",
            "ISLAND_GridConnected",
        ])
        .and_then(|v| v.as_str())
}

#[test]
fn pw2_frozen_is_byte_exact_with_the_upstream_data() {
    let sim = start(Fixture::Pw2, true, None, false);
    let c = Client::new(&sim);
    let din = fixture_text(&format!("{PW2}/tedapi_din.txt"));
    let got = c.get("/tedapi/din");
    assert_eq!((got.status, got.text()), (200, din.clone()));

    let m = c.tedapi(&din, None, config_request());
    assert_eq!(m.tail, 1);
    assert_eq!(m.envelope.sender, Some(Participant::Din(din.clone())));
    assert_eq!(m.envelope.recipient, Some(Participant::Local(1)));
    match &m.envelope.body {
        Body::ReadFileResponse { name, blob, hash } => {
            assert_eq!(name, "config.json");
            assert_eq!(blob, &fixture(&format!("{PW2}/tedapi_config.json")));
            assert!(hash.is_empty(), "upstream sends no hash");
        }
        other => panic!("{other:?}"),
    }

    // Every query gets the one status document, whatever it asks.
    let status = fixture_text(&format!("{PW2}/tedapi_status.json"));
    let q = queries();
    for query in [q.basic, q.full, q.components] {
        let m = c.tedapi(&din, None, Body::Query(query));
        assert_eq!(query_data(&m), status);
    }

    // Firmware: a Message with only tail = 1, byte for byte.
    let fw = c.post(
        "/tedapi/v1",
        &Message::request(&din, None, Body::SystemInfoRequest).encode(),
    );
    assert_eq!(fw.body, [0x12, 0x02, 0x08, 0x01]);

    // Local API with the upstream auth rule.
    let anon = c.get("/api/meters/aggregates");
    assert_eq!(
        (anon.status, anon.text()),
        (401, fixture_text(&format!("{PW2}/unauthorized_401.json")))
    );
    let c = c.authed("Bearer anything");
    for (path, file) in [
        ("/api/meters/aggregates", "api.meters.aggregates.json"),
        ("/api/system_status/soe", "api.system_status.soe.json"),
        ("/api/status", "api.status.served.json"),
        ("/api/solar_powerwall", "api.solar_powerwall.json"),
        ("/api/devices/vitals", "devices_vitals.bin"),
    ] {
        let got = c.get(path);
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.body, fixture(&format!("{PW2}/{file}")), "{path}");
    }
    let unknown = c.get("/api/system_status");
    assert_eq!((unknown.status, unknown.body.len()), (200, 0));
    assert_eq!(unknown.header_all("Content-Type"), vec!["application/json"]);
    let root = c.get("/");
    assert_eq!(root.status, 200, "a PW2 answers GET / with 200");
    assert_eq!(
        Client::new(&sim).get("/").status,
        200,
        "even without credentials"
    );
}

#[test]
fn pw3_dispatch_follows_the_golden_rules() {
    let sim = start(Fixture::Pw3, true, Some(GW_PWD), false);
    let c = Client::new(&sim).authed(GOOD_BASIC);
    let root = c.get("/");
    assert_eq!(root.status, 403);
    assert!(root
        .text()
        .contains("User does not have adequate access rights"));
    assert_eq!(c.get("/tedapi/din").text(), LEADER);

    match c.tedapi(LEADER, None, config_request()).envelope.body {
        Body::ReadFileResponse { blob, hash, .. } => {
            assert_eq!(blob, fixture(&format!("{PW3}/tedapi_config.json")));
            assert_eq!(hash, [1, 2, 3, 4]);
        }
        other => panic!("{other:?}"),
    }
    let q = queries();
    let m = c.tedapi(LEADER, None, Body::Query(q.basic.clone()));
    assert_eq!(
        query_data(&m),
        fixture_text(&format!("{PW3}/tedapi_status.json"))
    );
    let m = c.tedapi(LEADER, None, Body::Query(q.full.clone()));
    assert_eq!(
        query_data(&m),
        fixture_text(&format!("{PW3}/tedapi_controller.json"))
    );
    for din in [LEADER, FOLLOWER] {
        let m = c.tedapi(din, Some(LEADER), Body::Query(q.components.clone()));
        assert_eq!(m.envelope.sender, Some(Participant::Din(din.to_string())));
        assert_eq!(
            query_data(&m),
            fixture_text(&format!("{PW3}/components_{din}.json"))
        );
    }
    let unknown = c.post(
        "/tedapi/device/2707000-11-J--TG12000000004Z/v1",
        &Message::request(
            "2707000-11-J--TG12000000004Z",
            Some(LEADER),
            Body::Query(q.components),
        )
        .encode(),
    );
    assert_eq!(unknown.status, 404);

    let fw = c.post(
        "/tedapi/v1",
        &Message::request(LEADER, None, Body::SystemInfoRequest).encode(),
    );
    assert_eq!(fw.body, fixture(&format!("{PW3}/firmware_response.bin")));

    // No local REST API on the PW3 fixture (the PW3 goldens have no native energy merge).
    assert_eq!(c.post("/api/login/Basic", b"password=FGHIJ").status, 404);
    let stats = sim.stats();
    assert_eq!(
        (
            stats.device_routed,
            stats.components,
            stats.status,
            stats.controller
        ),
        (3, 2, 1, 1)
    );
}

#[test]
fn gateway_password_is_checked_on_tedapi_only_when_configured() {
    let sim = start(Fixture::Pw2, true, Some(GW_PWD), false);
    let anon = Client::new(&sim);
    let got = anon.get("/tedapi/din");
    assert_eq!(got.status, 403);
    assert_eq!(
        got.text(),
        r#"{"code":403,"error":"Unable to GET to resource","message":"User does not have adequate access rights"}"#
    );
    let wrong = Client::new(&sim).authed("Basic VGVzbGFfRW5lcmd5X0RldmljZTp3cm9uZw==");
    assert_eq!(wrong.get("/tedapi/din").status, 403);
    assert_eq!(wrong.post("/tedapi/v1", b"").status, 403);
    let good = Client::new(&sim).authed(GOOD_BASIC);
    assert_eq!(good.get("/tedapi/din").status, 200);
    // The test surface needs no auth.
    assert_eq!(anon.get("/test/scenario").status, 200);

    // Without a configured password nothing is checked (as the upstream simulator).
    let open = start(Fixture::Pw2, true, None, false);
    assert_eq!(Client::new(&open).get("/tedapi/din").status, 200);
}

#[test]
fn gzip_bodies_without_content_encoding() {
    let sim = start(Fixture::Pw3, true, None, true);
    let c = Client::new(&sim);
    let gunzip = |b: &[u8]| {
        assert_eq!(&b[..2], [0x1f, 0x8b]);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let din = c.get("/tedapi/din");
    assert!(din.header_all("Content-Encoding").is_empty());
    assert_eq!(gunzip(&din.body), LEADER.as_bytes());
    let got = c.post(
        "/tedapi/v1",
        &Message::request(LEADER, None, Body::Query(queries().basic)).encode(),
    );
    let m = Message::decode(&gunzip(&got.body)).unwrap();
    assert_eq!(
        query_data(&m),
        fixture_text(&format!("{PW3}/tedapi_status.json"))
    );
    // Errors are not gzipped.
    assert_eq!(c.get("/").text().chars().next(), Some('{'));
}

#[test]
fn every_fault_is_observable_and_none_restores() {
    let sim = start(Fixture::Pw3, true, None, false);
    let control = Client::new(&sim);
    let config = Message::request(LEADER, None, config_request()).encode();
    let status = Message::request(LEADER, None, Body::Query(queries().basic)).encode();
    let set = |kind: &str| assert_eq!(control.get(&format!("/test/fault/{kind}")).status, 200);
    let fresh = || Client::with_timeout(&sim, Duration::from_millis(700));

    set("timeout");
    let t0 = std::time::Instant::now();
    assert!(fresh().send("GET", "/tedapi/din", &[], None).is_err());
    assert!(t0.elapsed() >= Duration::from_millis(600));
    assert_eq!(control.get("/test/fault").text(), r#"{"fault":"timeout"}"#);

    for kind in ["close", "halfbody"] {
        set(kind);
        assert!(
            fresh()
                .send("POST", "/tedapi/v1", &[], Some(&config))
                .is_err(),
            "{kind}"
        );
    }
    for (kind, code) in [("http429", 429), ("http500", 500), ("http403", 403)] {
        set(kind);
        assert_eq!(fresh().post("/tedapi/v1", &config).status, code, "{kind}");
    }
    set("garbage");
    let got = fresh().post("/tedapi/v1", &config);
    assert_eq!(got.status, 200);
    assert!(Message::decode(&got.body).is_err());
    set("truncated");
    let got = fresh().post("/tedapi/v1", &status);
    assert_eq!(got.status, 200);
    assert!(Message::decode(&got.body).is_err());
    set("badjson");
    let m = Message::decode(&fresh().post("/tedapi/v1", &status).body).unwrap();
    assert!(json::parse(&query_data(&m)).is_err());
    set("badgzip");
    let got = fresh().post("/tedapi/v1", &status);
    assert_eq!((got.status, &got.body[..2]), (200, &[0x1f, 0x8b][..]));
    let mut out = Vec::new();
    assert!(flate2::read::GzDecoder::new(&got.body[..])
        .read_to_end(&mut out)
        .is_err());
    // Faults stay on /tedapi/*: the local API and GET / are unaffected.
    assert_eq!(fresh().get("/").status, 403);

    // A counted fault hits the next n requests only.
    set("http500/2");
    assert_eq!(
        control.get("/test/fault").text(),
        r#"{"fault":"http500","remaining":2}"#
    );
    assert_eq!(fresh().post("/tedapi/v1", &status).status, 500);
    assert_eq!(fresh().post("/tedapi/v1", &status).status, 500);
    assert_eq!(fresh().post("/tedapi/v1", &status).status, 200);
    assert_eq!(control.get("/test/fault").text(), r#"{"fault":"none"}"#);
    sim.fail_next(sim::Fault::Http429, 1);
    assert_eq!(fresh().get("/tedapi/din").status, 429);
    assert_eq!(fresh().get("/tedapi/din").status, 200);

    set("none");
    let m = Message::decode(&fresh().post("/tedapi/v1", &status).body).unwrap();
    assert_eq!(
        query_data(&m),
        fixture_text(&format!("{PW3}/tedapi_status.json"))
    );
    assert_eq!(control.get("/test/fault/nonsense").status, 404);
}

#[test]
fn knobs_move_both_views() {
    let sim = start(Fixture::Pw2, true, None, false);
    let c = Client::new(&sim).authed("Bearer x");
    let din = sim.din();
    let tedapi_status = || {
        json_of(&query_data(&c.tedapi(
            din,
            None,
            Body::Query(queries().basic),
        )))
    };
    let local = |path: &str| json_of(&c.get(path).text());

    assert_eq!(c.get("/test/solar-power/1000").text(), "OK");
    let st = tedapi_status();
    assert_eq!(
        (
            power(&st, "SOLAR"),
            power(&st, "SITE"),
            power(&st, "BATTERY")
        ),
        (1000, 3400, -3500)
    );
    let agg = local("/api/meters/aggregates");
    assert_eq!(
        agg.path(&["solar", "instant_power"])
            .and_then(|v| v.as_i64()),
        Some(1000)
    );
    assert_eq!(
        agg.path(&["site", "instant_power"])
            .and_then(|v| v.as_i64()),
        Some(3400)
    );

    c.get("/test/battery-percentage/50");
    assert_eq!(
        c.get("/api/system_status/soe").text(),
        r#"{"percentage":52.5}"#
    );
    let st = tedapi_status();
    let remaining = st
        .path(&["control", "systemStatus", "nominalEnergyRemainingWh"])
        .and_then(|v| v.as_f64());
    assert_eq!(remaining, Some(14175.0));

    assert_eq!(
        c.get("/test/toggle-grid").text(),
        "Grid is now disconnected"
    );
    assert!(c
        .get("/api/system_status/grid_status")
        .text()
        .contains("SystemIslandedActive"));
    let st = tedapi_status();
    assert_eq!(island(&st), Some("ISLAND_GridConnected_Disconnected"));
    assert_eq!(power(&st, "SITE"), 0, "no grid power off grid");

    assert_eq!(c.get("/test/scenario/grid-charging").text(), "OK");
    assert_eq!(
        c.get("/test/scenario").text(),
        r#"{"active_scenario":"grid-charging"}"#
    );
    let st = tedapi_status();
    assert_eq!(
        (
            power(&st, "SOLAR"),
            power(&st, "LOAD"),
            power(&st, "BATTERY"),
            power(&st, "SITE")
        ),
        (0, 900, -300, 1200)
    );
    assert!(c
        .get("/api/system_status/grid_status")
        .text()
        .contains("SystemGridConnected"));
    assert_eq!(c.get("/test/scenario/nope").status, 404);

    // Frozen: nothing moves on its own between reads.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(tedapi_status().to_py(), st.to_py());

    assert_eq!(c.get("/test/reset").status, 200);
    assert_eq!(
        query_data(&c.tedapi(din, None, Body::Query(queries().basic))),
        fixture_text(&format!("{PW2}/tedapi_status.json"))
    );
}

#[test]
fn local_login_and_cookies() {
    let sim = start(Fixture::Pw2, true, Some(GW_PWD), false);
    let c = Client::new(&sim);
    assert_eq!(c.get("/api/status").status, 401);
    let form = b"username=customer&password=FGHIJ&email=nobody%40nowhere.com&clientInfo=timezone";
    let bad = c.post("/api/login/Basic", b"username=customer&password=nope");
    assert_eq!(bad.status, 401);
    let ok = c.post("/api/login/Basic", form);
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.text(),
        fixture_text(&format!("{PW2}/api.login.Basic.json"))
    );
    let cookies: Vec<String> = ok
        .header_all("Set-Cookie")
        .iter()
        .map(|s| s.to_string())
        .collect();
    let expected = fixture_text(&format!("{PW2}/login_set_cookie.txt"));
    assert_eq!(cookies, expected.lines().collect::<Vec<_>>());
    let cookie_header = cookies
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ");
    let got = c
        .send("GET", "/api/status", &[("Cookie", &cookie_header)], None)
        .unwrap();
    assert_eq!(got.body, fixture(&format!("{PW2}/api.status.served.json")));
    // Without a configured password any login works (upstream).
    let open = start(Fixture::Pw2, true, None, false);
    assert_eq!(Client::new(&open).post("/api/login/Basic", b"").status, 200);
}

#[test]
fn stats_count_requests_by_kind() {
    let sim = start(Fixture::Demo, true, None, false);
    let c = Client::new(&sim).authed("Bearer x");
    let q = queries();
    let din = sim.din();
    c.get("/tedapi/din");
    c.tedapi(din, None, config_request());
    c.tedapi(din, None, Body::Query(q.basic.clone()));
    c.tedapi(din, None, Body::Query(q.basic));
    c.tedapi(din, None, Body::Query(q.full));
    c.tedapi(din, None, Body::Query(q.components));
    c.tedapi(din, None, Body::SystemInfoRequest);
    c.post("/api/login/Basic", b"password=x");
    c.get("/api/meters/aggregates");
    c.get("/");
    let text = c.get("/test/stats").text();
    assert_eq!(
        text,
        r#"{"din":1,"config":1,"status":2,"controller":1,"components":1,"firmware":1,"device_routed":0,"login":1,"api":1,"other":1,"write":0,"total":10}"#
    );
    assert_eq!(sim.stats().status, 2);
    c.get("/test/stats/reset");
    assert_eq!(sim.stats().total, 0);
}

#[test]
fn demo_is_a_realistic_moving_home() {
    let sim = start(Fixture::Demo, false, None, false);
    let c = Client::new(&sim).authed("Bearer x");
    let din = sim.din();
    let q = queries();
    // A real firmware version.
    match c.tedapi(din, None, Body::SystemInfoRequest).envelope.body {
        Body::SystemInfoResponse(info) => assert_eq!(info.version, "24.44.1 a1b2c3d4"),
        other => panic!("{other:?}"),
    }
    let st = json_of(&query_data(&c.tedapi(din, None, Body::Query(q.basic))));
    assert_eq!(
        power(&st, "SITE") + power(&st, "BATTERY") + power(&st, "SOLAR"),
        power(&st, "LOAD")
    );
    assert_eq!(island(&st), Some("ISLAND_GridConnected_Connected"));
    // Full controller carries THC_AmbientTemp for each battery.
    let full = c.tedapi(din, None, Body::Query(q.full));
    assert_eq!(query_data(&full).matches("THC_AmbientTemp").count(), 2);
    // The local view is rendered from the same state: balanced too.
    let agg = json_of(&c.get("/api/meters/aggregates").text());
    let local = |s: &str| {
        agg.path(&[s, "instant_power"])
            .and_then(|v| v.as_i64())
            .unwrap()
    };
    assert_eq!(
        local("site") + local("battery") + local("solar"),
        local("load")
    );
    let soe = json_of(&c.get("/api/system_status/soe").text());
    let pct = soe.get("percentage").and_then(|v| v.as_f64()).unwrap();
    assert!((0.0..=100.0).contains(&pct));
}

#[test]
fn clock_jump_reaches_the_night() {
    let sim = start(Fixture::Demo, false, None, false);
    let c = Client::new(&sim);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // To 02:00 at the site (UTC-8).
    let hour = (unix / 3600.0 - 8.0).rem_euclid(24.0);
    let to_night = (26.0 - hour).rem_euclid(24.0) * 3600.0;
    assert_eq!(c.get(&format!("/test/advance/{to_night}")).status, 200);
    let st = json_of(&query_data(&c.tedapi(
        sim.din(),
        None,
        Body::Query(queries().basic),
    )));
    assert_eq!(power(&st, "SOLAR"), 0);
    let time = st
        .path(&["system", "time"])
        .and_then(|t| t.as_str())
        .unwrap();
    assert!(time.contains("T02:"), "{time}");
    assert_eq!(c.get("/test/advance/-1").status, 400);
}

#[test]
fn stop_closes_the_port() {
    let mut sim = start(Fixture::Demo, true, None, false);
    let addr = sim.addr();
    // A connection held open by a fault does not keep stop() waiting.
    sim.set_fault(sim::Fault::Timeout);
    let hanging = std::thread::spawn(move || {
        let c = ureq::AgentBuilder::new()
            .tls_config(tls::gateway_client_config(None))
            .timeout(Duration::from_secs(10))
            .build();
        c.get(&format!("https://{addr}/tedapi/din")).call().is_err()
    });
    std::thread::sleep(Duration::from_millis(300));
    let t0 = std::time::Instant::now();
    sim.stop();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(hanging.join().unwrap());
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn cli_arguments() {
    let args = |s: &[&str]| {
        pico_args::Arguments::from_vec(s.iter().map(std::ffi::OsString::from).collect())
    };
    let o = sim::parse_args(args(&[
        "--listen",
        "0.0.0.0:9443",
        "--fixture",
        "pw3",
        "--gw-pwd",
        "X",
        "--frozen",
        "--gzip",
    ]))
    .unwrap();
    assert_eq!(o.listen.port(), 9443);
    assert_eq!(o.fixture, Fixture::Pw3);
    assert_eq!(o.gw_pwd.as_deref(), Some("X"));
    assert!(o.frozen && o.gzip);
    let d = sim::parse_args(args(&[])).unwrap();
    assert_eq!(
        (d.fixture, d.listen.port(), d.frozen),
        (Fixture::Demo, 8443, false)
    );
    assert!(sim::parse_args(args(&["--fixture", "pw4"])).is_err());
    assert!(sim::parse_args(args(&["--cert", "x"])).is_err());
    assert!(sim::parse_args(args(&["--bogus"])).is_err());
}

#[test]
fn sim_help_is_the_simulators_own() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pypowerwall-server"))
        .args(["sim", "--help"])
        .output()
        .expect("the binary runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("usage: pypowerwall-server sim"),
        "sim --help printed: {text}"
    );
    assert!(text.contains("--fixture"));
}
