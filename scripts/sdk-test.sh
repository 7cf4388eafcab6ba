#!/bin/sh
# The TypeScript SDK's tests (clients/js): that src/protocol.ts is what docs/asyncapi.yaml
# generates, the build (tsc), that the bundle rnd-local serves to its demo page
# (local/rnd-local/demo/realtime-client.js) is what the build bundles to, the unit tests (node's test runner, a fake socket and clock), then
# the end-to-end tests against a real rnd-local that they start, kill and restart themselves.
# Installs the SDK's pinned dev dependencies (clients/js/package-lock.json) with `npm ci` when
# they are missing or older than the lock file, and builds rnd-local with cargo. Exits non-zero
# on any failure.
#
#   scripts/sdk-test.sh            (make test runs it; make test-sdk runs only it)
set -eu

cd "$(dirname "$0")/.."
DIR=clients/js
scripts/npm-ci.sh "$DIR"

(cd "$DIR" && npm test)

cargo build -p rnd-local
# Where cargo put it: CARGO_TARGET_DIR when set (relative to here, as cargo reads it), else target/.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in
/*) ;;
*) TARGET_DIR="$(pwd)/$TARGET_DIR" ;;
esac
(cd "$DIR" && RND_LOCAL_BIN="$TARGET_DIR/debug/rnd-local" npm run test:e2e)
