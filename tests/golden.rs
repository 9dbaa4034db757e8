//! Drop-in compatibility: our server against the reference proxy's golden answers.
//!
//! The simulator serves the same fixtures the goldens were captured from (`--frozen`), the server
//! polls it over real TLS, and every route of the golden MANIFEST is fetched over real HTTP and
//! compared as `tests/golden/VOLATILE.json` says. Where we deliberately differ (spec
//! `proxy-compat.md` §10), the expectation is adjusted here, with the reason.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::Fixture;

fn golden_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn manifest(dir: &str) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(golden_dir(dir).join("MANIFEST.json")).unwrap();
    match json::parse(&text).unwrap() {
        Value::Object(m) => m.into_iter().collect(),
        _ => panic!("manifest is not an object"),
    }
}

/// Removes the value at a `/`-separated pointer (`*` = any key).
fn remove_pointer(v: &mut Value, parts: &[&str]) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let Value::Object(m) = v else { return };
    if rest.is_empty() {
        if *first == "*" {
            *m = json::Map::new();
        } else {
            m.remove(first);
        }
        return;
    }
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        if *first == "*" || k == *first {
            if let Some(child) = m.get_mut(&k) {
                remove_pointer(child, rest);
            }
        }
    }
}

/// Removes the rule's `ignore` pointers from both documents.
fn remove_ignored(rule: &Value, golden: &mut Value, ours: &mut Value) {
    for p in rule
        .get("ignore")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let parts: Vec<&str> = p
            .as_str()
            .unwrap()
            .trim_start_matches('/')
            .split('/')
            .collect();
        remove_pointer(golden, &parts);
        remove_pointer(ours, &parts);
    }
}

/// Every key path of a JSON document (`/a/b`), for key-set comparisons.
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m.iter() {
            let p = format!("{prefix}/{k}");
            out.insert(p.clone());
            key_paths(child, &p, out);
        }
    }
}

/// Same structure, same key order, same kinds; floats equal within 1e-6 relative.
fn structurally_equal(a: &Value, b: &Value, at: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            let tol = 1e-6 * x.abs().max(y.abs()).max(1e-12);
            if (x - y).abs() <= tol || (x.is_nan() && y.is_nan()) {
                Ok(())
            } else {
                Err(format!("{at}: {x} != {y}"))
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            if kx != ky {
                return Err(format!(
                    "{at}: keys differ:\n  golden {kx:?}\n  ours   {ky:?}"
                ));
            }
            for (k, vx) in x.iter() {
                structurally_equal(vx, y.get(k).unwrap(), &format!("{at}/{k}"))?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{at}: {} items != {}", x.len(), y.len()));
            }
            for (i, (vx, vy)) in x.iter().zip(y).enumerate() {
                structurally_equal(vx, vy, &format!("{at}/{i}"))?;
            }
            Ok(())
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{at}: {} != {}", a.to_py(), b.to_py())),
    }
}

fn sorted_set(v: &Value) -> Vec<String> {
    let mut items: Vec<String> = match v {
        Value::Array(a) => a.iter().map(Value::to_py).collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_py()))
            .collect(),
        other => vec![other.to_py()],
    };
    items.sort();
    items
}

struct Rules {
    volatile: Value,
}

impl Rules {
    fn load() -> Rules {
        let text = std::fs::read_to_string(golden_dir("VOLATILE.json")).unwrap();
        Rules {
            volatile: json::parse(&text).unwrap(),
        }
    }

