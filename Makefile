# cairn — make run | make test | make lint | make build | make bench | make soak
#
# run and test install redis-server (and, for the race detector, a C
# compiler) with apt-get when they are missing; sudo is used only when not
# running as root.

GO       ?= go
BIN      ?= bin/cairn
ADDR     ?= 127.0.0.1:8080
TIMEOUT  ?= 15m

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run test vet lint bench soak deps-run deps-test clean

all: build

build:
	$(GO) build -o $(BIN) .

# run: serve on $(ADDR) with workflows/ deployed and a private redis-server
# (data in .cairn/redis). Ctrl-C stops it.
run: deps-run build
	./$(BIN) serve --addr $(ADDR) --workflows workflows/

# The store and end-to-end suites run twice: on a redis-server of their
# own, then on one shared Redis Cluster of 3 masters and 3 replicas per
# package (CAIRN_TEST_REDIS=cluster).
test: deps-test
	$(GO) vet ./...
	$(GO) test -race -timeout $(TIMEOUT) ./...
	CAIRN_TEST_REDIS=cluster $(GO) test -race -count=1 -timeout $(TIMEOUT) ./redisstore ./internal/e2e

# bench: regenerate docs/benchmarks.md (cairn against go-workflows v1.2.0 on
# a throwaway redis-server, and Temporal's dev server; about 36 minutes on 2
# cores; wrk drives the GET status load). bench/ is its own
# module so the main one does not depend on what it compares against.
bench: deps-test
	@$(call install_missing,wrk:wrk redis-benchmark:redis-tools)
	cd bench && $(GO) run . -out ../docs/benchmarks.md

# soak: the crash and Redis-restart tests at full size (2,000 instances,
# 40 cairn kills; 15 Redis restarts) and the Redis Cluster soak (2,000
# instances, 5 master failovers, 5 engine kills); see docs/reliability.md.
soak: deps-test
	CAIRN_SOAK=1 $(GO) test -race -timeout 60m -count=1 -v -run 'TestCrashRecovery|TestRedisRestart|TestClusterSoak' ./internal/reliability

vet:
	$(GO) vet ./...

lint: build
	./$(BIN) lint workflows/

clean:
	rm -rf bin

deps-run:
	@$(call install_missing,redis-server:redis-server)

# yaml-language-server (npm) is what schema/editor_test.go runs the
# workflow schema in, as an editor would; it lives in .cache/yls.
YLS_VERSION ?= 1.25.0

# The cluster tests need redis-cli (redis-tools) to create the cluster; the
# race detector needs cgo, hence a C compiler; the example worker's test
# needs curl and the progress page's browser test chromium.
deps-test:
	@$(call install_missing,redis-server:redis-server redis-cli:redis-tools gcc:gcc+libc6-dev curl:curl chromium:chromium+fonts-dejavu-core npm:npm)
	@[ -x .cache/yls/node_modules/.bin/yaml-language-server ] || \
	  npm install --silent --no-audit --no-fund --prefix .cache/yls yaml-language-server@$(YLS_VERSION)

# install_missing CMD:PKG[+PKG]...: apt-get install the packages of every
# CMD not on PATH, in one go; apt-get update runs only when something is
# missing.
define install_missing
	missing=""; \
	for pair in $(1); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $$(echo "$${pair#*:}" | tr + ' ')"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "missing:$$missing — apt-get is not available, install them yourself (macOS: brew install redis) and retry" >&2; exit 1; \
	  fi; \
	  if [ "$$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then \
	    echo "missing:$$missing — run as root or install sudo, or install them yourself" >&2; exit 1; \
	  fi; \
	  echo "installing$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef
