# replayctl — build, test, demo, bench.
GO        ?= go
BIN       := bin/replayctl
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/replayctl/replayctl/cmd/replayctl/cli.Version=$(VERSION)
KAFKA_ADDR ?= 127.0.0.1:19092

.PHONY: all build test test-short lint demo bench kafka-up kafka-down clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/replayctl

# The whole suite: embedded broker and a real single-node Apache Kafka (KRaft).
test: lint
	$(GO) test -count=1 ./...

# Embedded broker only; no real Kafka needed.
test-short:
	$(GO) test ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin build