    /// Compares one body; `Ok(true)` = byte-identical, `Ok(false)` = equal under the rules.
    fn compare(&self, route: &str, golden: &str, ours: &str) -> Result<bool, String> {
        if golden == ours {
            return Ok(true);
        }
        let rule = self.volatile.get(route).cloned();
        let kind = rule
            .as_ref()
            .and_then(|r| r.get("compare"))
            .and_then(Value::as_str)
            .unwrap_or("exact");
        let parse = |s: &str, who: &str| {
            json::parse(s).map_err(|e| format!("{who} body is not JSON ({e}): {s:.200}"))
        };
        match kind {
            "keyset" => {
                let rule = rule.unwrap();
                let rule = if route == "/stats/clear" {
                    self.volatile.get("/stats").cloned().unwrap()
                } else {
                    rule
                };
                let (mut g, mut o) = (parse(golden, "golden")?, parse(ours, "our")?);
                remove_ignored(&rule, &mut g, &mut o);
                let (mut kg, mut ko) = (BTreeSet::new(), BTreeSet::new());
                key_paths(&g, "", &mut kg);
                key_paths(&o, "", &mut ko);
                // Extra keys are allowed in /stats and /health (spec proxy-compat §10.8).
                let missing: Vec<_> = kg.difference(&ko).collect();
                if !missing.is_empty() {
                    return Err(format!("missing keys {missing:?}"));
                }
                for p in rule
                    .get("stable")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let p = p.as_str().unwrap().trim_start_matches('/');
                    let parts: Vec<&str> = p.split('/').collect();
                    let pick = |v: &Value| -> Vec<(String, Value)> {
                        if parts.last() == Some(&"*") {
                            let base = v.path(&parts[..parts.len() - 1]);
                            base.and_then(Value::as_object)
                                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                                .unwrap_or_default()
                        } else if parts.len() == 3 && parts[1] == "*" {
                            v.get(parts[0])
                                .and_then(Value::as_object)
                                .map(|m| {
                                    m.iter()
                                        .map(|(k, x)| {
                                            (
                                                k.clone(),
                                                x.get(parts[2]).cloned().unwrap_or_default(),
                                            )
                                        })
                                        .collect()
                                })
                                .unwrap_or_default()
                        } else {
                            vec![(p.to_string(), v.path(&parts).cloned().unwrap_or_default())]
                        }
                    };
                    for (k, gv) in pick(&g) {
                        let ov = pick(&o)
                            .into_iter()
                            .find(|(ok, _)| *ok == k)
                            .map(|(_, v)| v);
                        if ov.as_ref() != Some(&gv) {
                            return Err(format!(
                                "stable value {p}:{k}: golden {} ours {:?}",
                                gv.to_py(),
                                ov.map(|v| v.to_py())
                            ));
                        }
                    }
                }
                Ok(false)
            }
            "json" => {
                let rule = rule.unwrap();
                let (mut g, mut o) = (parse(golden, "golden")?, parse(ours, "our")?);
                remove_ignored(&rule, &mut g, &mut o);
                for p in rule
                    .get("set_pointers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let k = p.as_str().unwrap().trim_start_matches('/');
                    let (gs, os) = (g.get(k).map(sorted_set), o.get(k).map(sorted_set));
                    if gs != os {
                        return Err(format!("{k}: {gs:?} != {os:?}"));
                    }
                    remove_pointer(&mut g, &[k]);
                    remove_pointer(&mut o, &[k]);
                }
                structurally_equal(&g, &o, "")?;
                Ok(g.to_py() == o.to_py())
            }
            "set" => {
                let (g, o) = (parse(golden, "golden")?, parse(ours, "our")?);
                if sorted_set(&g) == sorted_set(&o) {
                    Ok(false)
                } else {
                    Err(format!("sets differ: {golden} / {ours}"))
                }
            }
            _ => {
                // Exact by default; a JSON body equal within float tolerance is reported, not failed.
                let (g, o) = (json::parse(golden), json::parse(ours));
                match (g, o) {
                    (Ok(g), Ok(o)) => structurally_equal(&g, &o, "").map(|_| false),
                    _ => Err(format!("golden {golden:?}\n   ours {ours:?}")),
                }
            }
        }
    }
}

/// Our deliberate differences from the proxy: (golden route, route whose golden we match).
fn expectation(route: &str) -> &str {
    match route {
        // Query strings are ignored for matching (proxy-compat §10.1).
        "/aggregates?x=1" => "/aggregates",
        "/api/troubleshooting/problems?x=1" => "/api/troubleshooting/problems",
        r => r,
    }
}

fn run_dir(dir: &str, app: &pypowerwall_server::app::App, skip: &[&str]) {
    let rules = Rules::load();
    let agent = agent();
    let entries = manifest(dir);
    let map: std::collections::HashMap<String, Value> = entries.iter().cloned().collect();
    let mut failures = Vec::new();
    let mut tolerated = Vec::new();
    let mut exact = 0;
    for (key, entry) in &entries {
        let (method, route) = match key.split_once(' ') {
            Some((m, r)) => (m.to_string(), r.to_string()),
            None => ("GET".to_string(), key.clone()),
        };
        if skip.contains(&route.as_str()) {
            continue;
        }
        let want_entry = map.get(expectation(key)).unwrap_or(entry);
        let file = want_entry.get("file").and_then(Value::as_str).unwrap();
        let golden = std::fs::read_to_string(golden_dir(dir).join(file)).unwrap();
        let want_status = want_entry.get("status").and_then(Value::as_i64).unwrap();
        let want_ct = want_entry
            .get("content_type")
            .and_then(Value::as_str)
            .unwrap();
        let body = (method == "POST").then_some(if route == "/control/reserve" {
            "value=20&token=x"
        } else {
            ""
        });
        let got = fetch(
            &agent,
            &method,
            &format!("http://{}{}", app.addr(), route),
            body,
        );
        if got.status as i64 != want_status {
            failures.push(format!(
                "{key}: status {} != golden {want_status}",
                got.status
            ));
            continue;
        }
        if got.content_type != want_ct {
            failures.push(format!(
                "{key}: content type {:?} != golden {want_ct:?}",
                got.content_type
            ));
            continue;
        }
        let rule_route = expectation(&route);
        match rules.compare(rule_route, &golden, &got.body) {
            Ok(true) => exact += 1,
            Ok(false) => tolerated.push(key.clone()),
            Err(e) => failures.push(format!("{key}: {e}")),
        }
    }
    eprintln!(
        "{dir}: {exact} byte-identical, {} equal under VOLATILE rules: {tolerated:?}",
        tolerated.len()
    );
    assert!(
        failures.is_empty(),
        "{dir}: {} routes differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pw2_tedapi_matches_the_reference_proxy() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    run_dir("tedapi", &app, &[]);
    app.stop();
}

/// The TEDAPI queries and the customer login for the gateway's own aggregates take turns on one
/// keep-alive connection (issue 20: a second connection per gateway cost ~17 KiB of buffers).
#[test]
fn tedapi_and_the_gateways_own_aggregates_share_one_connection() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[("PW_CACHE_EXPIRE", "1")]);
    wait_online(&app);
    assert!(
        wait_for(Duration::from_secs(20), || sim.stats().api >= 3),
        "the gateway's own aggregates were fetched: {:?}",
        sim.stats()
    );
    let stats = sim.stats();
    assert!(stats.status >= 3 && stats.login == 1, "{stats:?}");
    assert_eq!(sim.connections_accepted(), 1, "{stats:?}");
    app.stop();
}

