# Weir build and test entry points. `make check` is what CI runs.
GO       ?= go
PKGS     := ./...
# Packages whose tests run under the race detector in `make check` (the rest
# run without it: process-driving suites gain little from -race and double
# their time).
RACE_PKGS := ./log/... ./broker/...

.PHONY: all build check deps lint test test-all test-race compat fuzz bench bench-compare clean consumer-soak outbox-soak

all: build

build:
	$(GO) build -o bin/weir ./cmd/weir

## check: everything CI runs — test deps, vet/gofmt, tests (race where it fits).
check: deps lint test-race test

deps:
	bash scripts/install-test-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

test-race:
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

# -count=1: the compat, consumer and outbox suites run a weir binary they build
# themselves, which the test cache does not see, so cached results could hide
# a broker change.
test:
	$(GO) test -count=1 -timeout 20m $$($(GO) list $(PKGS) | grep -v -E '/weir/(log|broker)(/|$$)')

## test-all: every package without the race detector.
test-all:
	$(GO) test -count=1 -timeout 20m $(PKGS)

## compat: the client compatibility suite alone, against a real weir serve
## (or an external broker: make compat WEIR_TEST_BROKER=host:port).
compat: deps
	$(GO) test -count=1 -timeout 10m -v ./compat

## fuzz: a short run of every fuzz target (longer with FUZZTIME=5m).
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME); \
	  done; \
	done

## bench: the benchmarks recorded in docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./log/... ./broker/... ./cmd/weir/... ./consumer/...

## bench-compare: weir bench against kfake on disk and the ack-only ceiling,
## alternating systems (docs/benchmarks.md): produce and consume of 100 B
## and 1 KiB, end-to-end p99 at 10,000 msg/s (10 rounds: one round's p99
## ratio ranges 0.8-1.3 on a 2-core VM). About 9 minutes.
bench-compare:
	bash scripts/bench-compare.sh produce 100 3 3s
	bash scripts/bench-compare.sh produce 1024 3 3s
	bash scripts/bench-compare.sh consume 100 3 5000000
	bash scripts/bench-compare.sh consume 1024 3 2000000
	bash scripts/bench-compare.sh e2e 10 10s

## consumer-soak: consumer/projection's heavy tests at full size (1,000,000
## events over 12 partitions, 100 worker kills, 10,000 WaitFor rounds);
## `make test` runs them scaled down.
consumer-soak:
	WEIR_CONSUMER_SOAK=1 $(GO) test -count=1 -timeout 4h -v -run 'TestKilledAndScaledWorkers|TestWaitForSeesTheRow' ./consumer/projection

## outbox-soak: the outbox relay's scenarios at full size (32 writers, 100,000
## rows over 1,000 aggregates, a 10 s open transaction, 50 relay kills, the
## leader stopped and the broker down for 30 s each);
## `make test` runs them scaled down.
outbox-soak:
	WEIR_OUTBOX_SOAK=1 $(GO) test -count=1 -timeout 2h -v -run 'TestConcurrentWritersCommitOrder|TestKill9RelayDuringLoad|TestSIGSTOPLeaderFailover|TestBrokerDownBacksOffAndRecovers|TestExactlyOnce' ./outbox/postgres

clean:
	rm -rf bin
