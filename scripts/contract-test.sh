#!/bin/sh
# Contract test of the HTTP API against its own OpenAPI document: schemathesis (pinned in
# tools/schemathesis/requirements.txt, installed into target/schemathesis/venv when missing)
# runs every operation of GET /openapi.json with `--checks all` against a fresh rnd-local on a
# free loopback port with its in-memory store, once for each role (customer, chef, driver,
# admin: the API answers each differently), with a fixed seed. Before the runs each role's user
# saves a profile (the chef's with a pickup point), so that orders can be placed, and an order
# is placed in each status, which the order endpoints are tried on besides generated ids
# (tools/schemathesis/seed.py).
# Stops the stack it started and exits non-zero on any failure. Reports (JUnit XML), the tested
# document and the stack's log land in target/schemathesis/.
#
#   scripts/contract-test.sh            (or: make test-contract)
#   CONTRACT_EXAMPLES=200 CONTRACT_SEED=7 scripts/contract-test.sh
#
# Environment:
#   CONTRACT_EXAMPLES  most test cases per operation (schemathesis --max-examples). Default: 100.
#   CONTRACT_SEED      schemathesis' seed. Default: 1.
#   CONTRACT_ROLES     the roles to run as, in order. Default: customer chef driver admin.
#   SCHEMATHESIS_VENV  the virtual environment. Default: target/schemathesis/venv.
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
EXAMPLES=${CONTRACT_EXAMPLES:-100}
SEED=${CONTRACT_SEED:-1}
ROLES=${CONTRACT_ROLES:-customer chef driver admin}
VENV=${SCHEMATHESIS_VENV:-$ROOT/target/schemathesis/venv}
OUT=$ROOT/target/schemathesis
CONFIG=$ROOT/tools/schemathesis/schemathesis.toml

log() { printf 'contract-test: %s\n' "$*" >&2; }

scripts/python-venv.sh schemathesis tools/schemathesis/requirements.txt "$VENV"

cargo build -p rnd-local
# Where cargo put it: CARGO_TARGET_DIR when set (relative to here, as cargo reads it), else target/.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in
/*) ;;
*) TARGET_DIR="$ROOT/$TARGET_DIR" ;;
esac
BIN=$TARGET_DIR/debug/rnd-local

rm -rf "$OUT/reports"
mkdir -p "$OUT/reports"
STACK_LOG=$OUT/rnd-local.log
PID=

stop_stack() {
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=
    fi
}
trap 'stop_stack' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free port, and rnd-local on it; a port taken meanwhile is retried with another.
for attempt in 1 2 3; do
    PORT=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')
    # The orders-per-hour limit is lifted: schemathesis places hundreds of orders as one
    # customer, and the limit's 429 is tested in the HTTP API's own tests.
    "$BIN" serve --memory --host 127.0.0.1 --port "$PORT" \
        --orders-per-customer-per-hour 1000000 >"$STACK_LOG" 2>&1 &
    PID=$!
    waited=0
    while ! grep -q '^rnd-local ready on ' "$STACK_LOG"; do
        if ! kill -0 "$PID" 2>/dev/null; then
            wait "$PID" 2>/dev/null || true
            PID=
            break
        fi
        if [ "$waited" -ge 600 ]; then
            log "rnd-local did not get ready within 60 s; its log:"
            cat "$STACK_LOG" >&2
            exit 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    [ -n "$PID" ] && break
    if [ "$attempt" -lt 3 ] && grep -qi 'address already in use' "$STACK_LOG"; then
        log "port $PORT was taken meanwhile; retrying with another"
        continue
    fi
    log "rnd-local exited before it was ready; its log:"
    cat "$STACK_LOG" >&2
    exit 1
done
BASE=http://127.0.0.1:$PORT
log "rnd-local (in memory) is serving $BASE (pid $PID)"

# A dev token for ROLE's user ROLE-1, signed with the stack's (dev) secret. Never printed.
token() { "$BIN" token --sub "$1-1" --role "$1"; }

# The document under test, every role's profile (the chef's with a pickup point), and an order
# in each status, whose ids schemathesis.toml's `orders` dictionary reads.
RND_TOKEN_CUSTOMER=$(token customer) RND_TOKEN_CHEF=$(token chef) RND_TOKEN_DRIVER=$(token driver) \
    RND_TOKEN_ADMIN=$(token admin) "$VENV/bin/python" tools/schemathesis/seed.py "$BASE" \
    "$OUT/openapi.json" "$OUT/orders.dict"

failed=
for role in $ROLES; do
    log "schemathesis as $role-1 ($role)"
    # --generation-database none: nothing remembered between runs, so a run is its seed's alone.
    if RND_TOKEN=$(token "$role") "$VENV/bin/st" --config-file "$CONFIG" --no-color run \
        "$OUT/openapi.json" --url "$BASE" --checks all --max-examples "$EXAMPLES" \
        --seed "$SEED" --workers 1 --generation-database none \
        --report junit --report-junit-path "$OUT/reports/$role.xml"; then
        :
    else
        failed="$failed $role"
    fi
done

stop_stack
if [ -n "$failed" ]; then
    log "FAILED as:$failed (reports in target/schemathesis/reports, stack log in $STACK_LOG)"
    exit 1
fi
log "every operation conforms to the document, as $ROLES"
