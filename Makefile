# nagare — the two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
BIN     := bin/nagare
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/nagare-iot/nagare/internal/cli.Version=$(VERSION)

.PHONY: run build test test-sqlite test-postgres bench lint clean

## run: build and start nagare with embedded defaults (data in ./data)
run: build
	./$(BIN) serve

## build: compile the nagare binary into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/nagare

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
	rm -rf bin
