#!/usr/bin/env bash
# Replays the committed fuzz corpora and regression inputs.
#
#   scripts/fuzz-replay.sh             # stable: tests/fuzz_replay.rs (what `cargo test` / CI runs)
#   scripts/fuzz-replay.sh --libfuzzer # also each cargo-fuzz target over its corpus (-runs=0; nightly)
#   scripts/fuzz-replay.sh --fuzz SECS [TARGET...]  # fuzz each target for SECS (niced, one at a time)
#
# Fuzzing writes new inputs to fuzz/corpus-work/<target>/ (ignored by git) and crashes to
# fuzz/artifacts/<target>/; copy a crash into fuzz/regressions/<target>/ once it is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(http proto json vitals_pb config_env config_file ws map)
cargo test -q --test fuzz_replay
case "${1:-}" in
--libfuzzer)
    for t in "${TARGETS[@]}"; do
        (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" "regressions/$t" -- -runs=0 \
            -rss_limit_mb=1024 -malloc_limit_mb=256)
    done
    ;;
--fuzz)
    secs=${2:?seconds}
    shift 2
    [ $# -gt 0 ] && TARGETS=("$@")
    for t in "${TARGETS[@]}"; do
        mkdir -p "fuzz/corpus-work/$t" "fuzz/artifacts/$t"
        (cd fuzz && nice -n 15 cargo +nightly fuzz run "$t" "corpus-work/$t" "corpus/$t" \
            "regressions/$t" -- -max_total_time="$secs" -rss_limit_mb=1024 -malloc_limit_mb=256 \
            -timeout=10 -print_final_stats=1 2>&1 | tail -n 25 | tee "artifacts/$t/last-run.txt")
    done
    ;;
esac
