#!/bin/sh
# A Python tool at pinned versions, in a virtual environment of its own (never globally):
# creates VENV and installs REQUIREMENTS into it when it is missing or the pins changed since
# (a sha256 of the requirements file is kept in VENV/.requirements.sha256). Needs python3 with
# venv; prints nothing on stdout.
#
#   scripts/python-venv.sh NAME REQUIREMENTS VENV
#
#   NAME          what is installed, for the messages (e.g. moto)
#   REQUIREMENTS  the pinned requirements file
#   VENV          the virtual environment's directory
#
# Environment:
#   PYTHON  python used to create the virtual environment. Default: python3.
#
# Used by scripts/moto.sh (tools/moto) and scripts/contract-test.sh (tools/schemathesis).
set -eu

if [ $# -ne 3 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
NAME=$1
REQUIREMENTS=$2
VENV=$3
PYTHON=${PYTHON:-python3}

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$NAME" "$*" >&2
    exit 1
}

[ -f "$REQUIREMENTS" ] || die "no requirements file $REQUIREMENTS"
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
have=
[ -f "$stamp" ] && have=$(cat "$stamp")
if [ -x "$VENV/bin/python" ] && [ "$want" = "$have" ]; then
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 ||
    die "'$PYTHON' not found: install Python 3 (Debian: apt-get install -y python3 python3-venv)"
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
    die "'$PYTHON' has no venv/ensurepip (Debian: apt-get install -y python3-venv)"
log "installing $NAME from $REQUIREMENTS into $VENV"
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV" >&2 || die "could not create the virtual environment $VENV"
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --requirement "$REQUIREMENTS" >&2; then
    rm -rf "$VENV"
    die "pip could not install $REQUIREMENTS"
fi
printf '%s\n' "$want" >"$stamp"
