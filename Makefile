# The whole test suite: what CI runs (.ci/run) and what the README tells you to run.
GO ?= go

# The modules that make test covers: the library (.), the demo server
# (cmd/sessiond), the Redis store (redisstore) and the benchmark harness
# (bench), each with a go.mod of its
# own so that the library's users never inherit their dependencies. Each is
# vetted and tested on its own, as it resolves without the go.work (which
# is there for `go run ./cmd/sessiond` from the root): GOWORK=off. The browser
# tests (e2e, a module too) need Chromium and run in make test-e2e.
export GOWORK := off
MODULES := $(filter-out e2e,$(sort $(patsubst ./%,%,$(patsubst %/go.mod,%,$(shell find . -name go.mod -not -path '*/testdata/*')))))

.PHONY: test test-long test-e2e tools bench bench-quick fuzz

test: tools
	@set -e; for m in $(MODULES); do \
		echo "== module $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) test -race -count=1 ./...); \
	done
	@# The race detector keeps the engine's table on the heap; its production
	@# memory path (off the heap, on huge pages) is tested without it.
	$(GO) test -count=1 ./sessions/... ./wheel

# The engine's randomised tests at length: many more model checks, a longer
# concurrent run, repeated. CI runs it after make test (a few minutes).
test-long:
	$(GO) test -race -count=2 -timeout 20m ./sessions -run 'TestModel|TestOwnerModel|TestOwnersConcurrent|TestConcurrent|TestTouchRacingEnd|TestMaxSessionsConcurrent' -long -rapid.checks=20000
	$(GO) test -race -count=1 -timeout 10m ./wheel -rapid.checks=20000

# Browser tests of sessiond's page: headless Chromium (Debian's chromium)
# through chromedp, in the e2e module of their own.
test-e2e: TOOLS_PKGS += chromium:chromium
test-e2e: tools
	cd e2e && $(GO) vet ./... && $(GO) test -race -count=1 ./...

# The full benchmark matrix (up to 10M sessions; long and memory-hungry).
bench:
	cd bench && $(GO) run . -sessions 100000,1000000,10000000 -out results

bench-quick:
	cd bench && $(GO) run . -quick -out /tmp/sessionwheel-bench

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseID -fuzztime 30s ./sessions
	$(GO) test -run '^$$' -fuzz FuzzRestore -fuzztime 30s ./sessions
	$(GO) test -run '^$$' -fuzz FuzzCookie -fuzztime 30s ./httpadapter

# Debian packages that tests run for real: promtool (package prometheus) for
# the alerting rules in deploy/; redis-server and redis-cli (redis-tools) for
# redisstore, whose tests start their own servers (Debian's package starts
# no service where policy-rc.d forbids it, as in containers). Installed only when missing and only as root
# (as CI runs); otherwise the tests that need them skip (and fail if CI=true).
# Where systemd runs, installing prometheus also enables its service (:9090).
TOOLS_PKGS := promtool:prometheus redis-server:redis-server redis-cli:redis-tools

tools:
	@for tp in $(TOOLS_PKGS); do \
		tool=$${tp%%:*}; pkg=$${tp#*:}; \
		command -v $$tool >/dev/null 2>&1 && continue; \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing $$pkg for $$tool"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkg >/dev/null || exit 1; \
		else \
			echo "$$tool is missing (Debian package $$pkg): the tests that need it will skip"; \
		fi; \
	done
