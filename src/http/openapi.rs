//! `/openapi.json` (OpenAPI 3.1), generated from the route tables and their [`Doc`]s, and the
//! two pages that read it: `/docs` (every route with its parameters and a "Try it" button) and
//! `/redoc` (a read-only reference with the response schemas). Both pages are our own small
//! HTML/JS, embedded, with nothing fetched from elsewhere: routers often have no internet.

use super::control;
use super::notation::parse;
use super::routes::{POST_ROUTES, ROUTES};
use super::schemas::{Doc, In, Param, COMPONENTS};
use crate::json::{Map, Value};
use crate::render;

/// `/docs`: the interactive page.
pub const DOCS_PAGE: &str = concat!(
    include_str!("pages/head.html"),
    "<title>pypowerwall-server API</title></head><body data-mode=\"docs\">",
    include_str!("pages/body.html"),
);

/// `/redoc`: the read-only reference.
pub const REDOC_PAGE: &str = concat!(
    include_str!("pages/head.html"),
    "<title>pypowerwall-server API reference</title></head><body data-mode=\"redoc\">",
    include_str!("pages/body.html"),
);

fn media(content_type: &str) -> &str {
    content_type
        .split(';')
        .next()
        .unwrap_or(content_type)
        .trim()
}

/// A content map: JSON bodies get their schema, other media types a string with `about`.
fn content(content_type: &str, notation: &str) -> Map {
    let m = media(content_type);
    let schema = if m == render::JSON {
        parse(notation)
    } else {
        Map::new()
            .with("type", "string")
            .with("description", notation)
            .into()
    };
    Map::new().with(m, Map::new().with("schema", schema))
}

/// The parameter objects of an operation: every `{name}` segment of `path` (typed by `doc`
/// when it has the name, else a string) and `doc`'s query parameters.
fn parameters(path: &str, doc: &Doc, ids: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for name in path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    {
        let known = doc
            .params
            .iter()
            .find(|p| p.at == In::Path && p.name == name);
        let mut m = Map::new()
            .with("name", name)
            .with("in", "path")
            .with("required", true)
            .with("schema", parse(known.map_or("str", |p| p.schema)));
        if let Some(p) = known {
            m.insert("description", p.about);
        }
        // The configured gateways are the ids this server knows (any other: 404).
        if name == "id" && !ids.is_empty() {
            let list: Vec<Value> = ids.iter().map(|i| Value::from(*i)).collect();
            m.insert(
                "schema",
                Map::new().with("type", "string").with("enum", list),
            );
            m.insert("example", ids[0]);
        }
        out.push(m.into());
    }
    for p in doc.params.iter().filter(|p| p.at == In::Query) {
        out.push(
            Map::new()
                .with("name", p.name)
                .with("in", "query")
                .with("required", false)
                .with("description", p.about)
                .with("schema", parse(p.schema))
                .into(),
        );
    }
    out
}

/// The OpenAPI 3.1 document; `ids` (the configured gateways) are the values of `{id}`.
pub fn document(ids: &[&str]) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let doc = route.doc;
        let own = [route.pattern.trim_end_matches('*')];
        let list: &[&str] = if doc.paths.is_empty() {
            &own
        } else {
            doc.paths
        };
        for path in list {
            let mut responses = Map::new();
            let mut ok = content(route.produces, doc.ok);
            if let Some((media, about)) = doc.also {
                for (k, v) in content(media, about) {
                    ok.insert(k, v);
                }
            }
            let (code, what) = if route.family == "websocket" {
                (
                    "101",
                    "Switching Protocols; then a text message with this JSON every second",
                )
            } else {
                ("200", "OK")
            };
            responses.insert(
                code,
                Map::new().with("description", what).with("content", ok),
            );
            for (status, what, body) in doc.errors {
                responses.insert(
                    status.to_string(),
                    Map::new()
                        .with("description", *what)
                        .with("content", content(render::JSON, body)),
                );
            }
            let mut op = Map::new()
                .with("summary", route.summary)
                .with("tags", vec![Value::from(route.family)])
                .with("responses", responses);
            let params = parameters(path, doc, ids);
            if !params.is_empty() {
                op.insert("parameters", params);
            }
            if route.family == "websocket" {
                op.insert("description", "Upgrade with `Connection: Upgrade`, `Upgrade: websocket`; text messages carry JSON summaries. A plain GET answers 426.");
            }
            paths.insert(*path, Map::new().with("get", op));
        }
    }
    for route in POST_ROUTES {
        let op = post_operation(
            route.summary,
            route.description,
            route.family,
            route.doc_path,
            ids,
        );
        match paths.get_mut(route.doc_path).and_then(Value::as_object_mut) {
            Some(m) => m.insert("post", op),
            None => paths.insert(route.doc_path, Map::new().with("post", op)),
        }
    }
    let components = COMPONENTS.iter().fold(Map::new(), |m, (name, notation)| {
        m.with(*name, parse(notation))
    });
    Map::new()
        .with("openapi", "3.1.0")
        .with(
            "info",
            Map::new()
                .with("title", "pypowerwall-server")
                .with("version", env!("CARGO_PKG_VERSION"))
                .with("description", "Tesla Powerwall gateway data: the pypowerwall proxy's routes plus multi-gateway, aggregate, history, control and WebSocket APIs. Interactive: /docs; reference: /redoc."),
        )
        .with("paths", paths)
        .with("components", Map::new().with("schemas", components))
        .into()
}

