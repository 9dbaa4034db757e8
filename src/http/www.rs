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

/// Largest file served from `PW_WWW_DIR`.
const MAX_FILE: u64 = 16 << 20;

fn lookup_file(path: &str, dir: Option<&str>) -> Option<Asset> {
    // Refuse anything that could leave the web root, and hidden files and directories
    // (`.git`, `.env`, …): every segment starting with `.` (which also covers `.` and `..`).
    if path
        .split('/')
        .any(|seg| seg.starts_with('.') || seg.contains('\\'))
        || path.contains('\0')
    {
        return None;
    }
    match dir {
        Some(dir) => read_under(std::path::Path::new(dir), path),
        None => embedded()
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, a)| a.clone()),
    }
}

/// A regular file under `root`, after resolving symlinks: a link that leads out of the root
/// (or to anything but a regular file of at most [`MAX_FILE`]) is not served.
fn read_under(root: &std::path::Path, path: &str) -> Option<Asset> {
    let root = root.canonicalize().ok()?;
    let full = root
        .join(path.trim_start_matches('/'))
        .canonicalize()
        .ok()?;
    if !full.starts_with(&root) {
        return None;
    }
    let meta = std::fs::metadata(&full).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(&full).ok()?, MAX_FILE + 1),
        &mut bytes,
    )
    .ok()?;
    if bytes.len() as u64 > MAX_FILE {
        return None;
    }
    Some(Asset {
        content_type: content_type(path),
        etag: etag(&bytes),
        bytes: Arc::from(bytes),
    })
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
        for p in ["/history", "/history.html"] {
            assert!(lookup(p, None).is_some_and(|a| a.content_type.starts_with("text/html")));
        }
        assert!(lookup("/history.js", None).is_some());
        assert_eq!(content_type("/a/b.css"), "text/css");
    }

    #[test]
    fn www_dir_refuses_dotfiles_and_symlinks_out_of_the_root() {
        let base = std::env::temp_dir().join(format!("pw-www-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("ok.txt"), "ok").unwrap();
        std::fs::write(root.join(".env"), "SECRET=1").unwrap();
        std::fs::write(root.join(".git/config"), "x").unwrap();
        std::fs::write(base.join("outside.txt"), "outside").unwrap();
        let _ = std::os::unix::fs::symlink(base.join("outside.txt"), root.join("out.txt"));
        let _ = std::os::unix::fs::symlink(&base, root.join("up"));
        let _ = std::os::unix::fs::symlink(root.join("ok.txt"), root.join("in.txt"));
        let dir = root.to_str();
        assert!(lookup("/ok.txt", dir).is_some());
        assert!(
            lookup("/in.txt", dir).is_some(),
            "a link inside the root is fine"
        );
        for p in ["/.env", "/.git/config", "/out.txt", "/up/outside.txt"] {
            assert!(lookup(p, dir).is_none(), "{p}");
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}
