# The whole test suite: what CI runs (.ci/run) and what the README tells you to run.
GO ?= go

# Every module of the repository: the library (.) and the benchmark harness
# (bench), which has a go.mod of its own so that the library's users never
# inherit its dependencies. Each is vetted and tested on its own, as it
# resolves without a go.work.
MODULES := $(sort $(patsubst ./%,%,$(patsubst %/go.mod,%,$(shell find . -name go.mod -not -path '*/testdata/*'))))

.PHONY: test test-long bench bench-quick fuzz

test:
	@set -e; for m in $(MODULES); do \
		echo "== module $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) test -race -count=1 ./...); \
	done

# The engine's randomised tests at length: many more model checks, a longer
# concurrent run, repeated. CI runs it after make test (a few minutes).
test-long:
	$(GO) test -race -count=2 -timeout 20m ./sessions -run 'TestModel|TestConcurrent|TestTouchRacingEnd|TestMaxSessionsConcurrent' -long -rapid.checks=20000
	$(GO) test -race -count=1 -timeout 10m ./wheel -rapid.checks=20000

# The full benchmark matrix (up to 10M sessions; long and memory-hungry).
bench:
	cd bench && $(GO) run . -sessions 100000,1000000,10000000 -out results

bench-quick:
	cd bench && $(GO) run . -quick -out /tmp/sessionwheel-bench

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseID -fuzztime 30s ./sessions
	$(GO) test -run '^$$' -fuzz FuzzCookie -fuzztime 30s ./httpadapter
