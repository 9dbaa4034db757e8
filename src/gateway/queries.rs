//! Tesla-signed GraphQL queries, embedded at build time and sent byte-exact.
//!
//! The gateway only runs queries signed by Tesla, so we cannot write our own: we replay the
//! captured text + signature pairs from upstream pypowerwall's query files (MIT; see
//! `canned/LICENSE.pypowerwall.txt`). The signature covers the query text, so the text must not
//! change by a single byte; the variables are not covered and are sent as stored.

use std::sync::{Arc, OnceLock};

use super::proto::Query;
use crate::json::{self, Value};

const V2024_06: &str = include_str!("queries/V2024_06.json");
const V2026_06: &str = include_str!("queries/V2026_06.json");

pub use crate::config::QuerySet;

/// The three queries a poller needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedQueries {
    /// `device_controller_basic`: status (power flows, SOE, alerts).
    pub basic: Arc<Query>,
    /// `device_controller_full`: status plus the component signals vitals need.
    pub full: Arc<Query>,
    /// `components`: per-battery PW3 data (strings, packs, inverter).
    pub components: Arc<Query>,
}

impl SignedQueries {
    /// The set, parsed once per process and shared by every gateway that uses it.
    pub fn shared(set: QuerySet) -> Result<Arc<SignedQueries>, String> {
        type Cell = OnceLock<Result<Arc<SignedQueries>, String>>;
        static V2024: Cell = OnceLock::new();
        static V2026: Cell = OnceLock::new();
        let cell = match set {
            QuerySet::V2024_06 => &V2024,
            QuerySet::V2026_06 => &V2026,
        };
        cell.get_or_init(|| SignedQueries::load(set).map(Arc::new))
            .clone()
    }

    pub fn load(set: QuerySet) -> Result<SignedQueries, String> {
        match set {
            QuerySet::V2024_06 => {
                let doc = json::parse(V2024_06).map_err(|e| format!("V2024_06.json: {e}"))?;
                Ok(SignedQueries {
                    basic: v2024(&doc, "device_controller_basic")?.into(),
                    full: v2024(&doc, "device_controller_full")?.into(),
                    components: v2024(&doc, "components")?.into(),
                })
            }
            QuerySet::V2026_06 => {
                let doc = json::parse(V2026_06).map_err(|e| format!("V2026_06.json: {e}"))?;
                let dc: Arc<Query> = v2026(&doc, "DeviceControllerQuery")?.into();
                Ok(SignedQueries {
                    basic: dc.clone(),
                    full: dc,
                    components: v2026(&doc, "PW3Query")?.into(),
                })
            }
        }
    }
}

fn field<'a>(doc: &'a Value, role: &str, key: &str) -> Result<&'a str, String> {
    doc.path(&[role, key])
        .and_then(Value::as_str)
        .ok_or_else(|| format!("query '{role}' has no string '{key}'"))
}

fn v2024(doc: &Value, role: &str) -> Result<Query, String> {
    let text = field(doc, role, "text")?;
    let sig = hex(field(doc, role, "code")?).ok_or_else(|| format!("query '{role}': bad hex"))?;
    // The legacy schema writes PayloadString {value = 1, text}; version 1 on the wire.
    Ok(Query::signed(
        1,
        text.as_bytes(),
        sig,
        field(doc, role, "b_value")?,
    ))
}

fn v2026(doc: &Value, op: &str) -> Result<Query, String> {
    let signed = hex(field(doc, op, "signed_bytes")?).ok_or_else(|| format!("{op}: bad hex"))?;
    let sig = hex(field(doc, op, "code")?).ok_or_else(|| format!("{op}: bad hex"))?;
    Ok(Query {
        format: super::proto::FORMAT_SIGNED,
        signed_query: signed,
        signature: sig,
        variables: field(doc, op, "b_value")?.to_string(),
    })
}

pub use crate::wire::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sets_load_and_keep_text_exact() {
        let q = SignedQueries::load(QuerySet::V2024_06).unwrap();
        let (version, text) = q.basic.text().unwrap();
        assert_eq!(version, 1);
        assert_eq!(text.len(), 6959);
        assert!(text.starts_with(b" query DeviceControllerQuery {\n"));
        assert_eq!(q.basic.signature.len(), 137);
        assert_eq!(q.basic.variables, "{}");
        assert!(q.full.variables.contains("msaComp"));
        assert!(
            String::from_utf8_lossy(&q.components.text().unwrap().1).contains("ComponentsQuery")
        );

        let q = SignedQueries::load(QuerySet::V2026_06).unwrap();
        let (version, text) = q.full.text().unwrap();
        assert_eq!(version, 2);
        assert!(String::from_utf8_lossy(&text).contains("DeviceControllerQuery"));
        assert!(String::from_utf8_lossy(&q.components.text().unwrap().1).contains("PW3Query"));
    }
}
