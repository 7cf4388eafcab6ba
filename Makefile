# RND Realtime developer tasks. POSIX make; every target is a thin wrapper.
#
#   make test            every test: the cargo tests with the test database (moto's DynamoDB
#                        server, installed into target/moto and started and stopped for the
#                        run), then the AsyncAPI document's validation (@asyncapi/parser), then
#                        the TypeScript SDK's tests (clients/js: unit, then end-to-end against
#                        rnd-local), then the demo page's browser test (headless chromium), then
#                        the HTTP API's contract test
#   make lint            rustfmt check + clippy with warnings as errors
#   make moto            start the test database in the background for manual work
#   make moto-stop
#   make run             the local stack (rnd-local)
#   make deps            install the npm dev dependencies (playwright-core, @asyncapi/parser, the
#                        SDK's), moto and schemathesis
#   make validate        sam validate --lint and cfn-lint with the serverless rules
#   make sam-build       sam build of every function (x86_64: this machine has no aarch64 std)
#   make test-sdk        only the TypeScript SDK's tests (clients/js; scripts/sdk-test.sh)
#   make test-browser    only the demo page's browser test (headless Debian chromium + playwright-core)
#   make test-contract   only the HTTP API's contract test: schemathesis (pinned in
#                        tools/schemathesis, installed into target/schemathesis) runs every
#                        operation of the OpenAPI document with `--checks all` against a fresh
#                        in-memory rnd-local, as each role, with a fixed seed; any failure fails
#   make bench-micro     criterion micro-benchmarks of the hot paths (derivation, serialization, JWT)
#   make bench-init      init / first / warm invocation times of the release functions (RUNS=5)
#   make bench-load      load bench (`rnd-loadgen bench`) against a fresh in-memory stack
#                        (`rnd-local serve`, started and stopped by scripts/bench.sh): BENCH_ORDERS
#                        orders, each with a driver at BENCH_RATE Hz and BENCH_SUBSCRIBERS
#                        subscribers, for BENCH_DURATION s, next to BENCH_IDLE idle connections;
#                        prints one JSON line (latency, loss, work and USD per million location
#                        updates)
#   make bench-scale     bench-load at 1 000 and at 10 000 connections in total, same room size
#   make bench-idle      BENCH_CONNECTIONS idle connections; server memory per connection (JSON)
#   make bench-knee      the knee: KNEE_ORDERS orders x KNEE_SUBSCRIBERS subscribers, the location
#                        rate swept over KNEE_RATES Hz (KNEE_DURATION s each) on a stack that
#                        accepts every location; a row per rate (deliveries/s, p50/p99/max, lost,
#                        server CPU) and a JSON line with kneeDeliveriesPerSecond (p99 <= 50 ms,
#                        nothing lost)
#   make bench-cost      the bill per million location updates against its floor (1 + S messages)
#                        at S = 4 and S = 2 subscribers, the drivers asking for every
#                        acknowledgement and for refusals only (BENCH_ORDERS orders, every 2 s)
#   make bench-routing   bench-load (BENCH_ORDERS orders, every 2 s, no idle) on a stack routing
#                        ETAs with its built-in OSRM emulator: routing calls per order at its
#                        start and per update, priced at every provider's list price
#   make fuzz            coverage-guided fuzzing (cargo-fuzz, nightly; not in `make test` nor CI)
#                        of the WebSocket parser, the stream-record decoder, the authorizer and
#                        the HTTP bodies: FUZZ_SECS s per target (default 120), then executions,
#                        crashes and corpus size per target (FUZZ_TARGETS: only these;
#                        scripts/fuzz.sh, fuzz/README.md)

.POSIX:

MOTO = scripts/moto.sh

.PHONY: test lint moto moto-stop run deps validate sam-build test-sdk test-browser test-contract \
	bench-micro bench-init bench-load bench-scale bench-idle bench-knee bench-cost bench-routing fuzz

DEPLOY_TOOLS = scripts/deploy-tools.sh
SAM_ARCH = x86_64

BENCH = scripts/bench.sh
BENCH_ORDERS = 100
BENCH_SUBSCRIBERS = 4
# Every 2 s: under the stack's one-per-second limit, so no send is refused for arriving a
# millisecond early (the product notes' driver app sends every 5-10 s).
BENCH_RATE = 0.5
BENCH_DURATION = 30
# 100 orders x (1 driver + 4 subscribers) = 500 room members; + 500 idle = 1 000 connections,
# + 9 500 idle = 10 000 (bench-scale).
BENCH_IDLE = 500
# The shape of the reference figures (README, Performance): 1 000 orders x 2 subscribers, the
# drivers at 1-32 Hz (24 Hz: twice the reference's knee).
KNEE_ORDERS = 1000
KNEE_SUBSCRIBERS = 2
KNEE_RATES = 1,2,3,4,5,6,7,8,10,12,14,16,18,20,22,24,26,28,32
KNEE_DURATION = 10
BENCH_CONNECTIONS = 10000
FUZZ_SECS = 120
# Empty: every target; or some of ws_message stream_record authorizer_token http_bodies.
FUZZ_TARGETS =
BENCH_LOAD_ARGS = --orders $(BENCH_ORDERS) --subscribers $(BENCH_SUBSCRIBERS) \
	--rate-hz $(BENCH_RATE) --duration-secs $(BENCH_DURATION)

