# replayctl — build, test, demo, bench.
GO         ?= go
BIN        := bin/replayctl
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -X github.com/replayctl/replayctl/cmd/replayctl/cli.Version=$(VERSION)
KAFKA_ADDR ?= 127.0.0.1:19092
DEMO_DATA  := build/demo-data

.PHONY: all build deps test test-short lint demo bench fuzz kafka-up kafka-down clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/replayctl

# The quickstart, end to end, on the embedded broker: record the bundled pcap
# into Kafka as the window "quickstart", replay it at 2x against the built-in
# echo target, then replay the same window once more.
demo: build
	rm -rf $(DEMO_DATA)
	$(BIN) run examples/quickstart.yaml --data-dir $(DEMO_DATA)
	@echo; echo "== the same recording, replayed again =="
	$(BIN) run examples/quickstart.yaml --data-dir $(DEMO_DATA) --job replay
	$(BIN) windows list --data-dir $(DEMO_DATA)

# The tools the tests and the bench use (kcat, tcpdump, tshark, wrk, curl, h2load,
# chromium, Java, Maven): installs the missing ones from Debian when run as root,
# otherwise names them and fails.
deps:
	scripts/deps

# The whole suite: the embedded broker and a real single-node Apache Kafka
# (KRaft, started by scripts/kafka-up on 127.0.0.1:19092 and left running;
# `make kafka-down` stops it).
test: deps lint build kafka-up
	REPLAYCTL_TEST_KAFKA=$(KAFKA_ADDR) $(GO) test -race -count=1 -timeout 12m ./...

# Embedded broker only; no real Kafka needed.
test-short:
	$(GO) test ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks against references measured in the same run; prints a table
# and writes BENCHMARKS.md.
bench: deps build kafka-up
	REPLAYCTL_TEST_KAFKA=$(KAFKA_ADDR) $(GO) run ./bench -out BENCHMARKS.md

# Every fuzz target for FUZZTIME each (default 20s; about 12 minutes);
# failing inputs land in testdata/fuzz, which make test runs.
fuzz:
	GO=$(GO) FUZZTIME=$(or $(FUZZTIME),20s) scripts/fuzz

kafka-up:
	KAFKA_PORT=$(lastword $(subst :, ,$(KAFKA_ADDR))) scripts/kafka-up

kafka-down:
	scripts/kafka-down

clean:
	rm -rf bin build .replayctl
