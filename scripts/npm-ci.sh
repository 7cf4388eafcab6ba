#!/bin/sh
# Installs the npm packages pinned in DIR/package-lock.json into DIR/node_modules with
# `npm ci` (install scripts off), only when they are missing or older than the lock file.
#
#   scripts/npm-ci.sh DIR      (scripts/asyncapi-validate.sh and scripts/sdk-test.sh use it)
set -eu

DIR=$1
INSTALLED=$DIR/node_modules/.package-lock.json
if [ ! -f "$INSTALLED" ] || [ "$DIR/package-lock.json" -nt "$INSTALLED" ]; then
    echo "npm-ci: npm ci in $DIR" >&2
    (cd "$DIR" && npm ci --ignore-scripts --no-audit --no-fund)
fi
