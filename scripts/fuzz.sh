#!/bin/sh
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the code that reads untrusted input: the
# WebSocket message parser, the stream-record decoder of the fan-out, the authorizer's token
# extraction and verification, and the HTTP API's request bodies. Not part of `make test` nor
# of CI: it takes minutes and needs the nightly toolchain. The targets are in fuzz/, their
# entry functions in tools/fuzz-entries (whose stable test replays the committed corpus in
# `make test`); fuzz/README.md says what each one feeds and asserts.
#
# Usage:
#   scripts/fuzz.sh                 every target, FUZZ_SECS seconds each, one after the other
#   scripts/fuzz.sh TARGET...       only these (ws_message stream_record authorizer_token
#                                   http_bodies)
#
# Environment:
#   FUZZ_SECS       seconds of fuzzing per target (after the build). Default: 120.
#   FUZZ_SANITIZER  cargo-fuzz's --sanitizer: none (default; the code under test forbids
#                   unsafe, and it runs about twice as many inputs) or address.
#   FUZZ_MERGE      1: merge what the run found that adds coverage into the committed corpus
#                   (fuzz/corpus/TARGET); default 0, which leaves fuzz/corpus untouched.
#
# Installs cargo-fuzz (pinned below) into target/tools with `cargo install` when it is missing
# or another version; needs the nightly toolchain (rustup installs it when missing). Each run
# reads the committed corpus and writes what it finds to fuzz/target/corpus/TARGET; a crash is
# saved in fuzz/artifacts/TARGET/ (replay it: cargo +nightly fuzz run -s none TARGET FILE).
# Prints per target the executions, the seconds fuzzed, the crashes (libFuzzer stops at the
# first), the corpus size and the coverage (edges) at the end; fails when any target crashed.
set -eu

CARGO_FUZZ_VERSION=0.13.2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECS=${FUZZ_SECS:-120}
SANITIZER=${FUZZ_SANITIZER:-none}
MERGE=${FUZZ_MERGE:-0}
TOOLS=$ROOT/target/tools
ALL="ws_message stream_record authorizer_token http_bodies"
TARGETS=${*:-$ALL}

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "==> installing the nightly toolchain (cargo-fuzz needs it)"
    rustup toolchain install nightly --profile minimal
fi
if ! "$TOOLS/bin/cargo-fuzz" --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
    echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
    nice -n 19 cargo install --locked --root "$TOOLS" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi
PATH=$TOOLS/bin:$PATH
export PATH

echo "==> building the fuzz targets (nightly, sanitizer: $SANITIZER)"
nice -n 19 cargo +nightly fuzz build --sanitizer "$SANITIZER"

LOGS=$ROOT/fuzz/target/logs
mkdir -p "$LOGS"
SUMMARY=$LOGS/summary.txt
printf '%-18s %12s %6s %8s %7s %6s\n' target executions secs crashes corpus edges >"$SUMMARY"
failed=0
for target in $TARGETS; do
    [ -d "fuzz/corpus/$target" ] || { echo "no target $target (fuzz/corpus/$target)" >&2; exit 2; }
    work=$ROOT/fuzz/target/corpus/$target
    artifacts=$ROOT/fuzz/artifacts/$target
    mkdir -p "$work" "$artifacts"
    before=$(find "$artifacts" -type f | wc -l)
    dict=
    [ -f "fuzz/dicts/$target.dict" ] && dict=-dict=$ROOT/fuzz/dicts/$target.dict
    log=$LOGS/$target.log
    echo "==> $target: ${SECS}s (log: $log)"
    # One process: libFuzzer's default (no -jobs/-workers, which would fork workers).
    if nice -n 19 cargo +nightly fuzz run --sanitizer "$SANITIZER" "$target" "$work" \
        "fuzz/corpus/$target" -- -max_total_time="$SECS" -print_final_stats=1 -timeout=10 \
        $dict >"$log" 2>&1; then
        status=ok
    else
        status=crashed
        failed=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    corpus=$(sed -n 's/.*DONE .* corp: \([0-9]*\)\/.*/\1/p' "$log" | tail -n 1)
    edges=$(sed -n 's/.*DONE *cov: \([0-9]*\) .*/\1/p' "$log" | tail -n 1)
    crashes=$(($(find "$artifacts" -type f | wc -l) - before))
    if [ "$status" = crashed ]; then
        # libFuzzer stops at the first crash: say where it is.
        grep -E '^(==[0-9]+==|SUMMARY|thread .* panicked|Test unit written)' "$log" | head -n 5 >&2 || true
        execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n 1)
        [ "$crashes" -gt 0 ] || crashes=1
    fi
    printf '%-18s %12s %6s %8s %7s %6s\n' "$target" "${execs:-?}" "${secs:-?}" "$crashes" \
        "${corpus:-?}" "${edges:-?}" >>"$SUMMARY"
    if [ "$MERGE" = 1 ] && [ "$status" = ok ]; then
        echo "==> $target: merging what adds coverage into fuzz/corpus/$target"
        nice -n 19 cargo +nightly fuzz run --sanitizer "$SANITIZER" "$target" \
            "fuzz/corpus/$target" "$work" -- -merge=1 $dict >"$LOGS/$target.merge.log" 2>&1
    fi
done

echo
cat "$SUMMARY"
exit "$failed"
