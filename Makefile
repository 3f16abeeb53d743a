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

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./spec/

e2e:
	$(GO) test -race -count=1 -run 'TestE2E' ./cmd/slipway/
