# roost: `make run` starts the server, `make test` runs every test.
GO      ?= go
BIN     := bin
PKGS    := ./...
# An execution count, not a duration: with a duration Go 1.26's fuzz
# coordinator can race its own deadline and fail with a bare "context
# deadline exceeded" and no failing input (golang/go#75804, fixed in 1.27).
# 20000 executions take 1 to 5 seconds per target here.
FUZZTIME ?= 20000x

.PHONY: run build test test-deps unit full-size fallback fuzz bench soak lint clean

run: build
	$(BIN)/roost

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/roost ./cmd/roost
	$(GO) build -o $(BIN)/roost-bench ./cmd/roost-bench

# test installs what the integration tests need (redis-server, chromium),
# then runs every test under the race detector and each fuzz target briefly.
test: test-deps lint unit full-size fallback fuzz

test-deps:
	@./.ci/deps.sh

unit:
	$(GO) test -race -count=1 -timeout 8m $(PKGS)

# The race detector slows these load tests tenfold, so under -race they run
# scaled down; here they run once more at the sizes the issues name.
full-size:
	$(GO) test -count=1 -timeout 5m -run 'TestHeapBoundedUnderProducerFlood|TestSlowConsumerEvictedOthersReceiveInOrder|TestIdleConnectionsOwnNoGoroutine' ./hub/

# The portable poller (a goroutine per connection, for systems without
# epoll) is built and tested on Linux too, so that it keeps working.
fallback:
	$(GO) test -count=1 -timeout 5m -tags netpoll_fallback ./netpoll/ ./hub/

# Each fuzz target runs for FUZZTIME on its seed corpus and new inputs.
fuzz:
	FUZZTIME=$(FUZZTIME) ./.ci/fuzz.sh

# bench runs the packages' Go benchmarks (the shard benchmarks that fill a
# million members at fixed iteration counts: with -benchtime in seconds each
# ramp-up step refills them), then the roost-bench suite (which
# rewrites the generated part of docs/benchmarks.md and docs/img/*.png). A
# failing Go benchmark does not stop the suite; the target still fails.
bench: build
	@status=0; \
	$(GO) test -run='^$$' -bench=. -skip='BenchmarkFanout|BenchmarkBurst|BenchmarkJoin|BenchmarkLeave|BenchmarkMemory' -benchmem -count=3 ./shard ./netpoll ./hub/... || status=1; \
	$(GO) test -run='^$$' -bench='BenchmarkJoin|BenchmarkLeave' -benchtime=200000x -benchmem -count=3 ./shard || status=1; \
	$(GO) test -run='^$$' -bench='BenchmarkMemory' -benchtime=1x -count=3 ./shard || status=1; \
	$(GO) test -run='^$$' -bench='BenchmarkFanout' -benchtime=200x -count=3 ./hub/ || status=1; \
	$(GO) test -run='^$$' -bench='BenchmarkBurst' -benchtime=10x -count=3 ./hub/ || status=1; \
	$(BIN)/roost-bench suite --out docs || status=1; \
	exit $$status

# soak cycles churn, slow and broadcast runs against one spawned roost for
# SOAKTIME (default 10m) and fails on loss or on RSS/goroutine growth; it is
# not part of `make test`.
SOAKTIME ?= 10m
soak: build
	$(BIN)/roost-bench soak --duration $(SOAKTIME)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN)
