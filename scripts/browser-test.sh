#!/bin/sh
# Browser test of rnd-local's demo page (tests/browser/): headless Debian chromium driven by
# playwright-core, which never downloads a browser. Installs chromium with apt when missing,
# runs `npm ci` when playwright-core is missing, builds rnd-local and runs the test.
# Screenshots land in target/browser/. Exits non-zero on failure.
#
#   scripts/browser-test.sh            (or: make test-browser)
#   CHROMIUM=/path/to/chromium scripts/browser-test.sh
set -eu

cd "$(dirname "$0")/.."
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$CHROMIUM" ]; then
    echo "browser-test: installing chromium (apt)" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
fi

if [ ! -f node_modules/playwright-core/package.json ]; then
    echo "browser-test: npm ci" >&2
    # playwright-core downloads nothing on install; keep it that way.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

cargo build -p rnd-local
# Where cargo put it: CARGO_TARGET_DIR when set (relative to here, as cargo reads it), else target/.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in
/*) ;;
*) TARGET_DIR="$(pwd)/$TARGET_DIR" ;;
esac
mkdir -p target/browser
CHROMIUM="$CHROMIUM" RND_LOCAL_BIN="$TARGET_DIR/debug/rnd-local" \
    node --test --test-reporter=spec tests/browser/
