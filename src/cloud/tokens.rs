//! The token files pypowerwall keeps in `authpath`, read and written compatibly:
//!
//! * `.pypowerwall.auth` (Owner API, teslapy's cache): `{"<email>": {"url": "https://auth.tesla.com/",
//!   "sso": {"access_token", "refresh_token", "expires_at", "expires_in", "token_type", …}}}`.
//! * `.pypowerwall.site`: the selected `energy_site_id` as plain text.
//! * `.pypowerwall.fleetapi` (FleetAPI): `CLIENT_ID`, `AUDIENCE`, `access_token`, `refresh_token`,
//!   `site_id`, … (other keys are kept as they are).
//!
//! Writes are atomic: a temporary file in the same directory, created with mode 0600, written,
//! fsynced and renamed over the old one, so a crash or a full disk never leaves a half-written
//! token file. Token values never reach a log line or an error message.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::Error;
use crate::atomic::AtomicU64;
use crate::json::{self, Map, Value};
use crate::secret::Secret;

pub use crate::config::token_files::{dir, has_fleet, has_owner, AUTH_FILE, FLEET_FILE, SITE_FILE};

/// Writes `bytes` to `path` atomically with mode 0600.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable (best effort: not every system allows this).
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    let r = write();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

fn read_json(path: &Path) -> Result<Value, Error> {
    let text = fs::read_to_string(path).map_err(|e| {
        Error::Setup(format!(
            "cannot read {}: {e} (run pypowerwall's setup to create it)",
            path.display()
        ))
    })?;
    json::parse(&text).map_err(|_| Error::Setup(format!("{} is not valid JSON", path.display())))
}

fn text(m: &Map, key: &str) -> String {
    m.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn site_id(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

/// Owner API tokens of one account.
#[derive(Clone, PartialEq)]
pub struct OwnerTokens {
    pub email: String,
    /// SSO base URL stored with the token (`https://auth.tesla.com/`, or `.cn`).
    pub sso_url: String,
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Unix time; 0 when unknown.
    pub expires_at: i64,
}

impl std::fmt::Debug for OwnerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnerTokens { .. }")
    }
}

/// Reads `.pypowerwall.auth`: the entry of `email`, or the first one when `email` is `None`.
pub fn read_owner(dir: &Path, email: Option<&str>) -> Result<OwnerTokens, Error> {
    let path = dir.join(AUTH_FILE);
    let doc = read_json(&path)?;
    let top = doc
        .as_object()
        .ok_or_else(|| Error::Setup(format!("{} is not an object", path.display())))?;
    let (key, entry) = match email {
        Some(e) => top
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(e))
            .ok_or_else(|| {
                Error::Setup(format!("{} has no entry for this email", path.display()))
            })?,
        None => top
            .iter()
            .next()
            .ok_or_else(|| Error::Setup(format!("{} is empty", path.display())))?,
    };
    let entry = entry.as_object().cloned().unwrap_or_default();
    let sso = entry
        .get("sso")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let t = OwnerTokens {
        email: key.clone(),
        sso_url: Some(text(&entry, "url"))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "https://auth.tesla.com/".into()),
        access_token: Secret::new(text(&sso, "access_token")),
        refresh_token: Secret::new(text(&sso, "refresh_token")),
        expires_at: sso.get("expires_at").and_then(Value::as_f64).unwrap_or(0.0) as i64,
    };
    if t.access_token.is_empty() && t.refresh_token.is_empty() {
        return Err(Error::Setup(format!("{} holds no token", path.display())));
    }
    Ok(t)
}

/// Stores a refreshed token under its email, keeping every other entry and key of the file.
pub fn write_owner(dir: &Path, t: &OwnerTokens, expires_in: i64, extra: &Map) -> Result<(), Error> {
    let path = dir.join(AUTH_FILE);
    let mut doc = read_json(&path)
        .ok()
        .and_then(|d| d.as_object().cloned())
        .unwrap_or_default();
    let mut entry = doc
        .get(&t.email)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut sso = entry
        .get("sso")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in extra.iter() {
        sso.insert(k.clone(), v.clone());
    }
    sso.insert("token_type", "Bearer");
    sso.insert("access_token", t.access_token.expose());
    sso.insert("refresh_token", t.refresh_token.expose());
    sso.insert("expires_in", expires_in);
    sso.insert("expires_at", t.expires_at);
    if !entry.contains_key("url") {
        entry.insert("url", t.sso_url.as_str());
    }
    entry.insert("sso", sso);
    doc.insert(t.email.clone(), entry);
    atomic_write(&path, Value::Object(doc).to_py().as_bytes())
        .map_err(|e| Error::Setup(format!("cannot write {}: {e}", path.display())))
}

/// Stores a fresh login (set-up) as teslapy and pypowerwall 0.22.2 do: the entry of `email`
/// becomes `{"url": sso_url, "sso": sso}`; every other entry of the file is kept.
pub fn write_owner_login(dir: &Path, email: &str, sso_url: &str, sso: Map) -> Result<(), Error> {
    let path = dir.join(AUTH_FILE);
    let mut doc = read_json(&path)
        .ok()
        .and_then(|d| d.as_object().cloned())
        .unwrap_or_default();
    doc.insert(
        email.to_string(),
        Map::new().with("url", sso_url).with("sso", sso),
    );
    atomic_write(&path, Value::Object(doc).to_py().as_bytes())
        .map_err(|e| Error::Setup(format!("cannot write {}: {e}", path.display())))
}

