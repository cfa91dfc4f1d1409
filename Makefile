# Switchboard. `make help` lists the targets.

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/switchboard-gw/switchboard/gateway/buildinfo.Version=$(VERSION)
# Every directory under plugins/ with a main package is a plugin.
PLUGINS   := $(patsubst plugins/%/main.go,%,$(wildcard plugins/*/main.go))
TOOLS     := $(GO) tool -modfile=scripts/tools/go.mod
TEST_FLAGS ?= -race -timeout 25m

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: gateway plugins ## Build bin/switchboard and every plugin under bin/plugins/.

.PHONY: gateway
gateway: ## Build bin/switchboard.
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/switchboard ./gateway/cmd/switchboard

.PHONY: plugins
plugins: ## Build each plugin with its plugin.json manifest (name, version, protocol, sha256).
	@set -e; for p in $(PLUGINS); do \
		$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/plugins/$$p/$$p ./plugins/$$p; \
		scripts/plugin-manifest.sh $(BIN)/plugins/$$p $$p $(VERSION); \
	done

.PHONY: run
run: build ## Build, then start the gateway on 127.0.0.1:8080 (LISTEN=host:port for another) with SQLite under ./data/.
	$(BIN)/switchboard serve --config configs/gateway.yaml $(if $(LISTEN),--listen $(LISTEN))

STORE_PKG := ./gateway/store/sqlstore

.PHONY: test
test: build openapi-lint ## Run every test (and the OpenAPI lint); the store suite runs on SQLite and on PostgreSQL ($$SWITCHBOARD_TEST_POSTGRES_URL).
	$(GO) test $(TEST_FLAGS) $$($(GO) list ./... | grep -vx 'github.com/switchboard-gw/switchboard/gateway/store/sqlstore')
	@echo "store conformance suite (SQLite and PostgreSQL):"
	$(GO) test $(TEST_FLAGS) -v $(STORE_PKG) | grep -E '^(--- [A-Z]+: Test[A-Za-z]+ |ok|FAIL|PASS$$)'
	$(MAKE) fuzz

OPENAPI_LINT := scripts/openapi-lint

.PHONY: openapi-lint
openapi-lint: ## Lint gateway/httpapi/openapi.yaml with the Redocly CLI pinned in scripts/openapi-lint/ (scripts/test-deps.sh installs it).
	@test -x $(OPENAPI_LINT)/node_modules/.bin/redocly || { echo "openapi-lint: run scripts/test-deps.sh (npm ci in $(OPENAPI_LINT))" >&2; exit 1; }
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(OPENAPI_LINT)/node_modules/.bin/redocly lint \
		--config $(OPENAPI_LINT)/redocly.yaml gateway/httpapi/openapi.yaml

FUZZTIME ?= 10s

.PHONY: fuzz
fuzz: ## Run every Fuzz target for FUZZTIME (default 10s) each.
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

.PHONY: bench
bench: build ## Run the benchmarks and print figures and ratios (BENCH_FLAGS=-recipients=1000000 for the big fan-out).
	scripts/bench.sh $(BENCH_FLAGS)

.PHONY: lint
lint: ## go vet, gofmt and generated-code drift.
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: generate
generate: ## Regenerate protobuf code with the pinned tools in scripts/tools.
	$(TOOLS) buf generate

.PHONY: generate-check
generate-check: generate ## Fail when committed generated code differs from a fresh generation.
	@git diff --exit-code -- sdk/ || (echo "generated code is stale: run make generate and commit"; exit 1)

.PHONY: clean
clean: ## Remove build outputs.
	rm -rf $(BIN)
