# The whole test suite: what CI runs (.ci/run) and what the README tells you to run.
GO ?= go

.PHONY: test test-e2e tools bench bench-quick fuzz

test: tools
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# Browser tests of sessiond's page: headless Chromium (Debian's chromium)
# through chromedp, in the e2e module of their own.
test-e2e: TOOLS_PKGS += chromium:chromium
test-e2e: tools
	cd e2e && $(GO) vet ./... && $(GO) test -race -count=1 ./...

# The full benchmark matrix (up to 10M sessions; long and memory-hungry).
bench:
	$(GO) run ./bench -sessions 100000,1000000,10000000 -out bench/results

bench-quick:
	$(GO) run ./bench -quick -out /tmp/sessionwheel-bench

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseID -fuzztime 30s ./sessions
	$(GO) test -run '^$$' -fuzz FuzzCookie -fuzztime 30s ./httpadapter

# Debian packages that tests run for real: promtool (package prometheus) for
# the alerting rules in deploy/. Installed only when missing and only as root
# (as CI runs); otherwise the tests that need them skip (and fail if CI=true).
# Where systemd runs, installing prometheus also enables its service (:9090).
TOOLS_PKGS := promtool:prometheus

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
