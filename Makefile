# slipway's tasks. `make test` is the command CI runs (.ci/run).
GO ?= go

.PHONY: build test test-deps vet lint bench bench-scale bench-kube fuzz e2e

build:
	$(GO) build -o bin/slipway ./cmd/slipway

# Every test, with the race detector, after vet and a gofmt check; scripts/test-deps first
# installs what the tests run besides Go (Node and npm, Prometheus, openssl) when it is
# missing, and builds the Kubernetes test cluster (scripts/kube-up.sh build; once, cached).
test: test-deps vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) test -race -count=1 -timeout 20m ./...

test-deps:
	@scripts/test-deps

vet:
	$(GO) vet ./...

GOLANGCI_LINT_VERSION ?= v2.15.0
GOBIN ?= $(shell $(GO) env GOPATH)/bin

# golangci-lint with the curated .golangci.yml; installed (pinned) on first use.
lint: vet
	@test -x $(GOBIN)/golangci-lint || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GOBIN)/golangci-lint run ./...

# Micro-benchmarks of the hot paths (store commits, platform, analysis, spec); not the
# kubernetes rollouts, which start clusters (bench-kube).
bench:
	$(GO) test -run '^$$' -bench . -skip BenchmarkKubeRollouts -benchmem ./...

# The scale benchmark: 1,000 and 10,000 concurrent rollouts on the sim platform.
bench-scale:
	$(GO) test -run '^$$' -bench BenchmarkConcurrentRollouts -benchtime 1x -timeout 30m ./engine/

# 1,000 rollouts on the kubernetes platform against test clusters of its own (scripts/kube-up.sh,
# built first; it needs openssl): reconcile latency, API requests per rollout step, requests while
# idle. About 20 minutes on two cores. KUBE_BENCH_FLAGS passes -kube-apps N and -kube-idle D.
bench-kube:
	@scripts/kube-up.sh build
	$(GO) test -run '^$$' -bench BenchmarkKubeRollouts -benchtime 1x -timeout 60m ./platform/kubernetes/ $(KUBE_BENCH_FLAGS)

# Every fuzzer of the module (each func Fuzz* in a _test.go file, found anew on every run) for
# FUZZTIME: spec's and flags' parsers, the flag evaluator, OFREP's value decoder, the web
# provider's JSON path, the CLI's escaping, and the proxy's fast path (proxy/fastpath)
# against net/http (request heads, chunked bodies, response heads). Seed corpora are in each package's
# testdata/fuzz.
FUZZTIME ?= 60s

fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		pkg=./$$(dirname $${f#./}); \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "$(GO) test -run '^$$' -fuzz '^'$$name'$$' -fuzztime $(FUZZTIME) $$pkg"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

e2e:
	$(GO) test -race -count=1 -run 'TestE2E' ./cmd/slipway/
