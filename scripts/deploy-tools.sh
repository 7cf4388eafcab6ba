#!/usr/bin/env bash
# Installs the pinned deployment tools (SAM CLI, cfn-lint + serverless rules, cargo-lambda) into
# a private virtualenv under target/, then runs one of them. Nothing is installed system-wide.
#
#   scripts/deploy-tools.sh install
#   scripts/deploy-tools.sh sam validate --lint
#   scripts/deploy-tools.sh cfn-lint template.yaml
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${DEPLOY_TOOLS_VENV:-target/deploy-tools}"
# Relative to the repository root, or absolute.
[[ "$venv" == /* ]] || venv="$PWD/$venv"
requirements="tools/requirements-deploy.txt"
stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"

install() {
    if [[ -f "$stamp" ]]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || {
        echo "deploy-tools: python3 is required" >&2
        exit 1
    }
    echo "deploy-tools: installing $(grep -cv '^#' "$requirements") pinned tools into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
}

install
if [[ $# -eq 0 || "$1" == "install" ]]; then
    exit 0
fi
tool="$1"
shift
export PATH="$venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
exec "$tool" "$@"
