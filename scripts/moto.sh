#!/usr/bin/env bash
# The test database of RND Realtime: moto's DynamoDB + DynamoDB Streams server (Apache-2.0).
#
# Installs moto at the versions pinned in tools/moto/requirements.txt into a virtual
# environment in target/moto/venv (never globally; reinstalled when the pins change), and runs
# tools/moto/serve.py (moto's WSGI application, one request at a time: see its docstring) in
# memory on a free loopback port. Needs python3 with venv; nothing else.
#
# Usage:
#   scripts/moto.sh start            start it; prints the endpoint as the last stdout line
#   scripts/moto.sh stop             stop the instance recorded in the state dir
#   scripts/moto.sh status           print the endpoint if it is running (exit 1 if not)
#   scripts/moto.sh install          only create/refresh the virtual environment
#   scripts/moto.sh run -- CMD ...   start, run CMD with DYNAMODB_ENDPOINT set, stop
#
# Environment:
#   MOTO_STATE      state dir (pid, port, log). Default: target/moto/server
#                   (for `run`: target/moto/run-<pid>, so runs never collide).
#   MOTO_PORT       port to use. Default: a free port picked at random.
#   MOTO_TIMEOUT    seconds to wait for it to answer. Default: 60.
#   MOTO_VENV       virtual environment. Default: target/moto/venv
#   PYTHON          python used to create the virtual environment. Default: python3.
#
# It only ever stops a process whose pid it recorded itself, and only while that pid is
# still a python process running tools/moto/serve.py on the recorded port.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TIMEOUT="${MOTO_TIMEOUT:-60}"
REQUIREMENTS="$ROOT/tools/moto/requirements.txt"
SERVE="$ROOT/tools/moto/serve.py"
VENV="${MOTO_VENV:-$ROOT/target/moto/venv}"

log() { printf 'moto: %s\n' "$*" >&2; }
die() {
    printf 'moto: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
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
    LOG_FILE="$STATE_DIR/moto.log"
}

# True if $1 is a live python process running tools/moto/serve.py with --port $2.
is_our_process() {
    local pid="$1" port="$2" cmdline exe
    [[ "$pid" =~ ^[0-9]+$ && "$port" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    # The process may exit between the check above and this read: say nothing, it is not ours.
    cmdline="$({ tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null)" || return 1
    exe="$(head -n 1 <<<"$cmdline")"
    [[ "$(basename "$exe")" == python* ]] || return 1
    grep -qx -- "$SERVE" <<<"$cmdline" || return 1
    grep -qx -- '--port' <<<"$cmdline" || return 1
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

# --- the virtual environment -----------------------------------------------

# Creates the venv and installs the pins when it is missing or the pins changed since.
ensure_venv() {
    PYTHON="$PYTHON" "$ROOT/scripts/python-venv.sh" moto "$REQUIREMENTS" "$VENV"
}

# --- ports -----------------------------------------------------------------

# Prints a free TCP port on 127.0.0.1.
free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# True if nothing listens on 127.0.0.1:$1 (a bind succeeds).
port_is_free() {
    "$PYTHON" - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# --- commands --------------------------------------------------------------

# Starts moto; sets ENDPOINT. Does not print it.
do_start() {
    mkdir -p "$STATE_DIR"
    read_state
    if [[ -n "$RECORDED_PID" ]]; then
        if is_our_process "$RECORDED_PID" "$RECORDED_PORT"; then
            die "already running (pid $RECORDED_PID) at http://127.0.0.1:$RECORDED_PORT for state dir $STATE_DIR; stop it first with: $0 stop${MOTO_STATE:+ (with MOTO_STATE=$MOTO_STATE)}"
        fi
        log "removing stale state in $STATE_DIR (pid $RECORDED_PID is gone)"
        clear_state
    fi

    ensure_venv

    local attempts=1 attempt port pid deadline
    [[ -z "${MOTO_PORT:-}" ]] && attempts=3
    for ((attempt = 1; attempt <= attempts; attempt++)); do
        if [[ -n "${MOTO_PORT:-}" ]]; then
            port="$MOTO_PORT"
            [[ "$port" =~ ^[0-9]+$ ]] || die "MOTO_PORT=$port is not a port number"
        else
            port="$(free_port)"
        fi
        port_is_free "$port" || die "port $port is already in use on 127.0.0.1; set MOTO_PORT to a free port or leave it unset"

        log "starting moto on 127.0.0.1:$port; log: $LOG_FILE"
        # Own session (setsid) so a Ctrl-C in the terminal after `start` does not kill it;
        # the child records its own pid before exec'ing python.
        clear_state
        printf '%s\n' "$port" >"$PORT_FILE"
        # shellcheck disable=SC2016 # $$ and $@ expand in the inner bash.
        (
            cd "$STATE_DIR"
            exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
                "$VENV/bin/python" "$SERVE" --host 127.0.0.1 --port "$port"
        ) </dev/null >"$LOG_FILE" 2>&1 &

        local i
        for ((i = 0; i < 50; i++)); do
            [[ -s "$PID_FILE" ]] && break
            sleep 0.1
        done
        [[ -s "$PID_FILE" ]] || die "moto did not start; log:$(printf '\n'; cat "$LOG_FILE")"
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
                log "moto exited before answering; log ($LOG_FILE):"
                cat "$LOG_FILE" >&2
                exit 1
            fi
            # serve.py prints its ready line once the socket listens.
            if grep -q '^moto ready on ' "$LOG_FILE"; then
                log "ready at $ENDPOINT (pid $pid)"
                return 0
            fi
            if ((SECONDS >= deadline)); then
                log "moto did not answer on $ENDPOINT within ${TIMEOUT}s; log ($LOG_FILE):"
                cat "$LOG_FILE" >&2
                do_stop
                exit 1
            fi
            sleep 0.1
        done
    done
    die "could not start moto"
}

do_stop() {
    read_state
    if [[ -z "$RECORDED_PID" ]]; then
        log "nothing recorded in $STATE_DIR; nothing to stop"
        clear_state
        return 0
    fi
    if ! is_our_process "$RECORDED_PID" "$RECORDED_PORT"; then
        log "pid $RECORDED_PID is no longer moto on port ${RECORDED_PORT:-?}; not killing anything, clearing state"
        clear_state
        return 0
    fi
    log "stopping moto (pid $RECORDED_PID, port $RECORDED_PORT)"
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
            log "moto's log kept in $LOG_FILE"
        fi
    fi
    exit "$rc"
}

do_run() {
    [[ $# -gt 0 && "$1" == "--" ]] && shift
    [[ $# -gt 0 ]] || die "usage: $0 run -- COMMAND [ARGS...]"

    RUN_PRIVATE_STATE=0
    if [[ -n "${MOTO_STATE:-}" ]]; then
        set_state_dir "$MOTO_STATE"
    else
        set_state_dir "$ROOT/target/moto/run-$$"
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
            set_state_dir "${MOTO_STATE:-$ROOT/target/moto/server}"
            do_start
            log "stop it with: $0 stop${MOTO_STATE:+ (with MOTO_STATE=$MOTO_STATE)}"
            printf '%s\n' "$ENDPOINT"
            ;;
        stop)
            set_state_dir "${MOTO_STATE:-$ROOT/target/moto/server}"
            do_stop
            ;;
        status)
            set_state_dir "${MOTO_STATE:-$ROOT/target/moto/server}"
            do_status
            ;;
        install)
            ensure_venv
            log "moto is installed in $VENV"
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