/// Writes `.pypowerwall.site`: the site id as plain text, as pypowerwall writes it.
pub fn write_site(dir: &Path, id: i64) -> Result<(), Error> {
    let path = dir.join(SITE_FILE);
    atomic_write(&path, id.to_string().as_bytes())
        .map_err(|e| Error::Setup(format!("cannot write {}: {e}", path.display())))
}

/// `.pypowerwall.site`: the chosen site id, when present and numeric.
pub fn read_site(dir: &Path) -> Option<i64> {
    fs::read_to_string(dir.join(SITE_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// FleetAPI settings and tokens (the whole file is kept to write it back).
#[derive(Clone)]
pub struct FleetConfig {
    pub doc: Map,
    pub client_id: String,
    /// Regional base URL (`AUDIENCE`).
    pub audience: String,
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub site_id: Option<i64>,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetConfig { .. }")
    }
}

/// Reads `.pypowerwall.fleetapi`.
pub fn read_fleet(dir: &Path) -> Result<FleetConfig, Error> {
    let path = dir.join(FLEET_FILE);
    let doc = read_json(&path)?
        .as_object()
        .cloned()
        .ok_or_else(|| Error::Setup(format!("{} is not an object", path.display())))?;
    let c = FleetConfig {
        client_id: text(&doc, "CLIENT_ID"),
        audience: text(&doc, "AUDIENCE"),
        access_token: Secret::new(text(&doc, "access_token")),
        refresh_token: Secret::new(text(&doc, "refresh_token")),
        site_id: site_id(doc.get("site_id")),
        doc,
    };
    if c.access_token.is_empty() && c.refresh_token.is_empty() {
        return Err(Error::Setup(format!("{} holds no token", path.display())));
    }
    Ok(c)
}

/// Writes the FleetAPI file back with new tokens (indent 4, as pypowerwall writes it).
pub fn write_fleet(dir: &Path, c: &FleetConfig) -> Result<(), Error> {
    let path = dir.join(FLEET_FILE);
    let mut doc = c.doc.clone();
    doc.insert("access_token", c.access_token.expose());
    doc.insert("refresh_token", c.refresh_token.expose());
    atomic_write(&path, Value::Object(doc).to_py_pretty().as_bytes())
        .map_err(|e| Error::Setup(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ppws-tokens-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn owner_round_trip_keeps_other_entries() {
        let d = tmp("owner");
        fs::write(
            d.join(AUTH_FILE),
            r#"{"a@x.com": {"url": "https://auth.tesla.com/", "sso": {"access_token": "A1", "refresh_token": "R1", "expires_at": 100, "id_token": "I"}}, "b@x.com": {"sso": {}}}"#,
        )
        .unwrap();
        let mut t = read_owner(&d, None).unwrap();
        assert_eq!(t.email, "a@x.com");
        assert_eq!(t.expires_at, 100);
        assert_eq!(format!("{t:?}"), "OwnerTokens { .. }");
        assert!(read_owner(&d, Some("nobody@x.com")).is_err());
        t.access_token = "A2".into();
        t.expires_at = 200;
        write_owner(&d, &t, 28800, &Map::new()).unwrap();
        let again = read_owner(&d, Some("A@X.com")).unwrap();
        assert_eq!(again.access_token.expose(), "A2");
        assert_eq!(again.refresh_token.expose(), "R1");
        let doc = json::parse(&fs::read_to_string(d.join(AUTH_FILE)).unwrap()).unwrap();
        assert!(doc.get("b@x.com").is_some());
        assert_eq!(
            doc.path(&["a@x.com", "sso", "id_token"]).unwrap().as_str(),
            Some("I")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(d.join(AUTH_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn fleet_round_trip_and_site_file() {
        let d = tmp("fleet");
        assert!(!has_fleet(&d));
        fs::write(
            d.join(FLEET_FILE),
            r#"{"CLIENT_ID": "cid", "AUDIENCE": "https://fleet", "access_token": "A", "refresh_token": "R", "site_id": "42", "DOMAIN": "d"}"#,
        )
        .unwrap();
        let mut c = read_fleet(&d).unwrap();
        assert_eq!(c.site_id, Some(42));
        c.access_token = "B".into();
        write_fleet(&d, &c).unwrap();
        let c2 = read_fleet(&d).unwrap();
        assert_eq!(c2.access_token.expose(), "B");
        assert_eq!(c2.doc.get("DOMAIN").and_then(Value::as_str), Some("d"));
        assert_eq!(read_site(&d), None);
        fs::write(d.join(SITE_FILE), "12345\n").unwrap();
        assert_eq!(read_site(&d), Some(12345));
        assert!(read_owner(&d, None).is_err());
    }

    #[test]
    fn dir_expands_home() {
        assert_eq!(dir(""), PathBuf::from("."));
        assert_eq!(dir("/a/b"), PathBuf::from("/a/b"));
    }
}