test:
	$(MOTO) run -- cargo test --workspace --all-targets
	scripts/asyncapi-validate.sh
	scripts/sdk-test.sh
	scripts/browser-test.sh
	scripts/contract-test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

moto:
	@endpoint=$$($(MOTO) start) && \
	echo "moto (DynamoDB + DynamoDB Streams) is running at $$endpoint" && \
	echo "  use it:   export DYNAMODB_ENDPOINT=$$endpoint AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1" && \
	echo "  stop it:  make moto-stop   (or $(MOTO) stop)"

moto-stop:
	$(MOTO) stop

run:
	cargo run --release -p rnd-local

deps:
	npm ci --no-audit --no-fund
	cd tools/asyncapi && npm ci --ignore-scripts --no-audit --no-fund
	cd clients/js && npm ci --ignore-scripts --no-audit --no-fund
	$(MOTO) install
	scripts/python-venv.sh schemathesis tools/schemathesis/requirements.txt target/schemathesis/venv

validate:
	$(DEPLOY_TOOLS) sam validate --lint --template-file template.yaml
	$(DEPLOY_TOOLS) cfn-lint template.yaml --append-rules cfn_lint_serverless.rules

sam-build:
	$(DEPLOY_TOOLS) sam build --beta-features --parameter-overrides Architecture=$(SAM_ARCH)

test-sdk:
	scripts/sdk-test.sh

test-browser:
	scripts/browser-test.sh

test-contract:
	scripts/contract-test.sh

# Every Lambda function (package = binary name).
FUNCTIONS = ws-authorizer ws-connect ws-disconnect ws-subscribe ws-unsubscribe \
	ws-driver-location ws-resume ws-default stream-fanout stream-push http-api
RUNS = 5

bench-micro:
	cargo bench -p rnd-domain -p rnd-handlers --bench hot_paths

# One build per function, as SAM builds them: each links only the rnd-lambda features its
# crate enables (one build of all would unify their features into every binary).
bench-init:
	for f in $(FUNCTIONS); do cargo build --release -p $$f || exit 1; done
	$(MOTO) run -- cargo run -p lambda-init-bench -- --runs $(RUNS)

bench-load:
	cargo build --release -p rnd-local -p rnd-loadgen
	$(BENCH) load $(BENCH_LOAD_ARGS) --idle $(BENCH_IDLE)

bench-scale:
	cargo build --release -p rnd-local -p rnd-loadgen
	$(BENCH) load $(BENCH_LOAD_ARGS) --idle 500
	$(BENCH) load $(BENCH_LOAD_ARGS) --idle 9500

bench-idle:
	cargo build --release -p rnd-local -p rnd-loadgen
	$(BENCH) idle --connections $(BENCH_CONNECTIONS)

bench-knee:
	cargo build --release -p rnd-local -p rnd-loadgen
	RND_LOCAL_ARGS="--location-min-interval-ms 0" $(BENCH) knee --orders $(KNEE_ORDERS) \
		--subscribers $(KNEE_SUBSCRIBERS) --rates $(KNEE_RATES) --duration-secs $(KNEE_DURATION)

bench-cost:
	cargo build --release -p rnd-local -p rnd-loadgen
	for s in 4 2; do for acks in all refusals; do \
		$(BENCH) load --orders $(BENCH_ORDERS) --subscribers $$s --rate-hz $(BENCH_RATE) \
			--duration-secs $(BENCH_DURATION) --idle 0 --acks $$acks || exit 1; \
	done; done

bench-routing:
	cargo build --release -p rnd-local -p rnd-loadgen
	RND_LOCAL_ARGS="--eta-provider osrm" $(BENCH) load --orders $(BENCH_ORDERS) \
		--subscribers $(BENCH_SUBSCRIBERS) --rate-hz $(BENCH_RATE) \
		--duration-secs $(BENCH_DURATION) --idle 0

fuzz:
	FUZZ_SECS=$(FUZZ_SECS) scripts/fuzz.sh $(FUZZ_TARGETS)
