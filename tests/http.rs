//! HTTP behaviour of the drop-in server: HTTPS, the base-URL prefix, HEAD, keep-alive, query
//! strings, POST answers and limits, CORS, secrets in /stats, /health when every gateway is down.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::Fixture;
use pypowerwall_server::wire::tls;

#[test]
fn https_prefix_head_keepalive_and_queries() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(
        &sim.addr().to_string(),
        &[("PW_HTTPS", "yes"), ("PROXY_BASE_URL", "/pp")],
    );
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .tls_config(tls::gateway_client_config(None))
        .build();
    let url = |p: &str| format!("https://{}{}", app.addr(), p);
    assert!(wait_for(Duration::from_secs(10), || {
        fetch(&agent, "GET", &url("/aggregates"), None).body != "null"
    }));
    let plain = fetch(&agent, "GET", &url("/aggregates"), None);
    let prefixed = fetch(&agent, "GET", &url("/pp/aggregates"), None);
    let query = fetch(&agent, "GET", &url("/pp/aggregates?x=1"), None);
    assert_eq!(plain.body, prefixed.body);
    assert_eq!(plain.body, query.body);
    assert!(plain
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("access-control-allow-origin") && v == "*"));
    let head = fetch(&agent, "HEAD", &url("/aggregates"), None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let len = head
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.clone());
    assert_eq!(len, Some(plain.body.len().to_string()));
    app.stop();
}

#[test]
fn keep_alive_post_rules_and_masked_secrets() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(
        &sim.addr().to_string(),
        &[("PW_CONTROL_SECRET", "TopSecret42")],
    );
    wait_online(&app);

    // Two requests on one connection (HTTP/1.1 keep-alive, Content-Length on both).
    let mut s = TcpStream::connect(app.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for path in ["/soe", "/version"] {
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut len = 0;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        assert!(!body.is_empty());
    }

    let agent = agent();
    let url = |p: &str| format!("http://{}{}", app.addr(), p);
    let post = |p: &str, body: &str| fetch(&agent, "POST", &url(p), Some(body));
    let got = post("/api/login/Basic", "");
    assert_eq!(
        (got.status, got.body.as_str()),
        (400, r#"{"error": "Invalid Request"}"#)
    );
    let big = "value=1&token=".to_string() + &"x".repeat(5000);
    let got = post("/control/reserve", &big);
    assert_eq!(got.status, 400);

    // The secret is shown masked, never in clear.
    let stats = fetch(&agent, "GET", &url("/stats"), None).body;
    let v = json::parse(&stats).unwrap();
    assert_eq!(
        v.path(&["config", "PW_GW_PWD"]).and_then(Value::as_str),
        Some("********")
    );
    assert_eq!(
        v.path(&["config", "PW_CONTROL_SECRET"])
            .and_then(Value::as_str),
        Some("********")
    );
    for p in [
        "/stats",
        "/help",
        "/health",
        "/api/gateways",
        "/api/gateways/default",
    ] {
        let b = fetch(&agent, "GET", &url(p), None).body;
        assert!(!b.contains("TopSecret42") && !b.contains(GW_PWD), "{p}");
    }
    app.stop();
}

#[test]
fn health_is_503_when_no_gateway_has_data() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = start_server(&format!("127.0.0.1:{port}"), &[("PW_TIMEOUT", "1")]);
    assert!(wait_for(Duration::from_secs(5), || get(&app, "/health")
        .status
        == 503));
    let h = json::parse(&get(&app, "/health").body).unwrap();
    assert_eq!(h.get("status").and_then(Value::as_str), Some("unhealthy"));
    // The legacy failure bodies are served meanwhile.
    assert_eq!(get(&app, "/aggregates").body, "null");
    assert_eq!(get(&app, "/csv").body, "0.00,0.00,0.00,0.00,0.00\n");
    app.stop();
}
