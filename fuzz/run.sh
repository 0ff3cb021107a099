#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer and AddressSanitizer, seeds them from captures/,
# and runs each for SECONDS (default 600). Crashes land in fuzz/artifacts/ and fail the run.
#   fuzz/run.sh [SECONDS] [TARGET...]
# FUZZ_SEED fixes libFuzzer's random seed (CI uses 1, so a run can be repeated).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzTLSWire FuzzPackets FuzzReassembly FuzzCapture FuzzCertificate FuzzRecords FuzzOptions FuzzKeyLog)

swift build -c release --package-path fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
python3 fuzz/make-seeds.py "$seeds"
mkdir -p fuzz/artifacts
# Leaks are checked, except for globals that live for the whole run (see the file).
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
for target in "${targets[@]}"; do
    corpus=fuzz/corpus-$target
    mkdir -p "$corpus"
    echo "== $target: ${seconds}s, $(ls "$seeds/$target" | wc -l) seeds, $(ls "$corpus" | wc -l) kept inputs"
    # rss_limit: the parsers' bounds keep memory small; 2 GiB catches a runaway table.
    .build-fuzz/release/$target -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -seed="${FUZZ_SEED:-0}" \
        -artifact_prefix=fuzz/artifacts/$target- -print_final_stats=1 \
        "$corpus" "$seeds/$target" 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::|==[0-9]+==|SUMMARY|Done)|INFO: (seed|Loaded)' || true
    if ls fuzz/artifacts/$target-* >/dev/null 2>&1; then
        echo "$target: crash input kept in fuzz/artifacts/" >&2
        exit 1
    fi
done
