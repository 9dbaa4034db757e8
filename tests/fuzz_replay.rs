//! Replays every committed fuzz corpus and regression input (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the fuzz target bodies in `pypowerwall_server::fuzzing`,
//! on stable Rust, so CI catches a regression without nightly or cargo-fuzz.

use std::path::Path;
use std::time::{Duration, Instant};

use pypowerwall_server::fuzzing::TARGETS;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && !p.ends_with(".gitkeep"));
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_replays() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let started = Instant::now();
    let mut total = 0;
    for (name, target) in TARGETS {
        let mut n = 0;
        for sub in ["corpus", "regressions"] {
            for file in inputs(&root.join(sub).join(name)) {
                let data = std::fs::read(&file).expect("corpus file readable");
                let ok = std::panic::catch_unwind(|| target(&data));
                assert!(ok.is_ok(), "{name}: {} panics", file.display());
                n += 1;
            }
        }
        assert!(n > 0, "{name}: no corpus committed");
        total += n;
    }
    assert!(total > 0);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "replay took {:?}",
        started.elapsed()
    );
}
