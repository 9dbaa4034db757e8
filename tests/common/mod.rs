//! Shared helpers for integration tests: start the simulator and the server on loopback, fetch.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pypowerwall_server::app::{self, App};
use pypowerwall_server::config::{self, CliOverrides};
use pypowerwall_server::json::Value;
use pypowerwall_server::sim::{self, Fixture, SimHandle, SimOptions};

pub const GW_PWD: &str = "ABCDEFGHIJ";

pub fn start_sim(fixture: Fixture, frozen: bool) -> SimHandle {
    sim::start(SimOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        fixture,
        gw_pwd: Some(GW_PWD.into()),
        password: None,
        frozen,
        gzip: false,
        cert_pem: None,
        key_pem: None,
        v1r_public_key: None,
        max_connections: sim::MAX_CONNECTIONS,
    })
    .expect("simulator starts")
}

/// The customer password of the local-mode goldens (`PW_PASSWORD=password`).
pub const CUSTOMER_PWD: &str = "password";

/// A simulator whose local login accepts `password` (the TEDAPI password stays [`GW_PWD`]).
pub fn start_sim_with_password(fixture: Fixture, frozen: bool, password: &str) -> SimHandle {
    sim::start(SimOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        fixture,
        gw_pwd: Some(GW_PWD.into()),
        password: Some(password.into()),
        frozen,
        ..SimOptions::default()
    })
    .expect("simulator starts")
}

/// Starts the server against `host` with extra environment variables.
pub fn start_server(host: &str, env: &[(&str, &str)]) -> App {
    start_server_env(host, &[("PW_GW_PWD", GW_PWD)], env)
}

/// Starts the server in local mode (`PW_PASSWORD` only, as the local goldens were captured).
pub fn start_local_server(host: &str, env: &[(&str, &str)]) -> App {
    start_server_env(host, &[("PW_PASSWORD", CUSTOMER_PWD)], env)
}

fn start_server_env(host: &str, base: &[(&str, &str)], env: &[(&str, &str)]) -> App {
    let mut vars: HashMap<String, String> = [
        ("PW_HOST", host),
        ("PW_BIND_ADDRESS", "127.0.0.1"),
        ("PW_PORT", "1"),
    ]
    .iter()
    .chain(base)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in env {
        vars.insert(k.to_string(), v.to_string());
    }
    let mut cfg =
        config::load(&|k| vars.get(k).cloned(), &CliOverrides::default()).expect("config");
    cfg.server.port = 0;
    app::start(cfg).expect("server starts")
}

pub struct Got {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
}

pub fn fetch(agent: &ureq::Agent, method: &str, url: &str, body: Option<&str>) -> Got {
    let req = agent.request(method, url);
    let res = match body {
        Some(b) => req
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(b),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let content_type = resp.header("Content-Type").unwrap_or("").to_string();
    let headers = resp
        .headers_names()
        .into_iter()
        .flat_map(|n| {
            resp.all(&n)
                .into_iter()
                .map(|v| (n.clone(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let body = resp.into_string().unwrap_or_default();
    Got {
        status,
        content_type,
        body,
        headers,
    }
}

pub fn get(app: &App, path: &str) -> Got {
    fetch(
        &agent(),
        "GET",
        &format!("http://{}{}", app.addr(), path),
        None,
    )
}

/// Waits until `cond` holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Waits for the first good poll of the default gateway.
pub fn wait_online(app: &App) {
    assert!(
        wait_for(Duration::from_secs(15), || get(app, "/aggregates").body
            != "null"),
        "server never got data from the gateway"
    );
}

/// GET on the simulator's HTTPS port (its certificate is self-signed, as a gateway's is).
pub fn sim_get(sim: &SimHandle, path: &str) -> Got {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .tls_config(pypowerwall_server::wire::tls::gateway_client_config(None))
        .build();
    fetch(
        &agent,
        "GET",
        &format!("https://{}{}", sim.addr(), path),
        None,
    )
}

/// Answers of the Python pypowerwall-server 0.13.0 (`../shared/peer/`), for shape checks.
pub const PEER: &str = "/work/shared/peer/pypowerwall-server-0.13.0";

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::Float(_) => "number",
        Value::Str(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `want` (0.13.0's answer) is in `got` with the same JSON type, recursively
/// (first elements of arrays; maps keyed by gateway id or device name compare an entry of the
/// same kind; a `null` in the sample matches anything).
pub fn same_shape(want: &Value, got: &Value, at: &str, by_id: bool) {
    shape(want, got, at, by_id, false)
}

/// [`same_shape`], where our `null` also matches anything of the sample's: values the
/// simulator's fixture does not have, when the keys and containers are what is checked.
pub fn same_keys(want: &Value, got: &Value, at: &str, by_id: bool) {
    shape(want, got, at, by_id, true)
}

fn shape(want: &Value, got: &Value, at: &str, by_id: bool, lenient: bool) {
    match (want, got) {
        (Value::Null, _) => {}
        (_, Value::Null) if lenient => {}
        (Value::Object(w), Value::Object(g)) if by_id => {
            // Keyed by data (gateway ids, device names): compare the first entry with ours of
            // the same kind (`TEPOD--…` with `TEPOD--…`), else with our first.
            if let Some((wk, wv)) = w.iter().next() {
                let kind = wk.split("--").next().unwrap_or(wk);
                let gv = g
                    .iter()
                    .find(|(k, _)| k.split("--").next() == Some(kind) && wk.contains("--"))
                    .or_else(|| g.iter().next())
                    .map(|(_, v)| v);
                if let Some(gv) = gv {
                    shape(wv, gv, &format!("{at}.<{kind}>"), false, lenient);
                }
            }
        }
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w.iter() {
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}: key {k} missing in {}", got.to_py()));
                let keyed = matches!(
                    k.as_str(),
                    "gateways" | "gateway_names" | "storage" | "vitals" | "temps"
                );
                shape(wv, gv, &format!("{at}.{k}"), keyed, lenient);
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if let (Some(wv), Some(gv)) = (w.first(), g.first()) {
                shape(wv, gv, &format!("{at}[0]"), false, lenient);
            }
        }
        (w, g) => assert_eq!(kind(w), kind(g), "{at}: {} vs {}", w.to_py(), g.to_py()),
    }
}
