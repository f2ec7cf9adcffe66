# Cairn. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PG_HOST ?= 127.0.0.1
PG_PORT ?= 5432
GOBIN   ?= $(shell go env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: run
run: services ## start PostgreSQL if needed, migrate and serve on http://localhost:8080
	go run ./cmd/cairn serve

.PHONY: build
build: ## build bin/cairn
	go build -trimpath -o bin/cairn ./cmd/cairn

.PHONY: test
test: services stripe-mock mailpit ## run every test (race detector on) against local PostgreSQL, Redis, stripe-mock and mailpit
	go test -race -count=1 -timeout 30m ./...

.PHONY: stripe-mock
stripe-mock: ## install Stripe's mock API server for the billing tests (tests start it themselves)
	@command -v stripe-mock >/dev/null || go install github.com/stripe/stripe-mock@v0.203.0

.PHONY: mailpit
mailpit: ## install mailpit, the SMTP server with an HTTP API that email tests send to (tests start it themselves)
	@command -v mailpit >/dev/null || go install github.com/axllent/mailpit@v1.33.1

.PHONY: bench
bench: services ## run the Go benchmarks
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-load
bench-load: services build ## measure GET /v1/me ÷ GET /healthz throughput on the real binary (docs/benchmarks.md's quoted run)
	go run ./cmd/cairn-load -ratio -plan pro -bin bin/cairn -c 64 -d 5s -rounds 4

.PHONY: bench-metered
bench-metered: services build ## measure POST /v1/search with and without metering (Free workspace, 1,000 documents, 256 connections)
	go build -trimpath -tags nometering -o bin/cairn-nometering ./cmd/cairn
	go run ./cmd/cairn-load -metered -bin bin/cairn -unmetered-bin bin/cairn-nometering -documents 1000 -c 256 -d 10s -rounds 2

# DATA is a test collection's directory or a directory of them (Cranfield's or BEIR's layout).
DATA ?=

.PHONY: eval
eval: services ## search quality per collection and mode through the API, beside plain BM25 (DATA=dir)
	@test -n "$(DATA)" || { echo "make eval DATA=/path/to/collections (Cranfield's or BEIR's layout)"; exit 2; }
	go run ./cmd/cairn-eval -data $(DATA)

BASE_URL ?= http://localhost:8080

.PHONY: extension
extension: ## pack the browser extension into dist/cairn-extension.zip for the stores, its default backend BASE_URL (make extension BASE_URL=https://…)
	go run ./cmd/cairn-extension -src extension -out dist/cairn-extension.zip -base-url "$(BASE_URL)"

# gen-inputs lists what the generated code is made from, with the sqlc and templ
# versions go.mod pins, and hashes of the generated files themselves. make generate
# records it in GEN_STAMP, so check-generated can tell in a second, without building
# sqlc and templ (minutes on a cold machine), that nothing changed since.
GEN_STAMP := internal/db/dbq/generated.sha256
define gen-inputs
{ grep -E '^\s*github.com/(a-h/templ|sqlc-dev/sqlc) ' go.mod | tr -s ' \t' ' ' | sed 's/ *\/\/ indirect//'; \
  sha256sum sqlc.yaml db/schema/*.sql db/queries/*.sql views/*.templ internal/db/dbq/*.go views/*_templ.go; } | LC_ALL=C sort
endef
GEN_PATHS := internal/db/dbq views ':!$(GEN_STAMP)'

.PHONY: generate
generate: ## regenerate sqlc and templ code
	go tool sqlc generate
	go tool templ generate -log-level error
	@$(gen-inputs) > $(GEN_STAMP)

.PHONY: check-generated
check-generated: ## fail when committed generated code is stale (cheap when its inputs are unchanged)
	@if $(gen-inputs) | cmp -s - $(GEN_STAMP); then echo "generated code matches its inputs ($(GEN_STAMP))"; exit 0; fi; \
	echo "inputs changed since $(GEN_STAMP): regenerating to compare"; \
	$(MAKE) --no-print-directory generate && \
	{ git diff --exit-code --stat -- $(GEN_PATHS) || { echo "generated code is stale: run make generate and commit"; exit 1; }; } && \
	{ test -z "$$(git status --porcelain -- $(GEN_PATHS))" || { echo "generated code is stale: run make generate and commit"; git status --porcelain -- $(GEN_PATHS); exit 1; }; } && \
	echo "generated code is fresh; commit $(GEN_STAMP) (make generate writes it) to make this check instant"

.PHONY: lint
lint: ## gofmt, go vet and staticcheck (pinned in go.mod)
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	go vet ./...
	go tool staticcheck ./...

.PHONY: services
services: db redis ## make sure PostgreSQL and Redis are up

.PHONY: db
db: ## start the local PostgreSQL cluster when it is installed but stopped
	@if pg_isready -q -h $(PG_HOST) -p $(PG_PORT) 2>/dev/null; then exit 0; fi; \
	if ! command -v pg_lsclusters >/dev/null; then \
		echo "PostgreSQL is not running on $(PG_HOST):$(PG_PORT) and is not installed."; \
		echo "Install it with: sudo apt-get install -y postgresql   (or set DATABASE_URL to a reachable server)"; \
		exit 1; \
	fi; \
	ver=$$(pg_lsclusters -h | awk 'NR==1 {print $$1}'); \
	if [ -z "$$ver" ]; then echo "PostgreSQL is installed but has no cluster: run sudo pg_createcluster --start 15 main"; exit 1; fi; \
	echo "starting PostgreSQL $$ver"; \
	pg_ctlcluster --skip-systemctl-redirect $$ver main start || sudo pg_ctlcluster --skip-systemctl-redirect $$ver main start; \
	for i in $$(seq 1 30); do pg_isready -q -h $(PG_HOST) -p $(PG_PORT) && exit 0; sleep 1; done; \
	echo "PostgreSQL did not become ready"; exit 1

.PHONY: redis
redis: ## start a local Redis when it is installed but stopped (only tests need it)
	@if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v redis-server >/dev/null; then echo "Redis is not installed; tests that need it will fail (sudo apt-get install -y redis-server)"; exit 0; fi; \
	echo "starting Redis"; \
	redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null; \
	for i in $$(seq 1 20); do redis-cli ping >/dev/null 2>&1 && exit 0; sleep 0.5; done; \
	echo "Redis did not become ready"; exit 1
