//! The PW2 local REST API (spec §4) as the upstream simulator serves it, and the non-TEDAPI
//! answers of a PW3 (`GET /` → 403, nothing else).
//!
//! Upstream rules kept here: a GET is authenticated by a cookie containing the magic login
//! substring or by *any* `Authorization` header, else 401 `Token Expired`; paths are matched
//! with their query string; unknown authenticated GETs answer 200 with an empty JSON body; any
//! POST other than the login answers 401. The login accepts any credentials unless a gateway
//! password is configured; then only the customer password (its last 5 characters) works.
//! One deliberate difference: `GET /` answers 200 without credentials too, as a real PW2's web
//! portal does (a client that gets anything else there takes the gateway for a PW3).

use super::data::{self, Site};
use super::http::{Request, Response};
use super::model::Model;
use super::render;
use super::tedapi::Kind;
use super::Fixture;
use crate::json::{self, Map, Value};

const LOGIN_FAILED_JSON: &str = r#"{"code":401,"error":"bad credentials","message":"Login Error"}"#;
const NOT_FOUND_JSON: &str = r#"{"code":404,"error":"Not Found","message":"Not Found"}"#;

/// Answers a request outside `/tedapi/` and `/test/`.
pub fn route(
    site: &Site,
    model: &Model,
    req: &Request,
    customer: Option<&str>,
    vitals: bool,
) -> (Kind, Response) {
    let kind = if req.path == "/api/login/Basic" {
        Kind::Login
    } else if req.path.starts_with("/api/") {
        Kind::Api
    } else {
        Kind::Other
    };
    if site.fixture == Fixture::Pw3 {
        // A PW3 has no web portal: clients detect it by this 403.
        let resp = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") => Response::json(403, data::ACCESS_DENIED_JSON),
            _ => Response::json(404, NOT_FOUND_JSON),
        };
        return (kind, resp);
    }
    let resp = match req.method.as_str() {
        "POST" if req.target == "/api/login/Basic" => login(req, customer),
        "POST" => Response::json(401, data::UNAUTHORIZED_JSON),
        // A PW2 serves its web portal on `/` to anyone; clients that get anything but 200
        // there take the gateway for a PW3. (Upstream wants an auth header even here.)
        "GET" if req.path == "/" => match site.fixture {
            Fixture::Demo => Response::new(
                200,
                "text/html",
                "<html><body>Tesla Energy Gateway (simulated)</body></html>",
            ),
            _ => Response::json(200, ""),
        },
        "GET" if !authenticated(req) => Response::json(401, data::UNAUTHORIZED_JSON),
        "GET" if req.target == "/api/devices/vitals" && !vitals => {
            // Firmware 23.44+ (upstream: `VITALS=""`).
            Response::json(404, NOT_FOUND_JSON)
        }
        "GET" => get(site, model, &req.target),
        _ => Response::text(501, "Unsupported method"),
    };
    (kind, resp)
}

fn authenticated(req: &Request) -> bool {
    req.header("Authorization").is_some()
        || req
            .header("Cookie")
            .is_some_and(|c| c.contains(data::MAGIC))
}

fn get(site: &Site, m: &Model, target: &str) -> Response {
    let body = match target {
        "/api/status" => status_json(site),
        "/api/meters/aggregates" => render::local_aggregates(site, m),
        "/api/system_status/soe" => render::local_soe(site, m),
        "/api/system_status/grid_status" => render::local_grid_status(m),
        "/api/devices/vitals" => {
            return Response::new(200, "application/octet-stream", data::VITALS_BIN)
        }
        "/api/system_status" if site.fixture == Fixture::Demo => system_status(site, m),
        "/api/operation" if site.fixture == Fixture::Demo => operation(site),
        _ => match data::LOCAL_STATIC.iter().find(|(p, _)| *p == target) {
            Some((_, body)) => body.to_string(),
            // Upstream answers what it does not know with an empty 200.
            None => String::new(),
        },
    };
    Response::json(200, body)
}

/// The customer password a login must carry: the configured one, else the last 5 characters of
/// the gateway password, else none (any login works). The derivation is the server's own
/// (`config::customer_password`), so the two cannot disagree.
pub fn customer_password(password: Option<&str>, gw_pwd: Option<&str>) -> Option<String> {
    let secret = |s: &str| crate::secret::Secret::new(s);
    crate::config::customer_password(password.map(secret).as_ref(), gw_pwd.map(secret).as_ref())
        .map(|s| s.expose().to_string())
}

