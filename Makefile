# Every target installs what it needs, so `make demo` and `make test` work on a fresh clone.
NODE      ?= node
NPM       ?= npm
C8        := node_modules/.bin/c8
TSC       := node_modules/.bin/tsc
# Unit and integration tests run two files at a time; end-to-end tests drive real
# mender clients that share a few global paths, so they run one file at a time.
TEST_CONCURRENCY ?= 2

.PHONY: all install build test test-unit test-integration e2e coverage demo bench clean

all: build

node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed

build: install
	rm -rf dist
	$(TSC) -p tsconfig.json

test: build
	@mkdir -p coverage
	$(C8) bash -c 'set -o pipefail; \
	  $(NODE) --test --test-concurrency=$(TEST_CONCURRENCY) dist/spec/unit dist/spec/integration | tee coverage/unit-integration.tap && \
	  $(NODE) --test --test-concurrency=1 dist/spec/e2e | tee coverage/e2e.tap'
	@$(NODE) dist/spec/support/tap-summary.js coverage/unit-integration.tap coverage/e2e.tap

test-unit: build
	$(NODE) --test dist/spec/unit

test-integration: build
	$(NODE) --test --test-concurrency=$(TEST_CONCURRENCY) dist/spec/integration

e2e: build
	$(NODE) --test --test-concurrency=1 dist/spec/e2e

demo: build
	$(NODE) dist/fixtures/demo/run-demo.js

bench: build
	$(NODE) dist/bench/run-all.js

clean:
	rm -rf dist coverage node_modules/.installed
