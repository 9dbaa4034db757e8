//! Where pypowerwall keeps its Tesla cloud token files, and whether they exist.
//!
//! The configuration reads only their names and presence (to pick cloud or FleetAPI mode);
//! `cloud::tokens` reads and writes their contents.

use std::path::{Path, PathBuf};

pub const AUTH_FILE: &str = ".pypowerwall.auth";
pub const SITE_FILE: &str = ".pypowerwall.site";
pub const FLEET_FILE: &str = ".pypowerwall.fleetapi";

/// The directory of the token files (`""` is the working directory, `~/` is `$HOME/`).
pub fn dir(authpath: &str) -> PathBuf {
    let p = authpath.trim();
    if p.is_empty() {
        return PathBuf::from(".");
    }
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home).join(rest);
        }
    }
    PathBuf::from(p)
}

/// True when the FleetAPI file exists in `dir` (the proxy's auto-select prefers it).
pub fn has_fleet(dir: &Path) -> bool {
    dir.join(FLEET_FILE).is_file()
}

/// True when the Owner API token file exists in `dir`.
pub fn has_owner(dir: &Path) -> bool {
    dir.join(AUTH_FILE).is_file()
}