/// The control POST routes' parameters.
const POST_DOC: Doc = Doc {
    ok: "",
    errors: &[],
    params: &[Param {
        name: "action",
        at: In::Path,
        schema: "'reserve'|'mode'|'grid_charging'|'grid_export'|'islanding'|'max_backup'",
        about: "What to change",
    }],
    paths: &[],
    also: None,
};

/// The operation object of a control POST route: both request styles and every answer.
fn post_operation(
    summary: &str,
    description: &str,
    family: &str,
    path: &str,
    ids: &[&str],
) -> Value {
    let list = |l: &[&str]| {
        l.iter()
            .map(|m| format!("'{m}'"))
            .collect::<Vec<_>>()
            .join("|")
    };
    let json_body = parse(&format!(
        "{{value?: any, reserve?: int(0,100), level?: int(0,100), mode?: {}, grid_charging?: bool,
           grid_export?: {}, islanding?: 'off_grid'|'on_grid', confirm?: bool}}",
        list(control::MODES),
        list(control::GRID_EXPORTS)
    ));
    let mut json_body = json_body;
    if let Some(m) = json_body.as_object_mut() {
        m.insert(
            "description",
            "JSON style (`Authorization: Bearer <token>`): the action's own field, or `value` (the Python server's body) in its place",
        );
    }
    let form_body = parse("{value?: str, token?: str, mode?: str, level?: str, confirm?: str}");
    let mut responses = Map::new();
    for (code, what, body) in [
        ("200", "Done (or the current value for an empty form `value`); JSON style: `ok`, `gateway`, `action`, the value written, `path`, `result`", "{ok: bool, gateway: str, action: str, path: str, result: any, *: any}|{*: any}"),
        ("400", "Invalid request (form style: also control disabled or an error message)", "@Error|{*: any}"),
        ("401", "Missing or bad token", "@Error|{*: any}"),
        ("403", "Control disabled (JSON style)", "@Error"),
        ("404", "Unknown action or gateway (JSON style)", "@Error"),
        ("408", "The request body did not arrive in time", "@Error"),
        ("409", "Another write to this gateway is in flight", "@Error"),
        ("413", "Body over 4096 bytes (JSON style)", "@Error"),
        ("429", "Islanding cooldown (`Retry-After`)", "@Error"),
        ("501", "Cloud support not compiled in (JSON style)", "@Error"),
        ("502", "Tesla's cloud or the gateway refused or failed (JSON style)", "@Error"),
        ("503", "No write path for this action on the gateway (JSON style)", "@Error"),
    ] {
        responses.insert(
            code,
            Map::new()
                .with("description", what)
                .with("content", content(render::JSON, body)),
        );
    }
    Map::new()
        .with("summary", summary)
        .with("description", description)
        .with("tags", vec![Value::from(family)])
        .with("parameters", parameters(path, &POST_DOC, ids))
        .with(
            "requestBody",
            Map::new().with(
                "content",
                Map::new()
                    .with("application/json", Map::new().with("schema", json_body))
                    .with(
                        "application/x-www-form-urlencoded",
                        Map::new().with("schema", form_body),
                    ),
            ),
        )
        .with("responses", responses)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_response_schema_and_its_parameters() {
        let doc = document(&["home"]);
        let paths = doc.get("paths").and_then(Value::as_object).unwrap();
        for r in ROUTES {
            assert!(
                !r.doc.ok.is_empty(),
                "{} has no response documentation",
                r.pattern
            );
            let p = r.pattern.trim_end_matches('*');
            assert!(paths.keys().any(|k| k.starts_with(p)), "{p} missing");
        }
        for (path, item) in paths.iter() {
            for (method, op) in item.as_object().unwrap().iter() {
                let responses = op.get("responses").and_then(Value::as_object).unwrap();
                assert!(
                    responses.values().any(|r| r.get("content").is_some()),
                    "{method} {path}: no response content"
                );
                let names: Vec<&str> = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().filter_map(|p| p.get("name")?.as_str()).collect())
                    .unwrap_or_default();
                for seg in path.split('/').filter(|s| s.starts_with('{')) {
                    let name = seg.trim_matches(|c| c == '{' || c == '}');
                    assert!(
                        names.contains(&name),
                        "{method} {path}: no parameter {name}"
                    );
                }
            }
        }
        for r in POST_ROUTES {
            assert!(paths.get(r.doc_path).and_then(|p| p.get("post")).is_some());
        }
        for p in [
            "/api/timeseries/trend",
            "/api/timeseries/samples",
            "/api/timeseries/daily",
            "/csv",
        ] {
            let op = paths.get(p).and_then(|i| i.get("get")).unwrap();
            assert!(op.get("parameters").is_some(), "{p}: no query parameters");
        }
    }

    /// Every `$ref` names a component.
    #[test]
    fn references_resolve() {
        let text = document(&[]).to_py();
        for part in text.split("#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(COMPONENTS.iter().any(|(n, _)| *n == name), "{name}");
        }
    }

    #[test]
    fn pages_are_small_and_offline() {
        for page in [DOCS_PAGE, REDOC_PAGE] {
            assert!(page.len() < 32 * 1024, "{}", page.len());
            assert!(!page.contains("http://") && !page.contains("https://"));
        }
    }
}
