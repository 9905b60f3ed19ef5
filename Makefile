# The whole test suite: what CI runs (.ci/run) and what the README tells you to run.
GO ?= go

# Every module of the repository: the library (.) and the benchmark harness
# (bench), which has a go.mod of its own so that the library's users never
# inherit its dependencies. Each is vetted and tested on its own, as it
# resolves without a go.work.
MODULES := $(sort $(patsubst ./%,%,$(patsubst %/go.mod,%,$(shell find . -name go.mod -not -path '*/testdata/*'))))

.PHONY: test bench bench-quick fuzz

test:
	@set -e; for m in $(MODULES); do \
		echo "== module $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) test -race -count=1 ./...); \
	done

# The full benchmark matrix (up to 10M sessions; long and memory-hungry).
bench:
	cd bench && $(GO) run . -sessions 100000,1000000,10000000 -out results

bench-quick:
	cd bench && $(GO) run . -quick -out /tmp/sessionwheel-bench

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseID -fuzztime 30s ./sessions
	$(GO) test -run '^$$' -fuzz FuzzCookie -fuzztime 30s ./httpadapter