fn login(req: &Request, customer: Option<&str>) -> Response {
    if let Some(customer) = customer {
        if login_password(req).as_deref() != Some(customer) {
            return Response::json(401, LOGIN_FAILED_JSON);
        }
    }
    let mut resp = Response::json(200, data::LOGIN_JSON);
    for cookie in data::LOGIN_SET_COOKIE.lines().filter(|l| !l.is_empty()) {
        resp = resp.with_header("Set-Cookie", cookie);
    }
    resp
}

/// The `password` of a form-encoded or JSON login body.
fn login_password(req: &Request) -> Option<String> {
    let body = String::from_utf8_lossy(&req.body);
    if body.trim_start().starts_with('{') {
        let v = json::parse(&body).ok()?;
        return v.get("password")?.as_str().map(str::to_string);
    }
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (url_decode(k) == "password").then(|| url_decode(v))
    })
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(x)) => {
                out.push(x);
                i += 2;
            }
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/api/status`: the upstream dict; the demo reports its firmware version.
fn status_json(site: &Site) -> String {
    if site.fixture != Fixture::Demo {
        return data::API_STATUS_SERVED.to_string();
    }
    let Ok(mut v) = json::parse(data::API_STATUS_SERVED) else {
        return data::API_STATUS_SERVED.to_string();
    };
    if let Some(map) = v.as_object_mut() {
        map.insert("version", data::DEMO_VERSION);
        map.insert("git_hash", "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678");
    }
    v.to_py()
}

/// Demo `/api/system_status`: the energy and island state of the model.
fn system_status(site: &Site, m: &Model) -> String {
    let config = json::parse(site.config_text).unwrap_or_default();
    let blocks: Vec<Value> = config
        .get("battery_blocks")
        .and_then(|b| b.as_array())
        .map(|blocks| {
            let n = blocks.len().max(1) as f64;
            blocks
                .iter()
                .map(|b| {
                    let din = b.get("vin").and_then(|v| v.as_str()).unwrap_or("");
                    let (part, serial) = din.split_once("--").unwrap_or((din, ""));
                    let full = b
                        .get("nominal_full_pack_energy")
                        .and_then(|v| v.as_f64())
                        .unwrap_or(13500.0);
                    Value::from(
                        Map::new()
                            .with("Type", "")
                            .with("PackagePartNumber", part)
                            .with("PackageSerialNumber", serial)
                            .with("disabled_reasons", Vec::<Value>::new())
                            .with("pinv_state", "PINV_GridFollowing")
                            .with("pinv_grid_state", "Grid_Compliant")
                            .with("nominal_energy_remaining", render::num(m.remaining(full)))
                            .with("nominal_full_pack_energy", render::num(full))
                            .with("p_out", render::num((m.battery / n).round()))
                            .with("off_grid", !m.grid_up)
                            .with("backup_ready", true),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let available = blocks.len();
    let doc = Map::new()
        .with("command_source", "Configuration")
        .with("nominal_full_pack_energy", render::num(m.full_wh))
        .with(
            "nominal_energy_remaining",
            render::num(m.remaining(m.full_wh)),
        )
        .with("max_charge_power", 10000)
        .with("max_discharge_power", 10000)
        .with("max_apparent_power", 10000)
        .with("grid_services_power", 0)
        .with("system_island_state", render::island_state(m))
        .with("available_blocks", available)
        .with("battery_blocks", blocks)
        .with("grid_faults", Vec::<Value>::new());
    render::compact(&Value::from(doc))
}

/// Demo `/api/operation`: mode and (raw) reserve from the config.
fn operation(site: &Site) -> String {
    let config = json::parse(site.config_text).unwrap_or_default();
    let doc = Map::new()
        .with(
            "real_mode",
            config
                .get("default_real_mode")
                .cloned()
                .unwrap_or(Value::Null),
        )
        .with(
            "backup_reserve_percent",
            config
                .path(&["site_info", "backup_reserve_percent"])
                .cloned()
                .unwrap_or(Value::Null),
        );
    render::compact(&Value::from(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            target: target.into(),
            path: target.split('?').next().unwrap().into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        }
    }

    #[test]
    fn upstream_auth_rule_and_paths() {
        let site = Site::load(Fixture::Pw2).unwrap();
        let m = Model::new(&site, true, 0.0);
        let get = |target: &str, h: &[(&str, &str)]| {
            route(&site, &m, &req("GET", target, h, ""), None, true).1
        };
        let r = get("/api/status", &[]);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (401, data::UNAUTHORIZED_JSON.as_bytes())
        );
        let bearer = [("Authorization", "Bearer x")];
        assert_eq!(
            get("/api/status", &bearer).body,
            data::API_STATUS_SERVED.as_bytes()
        );
        let cookie = [(
            "Cookie",
            "AuthCookie=1234567890qwertyuiopasdfghjklZXcvbnm1; x=y",
        )];
        let r = get("/api/system_status", &cookie);
        assert_eq!((r.status, r.body.len()), (200, 0));
        // Query strings are part of the match, as upstream.
        assert_eq!(get("/api/status?x=1", &bearer).body.len(), 0);
        assert_eq!(get("/api/devices/vitals", &bearer).body, data::VITALS_BIN);
        assert_eq!(
            get("/api/sitemaster", &bearer).body,
            data::LOCAL_STATIC[1].1.as_bytes()
        );
    }

    #[test]
    fn login_checks_the_customer_password_only_when_configured() {
        let site = Site::load(Fixture::Pw2).unwrap();
        let m = Model::new(&site, true, 0.0);
        let form =
            "username=customer&password=FGHIJ&email=nobody%40nowhere.com&clientInfo=timezone";
        let login = |body: &str, pwd: Option<&str>| {
            let customer = customer_password(None, pwd);
            route(
                &site,
                &m,
                &req("POST", "/api/login/Basic", &[], body),
                customer.as_deref(),
                true,
            )
            .1
        };
        let ok = login(form, Some("ABCDEFGHIJ"));
        assert_eq!(ok.status, 200);
        assert_eq!(
            ok.headers.iter().filter(|(k, _)| k == "Set-Cookie").count(),
            2
        );
        assert_eq!(login(form, Some("ABCDEFGHIX")).status, 401);
        assert_eq!(
            login(r#"{"password": "FGHIJ"}"#, Some("ABCDEFGHIJ")).status,
            200
        );
        assert_eq!(login("", None).status, 200);
        assert_eq!(login("", Some("ABCDEFGHIJ")).status, 401);
        assert_eq!(login("password=p%2Bq+r", Some("p+q r")).status, 200);
    }

    #[test]
    fn pw3_has_no_local_api() {
        let site = Site::load(Fixture::Pw3).unwrap();
        let m = Model::new(&site, true, 0.0);
        let r = route(
            &site,
            &m,
            &req("GET", "/", &[("Authorization", "Basic x")], ""),
            None,
            true,
        )
        .1;
        assert_eq!(
            (r.status, r.body.as_slice()),
            (403, data::ACCESS_DENIED_JSON.as_bytes())
        );
        let r = route(
            &site,
            &m,
            &req("POST", "/api/login/Basic", &[], ""),
            None,
            true,
        )
        .1;
        assert_eq!(r.status, 404);
    }

    #[test]
    fn demo_extras() {
        let site = Site::load(Fixture::Demo).unwrap();
        let m = Model::new(&site, true, 0.0);
        let auth = [("Authorization", "Bearer x")];
        let r = route(
            &site,
            &m,
            &req("GET", "/api/system_status", &auth, ""),
            None,
            true,
        )
        .1;
        let v = json::parse(std::str::from_utf8(&r.body).unwrap()).unwrap();
        assert_eq!(v.get("nominal_energy_remaining"), Some(&Value::Int(16200)));
        let r = route(
            &site,
            &m,
            &req("GET", "/api/operation", &auth, ""),
            None,
            true,
        )
        .1;
        assert_eq!(
            r.body,
            br#"{"real_mode":"self_consumption","backup_reserve_percent":24}"#
        );
        let r = route(&site, &m, &req("GET", "/api/status", &auth, ""), None, true).1;
        assert!(String::from_utf8_lossy(&r.body).contains(data::DEMO_VERSION));
    }
}
