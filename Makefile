# The whole test suite: what CI runs (.ci/run) and what the README tells you to run.
GO ?= go

.PHONY: test bench bench-quick fuzz

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# The full benchmark matrix (up to 10M sessions; long and memory-hungry).
bench:
	$(GO) run ./bench -sessions 100000,1000000,10000000 -out bench/results

bench-quick:
	$(GO) run ./bench -quick -out /tmp/sessionwheel-bench

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseID -fuzztime 30s ./sessions
	$(GO) test -run '^$$' -fuzz FuzzCookie -fuzztime 30s ./httpadapter
