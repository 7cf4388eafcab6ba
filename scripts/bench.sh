#!/usr/bin/env bash
# Runs `rnd-loadgen bench` against a fresh local stack of its own, then stops that stack.
#
# Usage:
#   scripts/bench.sh load [--orders N --subscribers S --rate-hz R --duration-secs D --idle C]
#   scripts/bench.sh idle [--connections C]
#   scripts/bench.sh knee [--orders N --subscribers S --rates R1,R2,... --duration-secs D]
#
# Starts `rnd-local serve --memory --port 0` (in memory, a free loopback port) in the
# background, waits for its "rnd-local ready on http://HOST:PORT" line, runs
# `rnd-loadgen bench ARGS... --url http://HOST:PORT`, and stops the stack with SIGTERM (only the
# process it started). The bench's JSON line is printed on stdout, its summary on stderr.
#
# Environment:
#   RND_LOCAL   the rnd-local binary (the stack). Default: release/rnd-local in cargo's target
#               directory (`make bench-load` builds it).
#   RND_LOADGEN the rnd-loadgen binary (the bench). Default: release/rnd-loadgen in cargo's
#               target directory (`make bench-load` builds it).
#   CARGO_TARGET_DIR  cargo's target directory, as cargo reads it from the repository root.
#               Default: target.
#   RND_LOCAL_ARGS  more arguments for `rnd-local serve`, split on spaces (e.g.
#               `--location-min-interval-ms 0`, which `make bench-knee` passes).
#   RUST_LOG    the stack's log filter. Default: warn (a log line per connection would be
#               measured too).
#   BENCH_LOG   keep the stack's output in this directory. Default: a temporary one, removed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET_DIR" == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
BIN="${RND_LOCAL:-$TARGET_DIR/release/rnd-local}"
LOADGEN="${RND_LOADGEN:-$TARGET_DIR/release/rnd-loadgen}"

die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

[[ $# -ge 1 ]] || die "usage: scripts/bench.sh load|idle|knee [ARGS...]"
[[ -x "$BIN" ]] || die "$BIN is missing: cargo build --release -p rnd-local (or make bench-load)"
[[ -x "$LOADGEN" ]] ||
    die "$LOADGEN is missing: cargo build --release -p rnd-loadgen (or make bench-load)"

if [[ -n "${BENCH_LOG:-}" ]]; then
    LOG_DIR="$BENCH_LOG"
    mkdir -p "$LOG_DIR"
    KEEP_LOG=1
else
    LOG_DIR="$(mktemp -d)"
    KEEP_LOG=0
fi

read -r -a STACK_ARGS <<<"${RND_LOCAL_ARGS:-}"
RUST_LOG="${RUST_LOG:-warn}" "$BIN" serve --memory --port 0 "${STACK_ARGS[@]}" \
    >"$LOG_DIR/stack.out" 2>"$LOG_DIR/stack.err" &
STACK_PID=$!

stop_stack() {
    if kill -0 "$STACK_PID" 2>/dev/null; then
        kill -TERM "$STACK_PID" 2>/dev/null || true
        wait "$STACK_PID" 2>/dev/null || true
    fi
    if [[ "$KEEP_LOG" == 0 ]]; then
        rm -rf "$LOG_DIR"
    fi
}
trap stop_stack EXIT

URL=""
for _ in $(seq 1 300); do
    if ! kill -0 "$STACK_PID" 2>/dev/null; then
        cat "$LOG_DIR/stack.err" >&2
        die "the stack exited before it was ready"
    fi
    URL="$(sed -n 's/^rnd-local ready on \(http:\/\/[^ ]*\)$/\1/p' "$LOG_DIR/stack.out")"
    [[ -n "$URL" ]] && break
    sleep 0.1
done
[[ -n "$URL" ]] || die "the stack did not say it was ready within 30 s"
printf 'bench: stack (pid %s) at %s\n' "$STACK_PID" "$URL" >&2

"$LOADGEN" bench "$@" --url "$URL"
