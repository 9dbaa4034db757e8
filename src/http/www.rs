//! The web UI's static files: embedded at build time (`build.rs`), or read from `PW_WWW_DIR`
//! when developing. Answers carry an ETag so browsers revalidate instead of downloading again.

use std::sync::{Arc, OnceLock};

include!(concat!(env!("OUT_DIR"), "/www_files.rs"));

/// A static file ready to serve.
#[derive(Clone)]
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: Arc<[u8]>,
    pub etag: String,
}

/// Content type by extension, as the proxy serves its web files.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "application/javascript",
        "css" => "text/css",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "xml" => "application/xml",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/opentype",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// FNV-1a 64: a cheap, stable content hash for ETags.
fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

fn embedded() -> &'static [(String, Asset)] {
    static TABLE: OnceLock<Vec<(String, Asset)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        FILES
            .iter()
            .map(|(path, bytes)| {
                (
                    path.to_string(),
                    Asset {
                        content_type: content_type(path),
                        bytes: Arc::from(*bytes),
                        etag: etag(bytes),
                    },
                )
            })
            .collect()
    })
}

/// The asset for a URL path (`/` is `/index.html`); `None` when there is none.
/// A path without an extension is also tried as `{path}.html`, so `/flow` serves `flow.html`.
pub fn lookup(path: &str, dir: Option<&str>) -> Option<Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    lookup_file(path, dir).or_else(|| {
        let last = path.rsplit('/').next().unwrap_or("");
        (!last.is_empty() && !last.contains('.'))
            .then(|| lookup_file(&format!("{path}.html"), dir))
            .flatten()
    })
}

fn lookup_file(path: &str, dir: Option<&str>) -> Option<Asset> {
    // Refuse anything that could leave the web root.
    if path.split('/').any(|seg| seg == ".." || seg.contains('\\')) || path.contains('\0') {
        return None;
    }
    match dir {
        Some(dir) => {
            let full = std::path::Path::new(dir).join(path.trim_start_matches('/'));
            if !full.is_file() {
                return None;
            }
            let bytes = std::fs::read(&full).ok()?;
            Some(Asset {
                content_type: content_type(path),
                etag: etag(&bytes),
                bytes: Arc::from(bytes),
            })
        }
        None => embedded()
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, a)| a.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_embedded_and_traversal_refused() {
        let a = lookup("/", None).expect("index.html is embedded");
        assert!(a.content_type.starts_with("text/html"));
        assert!(lookup("/../Cargo.toml", Some("www")).is_none());
        assert!(lookup("/nope.js", None).is_none());
        assert!(lookup("/flow", None).is_some_and(|a| a.content_type.starts_with("text/html")));
        assert!(lookup("/flow/", None).is_none());
        assert_eq!(content_type("/a/b.css"), "text/css");
    }
}
