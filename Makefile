# slipway's tasks. `make test` is the command CI runs (.ci/run).
GO ?= go

.PHONY: build test vet lint bench bench-scale fuzz e2e

build:
	$(GO) build -o bin/slipway ./cmd/slipway

# Every test, with the race detector, after vet and a gofmt check.
test: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) test -race -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

GOLANGCI_LINT_VERSION ?= v2.15.0
GOBIN ?= $(shell $(GO) env GOPATH)/bin

# golangci-lint with the curated .golangci.yml; installed (pinned) on first use.
lint: vet
	@test -x $(GOBIN)/golangci-lint || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GOBIN)/golangci-lint run ./...

# Micro-benchmarks of the hot paths (store commits, platform, analysis, spec).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The scale benchmark: 1,000 and 10,000 concurrent rollouts on the sim platform.
bench-scale:
	$(GO) test -run '^$$' -bench BenchmarkConcurrentRollouts -benchtime 1x -timeout 30m ./engine/

# Each fuzzer for FUZZTIME: spec's parser, and the proxy's fast path against net/http
# (request heads, chunked bodies, response heads; the seeds are in proxy/testdata/fuzz).
FUZZTIME ?= 60s
PROXY_FUZZERS = FuzzRequestHead FuzzChunkedBody FuzzResponseHead

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./spec/
	@for f in $(PROXY_FUZZERS); do \
		echo "$(GO) test -run '^$$' -fuzz '^'$$f'$$' -fuzztime $(FUZZTIME) ./proxy/"; \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./proxy/ || exit 1; \
	done

e2e:
	$(GO) test -race -count=1 -run 'TestE2E' ./cmd/slipway/
