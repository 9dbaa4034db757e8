//! Embeds the web UI (`www/`) into the binary: generates a table of (path, bytes) at build time.
use std::fs;
use std::path::Path;

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            walk(&p, root, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
            let abs = p.canonicalize().unwrap_or(p.clone());
            out.push(format!(
                "    ({url:?}, include_bytes!({:?})),",
                abs.to_string_lossy()
            ));
        }
    }
}

fn main() {
    let root = Path::new("www");
    println!("cargo:rerun-if-changed=www");
    let mut files = Vec::new();
    walk(root, root, &mut files);
    let src = format!(
        "/// Files of `www/`, embedded at build time.\npub static FILES: &[(&str, &[u8])] = &[\n{}\n];\n",
        files.join("\n")
    );
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("www_files.rs");
    fs::write(out, src).expect("writing www_files.rs");
}