#[test]
fn pw3_tedapi_matches_the_reference_proxy() {
    let sim = start_sim(Fixture::Pw3, true);
    let app = start_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    run_dir("pw3-tedapi", &app, &[]);
    app.stop();
}

#[test]
fn pw2_local_matches_the_reference_proxy() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    // PW_PASSWORD alone: TEDAPI is tried first, refused, and local mode is chosen.
    let app = start_local_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    run_dir("local", &app, &[]);
    app.stop();
}

#[test]
fn local_outage_gives_the_reference_failure_bodies() {
    let mut sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let app = start_local_server(
        &sim.addr().to_string(),
        &[
            ("PW_CACHE_EXPIRE", "1"),
            ("PW_CACHE_TTL", "2"),
            ("PW_TIMEOUT", "1"),
        ],
    );
    wait_online(&app);
    let stats = json::parse(&get(&app, "/stats").body).unwrap();
    assert_eq!(stats.get("mode").and_then(Value::as_str), Some("Local"));
    sim.stop();
    assert!(wait_for(Duration::from_secs(10), || get(
        &app,
        "/aggregates"
    )
    .body
        == "null"));
    // /stats and /health: same keys, but this run's PW_CACHE_* differ from the capture's.
    run_dir("local-outage", &app, &["/stats", "/health"]);
    let stats = json::parse(&get(&app, "/stats").body).unwrap();
    for (k, v) in [("mode", "Local"), ("tedapi_mode", "off")] {
        assert_eq!(stats.get(k).and_then(Value::as_str), Some(v), "{k}");
    }
    assert_eq!(stats.get("site_name"), Some(&Value::Null));
    app.stop();
}

#[test]
fn outage_serves_last_good_then_failure_bodies_then_recovers() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(
        &sim.addr().to_string(),
        &[
            ("PW_CACHE_EXPIRE", "1"),
            ("PW_CACHE_TTL", "3"),
            ("PW_TIMEOUT", "1"),
        ],
    );
    wait_online(&app);
    let live = get(&app, "/aggregates").body;

    // The gateway stops answering: last-good data for up to PW_CACHE_TTL …
    sim_get(&sim, "/test/fault/timeout");
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        get(&app, "/aggregates").body,
        live,
        "last-good data within PW_CACHE_TTL"
    );
    // … then the failure bodies of the reference proxy.
    assert!(wait_for(Duration::from_secs(10), || get(
        &app,
        "/aggregates"
    )
    .body
        == "null"));
    assert!(
        t0.elapsed() <= Duration::from_secs(3) + Duration::from_secs(4),
        "failure bodies too late: {:?}",
        t0.elapsed()
    );
    run_dir(
        "local-outage",
        &app,
        // TEDAPI is our mode, so /tedapi/* answer `null` instead of "TEDAPI not enabled".
        &[
            "/tedapi",
            "/tedapi/config",
            "/tedapi/status",
            "/tedapi/components",
            "/tedapi/battery",
            "/tedapi/controller",
            "/stats",
            "/health",
        ],
    );
    assert_eq!(get(&app, "/tedapi/config").body, "null");

    // Recovery on the first good tick after the fault clears.
    sim_get(&sim, "/test/fault/none");
    assert!(wait_for(Duration::from_secs(15), || get(
        &app,
        "/aggregates"
    )
    .body
        == live));
    app.stop();
}
