# nagare — the two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
BIN     := bin/nagare
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/nagare-iot/nagare/internal/cli.Version=$(VERSION)

WEB_SRC := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

.PHONY: run demo cluster cluster-stop build web test test-sqlite test-postgres test-e2e bench lint clean

## run: build and start nagare with embedded defaults (data in ./data)
run: build
	./$(BIN) serve

## demo: build and start nagare with every example system running (simulated
## camera, buttons and LINE guests; Slack and LINE answered by an outbox)
demo:
	scripts/deps.sh demo
	$(MAKE) --no-print-directory build
	./$(BIN) demo

## cluster: three nodes on loopback (embedded NATS cluster, PostgreSQL,
## Azurite for files); cluster-stop stops them (docs/scaling.md)
cluster: build
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

## build: build the web console (web/dist, embedded) and compile bin/nagare
build: web
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/nagare

## web: the console (TypeScript + Vite) into web/dist; needs Node.js 20 and npm
web: web/dist/index.html

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SRC)
	cd web && npm run --silent build

## test-e2e: browser tests (Playwright + Debian's chromium) against bin/nagare
test-e2e: build
	cd web && npm run --silent e2e

## test: lint, then the whole suite on SQLite and again on PostgreSQL
test:
	scripts/test.sh

test-sqlite:
	$(GO) test ./...

test-postgres:
	NAGARE_TEST_POSTGRES="$$(scripts/postgres.sh start)" $(GO) test -count=1 ./...

## bench: micro-benchmarks and the whole-system publish load test
bench: build
	scripts/bench.sh

## lint: go vet and gofmt
lint:
	$(GO) vet ./...
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin web/dist/assets web/dist/index.html test-output
