#!/bin/sh
# Validates docs/asyncapi.yaml with the AsyncAPI parser (@asyncapi/parser, pinned in
# tools/asyncapi/package-lock.json): it must parse with no error and no warning. Installs the
# parser into tools/asyncapi/node_modules with `npm ci` when it is missing or older than the
# lock file (install scripts off: the parser needs none). Exits non-zero when the document is
# invalid. That the document says what the code does is another test's job:
# `cargo test -p rnd-domain --test asyncapi`.
#
#   scripts/asyncapi-validate.sh [FILE]     (default docs/asyncapi.yaml; make test runs it)
set -eu

cd "$(dirname "$0")/.."
DIR=tools/asyncapi
scripts/npm-ci.sh "$DIR"

node "$DIR/validate.mjs" "${1:-docs/asyncapi.yaml}"
