#!/usr/bin/env bash
# Counts the instructions the local stack spends per location update, with valgrind's callgrind
# (instruction counts are stable where timings on a shared 2-core machine are not).
#
# Usage: scripts/profile-callgrind.sh [OUT_DIR]
#
# Runs `rnd-local serve --memory` (the `profiling` build: release with symbols) under callgrind
# with the knee bench's shape scaled down to what the stack keeps up with under valgrind:
# 50 orders x 2 subscribers, every 2 s (25 updates/s). After the bench has placed its orders and
# opened its connections it zeroes the counters, counts 10 s, dumps, and prints the instructions
# per update and the top functions by inclusive count. The dump stays in OUT_DIR (default: a
# temporary directory) for `callgrind_annotate --inclusive=yes --tree=calling`.
#
# Needs valgrind (Debian: valgrind). Builds with cargo into CARGO_TARGET_DIR (default: target).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET_DIR" == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
OUT="${1:-$(mktemp -d)}"
mkdir -p "$OUT"
ORDERS=50
RATE_HZ=0.5
COUNT_SECS=10

command -v valgrind >/dev/null || { echo "profile: valgrind is not installed" >&2; exit 1; }
(cd "$ROOT" && cargo build --profile profiling -p rnd-local && cargo build --release -p rnd-loadgen)

RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
    "$TARGET_DIR/profiling/rnd-local" serve --memory --port 0 --location-min-interval-ms 0 \
    >"$OUT/stack.out" 2>"$OUT/stack.err" &
STACK=$!
trap 'kill "$STACK" 2>/dev/null || true' EXIT
URL=""
for _ in $(seq 1 240); do
    URL="$(sed -n 's/^rnd-local ready on \(http:\/\/[^ ]*\)$/\1/p' "$OUT/stack.out")"
    [[ -n "$URL" ]] && break
    sleep 0.5
done
[[ -n "$URL" ]] || { cat "$OUT/stack.err" >&2; echo "profile: the stack did not start" >&2; exit 1; }

"$TARGET_DIR/release/rnd-loadgen" bench knee --orders "$ORDERS" --subscribers 2 \
    --rates "$RATE_HZ" --duration-secs $((COUNT_SECS + 10)) --url "$URL" >"$OUT/bench.out" 2>&1 &
BENCH=$!
for _ in $(seq 1 480); do
    grep -q "connections open" "$OUT/bench.out" && break
    sleep 0.5
done
sleep 3
callgrind_control -z "$STACK" >/dev/null
sleep "$COUNT_SECS"
callgrind_control -d "$STACK" >/dev/null
wait "$BENCH" || true
grep -v '^{' "$OUT/bench.out" | tail -2 >&2

DUMP="$(ls -t "$OUT"/callgrind.out.*.1 | head -1)"
UPDATES="$(python3 -c "print(int($ORDERS * $RATE_HZ * $COUNT_SECS))")"
TOTAL="$(callgrind_annotate "$DUMP" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)"
echo "profile: $TOTAL instructions over $UPDATES location updates: $((TOTAL / UPDATES)) per update"
echo "profile: top functions by inclusive instructions (dump: $DUMP)"
callgrind_annotate --inclusive=yes "$DUMP" 2>/dev/null | grep -E '^ *[0-9,]+ \(' |
    grep -v 'PROGRAM TOTALS\|tokio-[0-9.]*/src/runtime\|/rustc/\|clone.S\|pthread_create' |
    sed -n '1,25p' | cut -c1-160
