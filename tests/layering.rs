//! Layering and tidiness, checked by reading `src/` (rust-analyzer's tidy tests are the model).
//!
//! Each top-level module has a layer; a module may import (`crate::x`) only modules of a lower
//! layer, so the import graph has no circle and nothing below `render` knows `http`. The
//! simulator is the test transport and may use only the wire format (`gateway::proto`) and the
//! base modules. Test code (`tests.rs`, `*_tests.rs`, `tests/` folders, a trailing
//! `#[cfg(test)] mod tests`) may use anything: unit tests drive the real transports against the
//! simulator.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom up. A module may import the modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    // Base: each imports nothing of this crate.
    &["json", "clock", "secret", "wire", "atomic"],
    // What the settings are and mean; no transport, no route.
    &["config"],
    // Tesla's LAN gateway: wire formats, transports, mapping to the facade.
    &["gateway"],
    // Tesla's cloud (implements `gateway::source::Source`).
    &["cloud"],
    // Builds a gateway's transport from its configuration (knows every mode).
    &["transport"],
    // A tick's facade → every output, once.
    &["render"],
    // Stored history, made from render's summaries.
    &["history"],
    // Immutable per-gateway snapshots.
    &["snapshot"],
    // Prometheus text from snapshot views.
    &["metrics"],
    // One poller thread per gateway.
    &["poll"],
    // The HTTP server and WebSockets.
    &["http"],
    // The MQTT publisher: reads snapshots, writes through `http::control` (the one control path).
    &["mqtt"],
    // Wiring; fuzz entry points (they may reach any layer below).
    &["app", "fuzzing"],
];

/// The simulator may use these (and nothing of the server): the base modules, the wire format
/// and Tesla's customer-password rule.
const SIM_MAY_USE: &[&str] = &[
    "json",
    "clock",
    "secret",
    "wire",
    "gateway::proto",
    "config::customer_password",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`None` for `lib.rs`, `main.rs`).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

fn is_test_file(path: &Path) -> bool {
    let rel = path.strip_prefix(src()).unwrap_or(path);
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || rel.components().any(|c| c.as_os_str() == "tests")
}

/// The file's code without comments and without a trailing `#[cfg(test)] mod …` block.
fn code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if t.starts_with("#[cfg(test)]") {
            let next = lines[i + 1..]
                .iter()
                .map(|l| l.trim_start())
                .find(|l| !l.is_empty());
            if next.is_some_and(|n| n.starts_with("mod ") || n.starts_with("#[path")) {
                break;
            }
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Every `crate::a::b` path in `code`, as `a::b` (the first two segments).
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `pypowerwall_crate::`
        }
        let seg = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        let first = seg(rest);
        if first.is_empty() {
            // `crate::{a, b}`
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for part in group[..end].split(',') {
                    let name = seg(part.trim());
                    if !name.is_empty() {
                        out.push(name);
                    }
                }
            }
            continue;
        }
        let after = &rest[first.len()..];
        let second = after.strip_prefix("::").map(seg).unwrap_or_default();
        out.push(if second.is_empty() {
            first
        } else {
            format!("{first}::{second}")
        });
    }
    out
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn modules_import_only_lower_layers() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut problems = Vec::new();
    for f in &files {
        let Some(module) = module_of(f) else { continue };
        if is_test_file(f) {
            continue;
        }
        let text = fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(src()).unwrap().display().to_string();
        for path in crate_paths(&code(&text)) {
            let target = path.split("::").next().unwrap_or("").to_string();
            if target == module || target == "self" {
                continue;
            }
            if module == "sim" {
                if !SIM_MAY_USE
                    .iter()
                    .any(|a| path == *a || path.starts_with(&format!("{a}::")) || target == *a)
                {
                    problems.push(format!("src/{rel}: the simulator imports crate::{path} (it may use {SIM_MAY_USE:?})"));
                }
                continue;
            }
            let (Some(from), Some(to)) = (layer(&module), layer(&target)) else {
                if layer(&module).is_none() {
                    problems.push(format!("src/{rel}: module `{module}` has no layer: add it to LAYERS in tests/layering.rs"));
                } else if target != "sim" {
                    problems.push(format!(
                        "src/{rel}: imports crate::{path}, a module with no layer"
                    ));
                }
                continue;
            };
            if target == "sim" {
                continue; // `--demo` and `sim` start the simulator (app, main).
            }
            if to >= from {
                problems.push(format!(
                    "src/{rel}: `{module}` (layer {from}) imports crate::{path} (layer {to}); a module may import only lower layers"
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_imports() {
    let text = "use crate::http::legacy;\n// use crate::app;\nfn f() { crate::poll::x(); }\nuse crate::{json, clock};\n#[cfg(test)]\nmod tests {\n use crate::sim;\n}\n";
    assert_eq!(
        crate_paths(&code(text)),
        ["http::legacy", "poll::x", "json", "clock"]
    );
}

#[test]
fn no_file_is_over_800_lines_and_every_file_has_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut problems = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(src()).unwrap().display().to_string();
        let n = text.lines().count();
        if n > 800 {
            problems.push(format!(
                "src/{rel}: {n} lines (split it along a seam; at most 800)"
            ));
        }
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("src/{rel}: no `//!` module doc"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A struct that holds a `Secret` writes its own `Debug` (or none): a derived one would list
/// every field, and the next field added might not be a `Secret`.
#[test]
fn no_struct_holding_a_secret_derives_debug() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut problems = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(src()).unwrap().display().to_string();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let Some(rest) = l
                .trim_start()
                .strip_prefix("pub struct ")
                .or_else(|| l.trim_start().strip_prefix("struct "))
            else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let derives_debug = lines[..i]
                .iter()
                .rev()
                .take_while(|l| {
                    l.trim_start().starts_with("#[") || l.trim_start().starts_with("///")
                })
                .any(|l| l.contains("derive(") && l.contains("Debug"));
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with('}') && !l.trim_start().starts_with("}"))
                .copied()
                .collect();
            let holds_secret = body.iter().any(|l| {
                let code = l.split("//").next().unwrap_or("");
                let ty = code.split_once(':').map_or("", |(_, ty)| ty);
                ty.match_indices("Secret").any(|(i, _)| {
                    !ty[i + "Secret".len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            });
            if derives_debug && holds_secret {
                problems.push(format!(
                    "src/{rel}: struct {name} holds a Secret and derives Debug"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// 32-bit MIPS routers (`mips(el)-unknown-linux-musl`, release targets) have no 64-bit atomics:
/// `std::sync::atomic::AtomicU64` does not exist there and the build stops. Outside test code,
/// `AtomicU64` comes from `crate::atomic` (tiny_http: `util::atomic64`), which falls back to a
/// mutex on those targets; there is no `AtomicI64` fallback.
#[test]
fn no_std_64_bit_atomics_outside_the_fallback_modules() {
    let vendor = Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/tiny_http/src");
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    rust_files(&vendor, &mut files);
    let mut problems = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap_or_default();
        if name == "atomic.rs" || name == "atomic64.rs" || is_test_file(f) {
            continue;
        }
        let text = code(&fs::read_to_string(f).unwrap());
        let rel = f
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(f)
            .display()
            .to_string();
        let fallback =
            text.contains("crate::atomic::AtomicU64") || text.contains("atomic64::AtomicU64");
        if (text.contains("AtomicU64") && !fallback) || text.contains("AtomicI64") {
            problems.push(format!(
                "{rel}: a std 64-bit atomic; use crate::atomic::AtomicU64 (32-bit MIPS has none)"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
