# The whole test suite: what CI runs (.ci/run) and what the README tells you to run.
GO ?= go

.PHONY: test test-long bench bench-quick fuzz

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# The engine's randomised tests at length: many more model checks, a longer
# concurrent run, repeated. CI runs it after make test (a few minutes).
test-long:
	$(GO) test -race -count=2 -timeout 20m ./sessions -run 'TestModel|TestConcurrent|TestTouchRacingEnd|TestMaxSessionsConcurrent' -long -rapid.checks=20000
	$(GO) test -race -count=1 -timeout 10m ./wheel -rapid.checks=20000

# The full benchmark matrix (up to 10M sessions; long and memory-hungry).
bench:
	$(GO) run ./bench -sessions 100000,1000000,10000000 -out bench/results

bench-quick:
	$(GO) run ./bench -quick -out /tmp/sessionwheel-bench

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseID -fuzztime 30s ./sessions
	$(GO) test -run '^$$' -fuzz FuzzCookie -fuzztime 30s ./httpadapter
