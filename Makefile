# fcd — build, run and test.
#
#   make run    set up the host, start fcd with embedded defaults and show a
#               function cold- and warm-invoked
#   make test   install what the tests need, then run every test

SHELL := /bin/bash
GO    ?= go
export PATH := $(PATH):/usr/local/go/bin

# Debian packages fcd and its tests need.
DEB_PACKAGES := containerd runc crun containernetworking-plugins fuse3 iptables nftables iproute2 \
                e2fsprogs mount util-linux pigz gzip tar python3 ca-certificates chromium

BIN := bin
TEST_TIMEOUT ?= 25m
FUZZ_TIME ?= 10s

.PHONY: all build deps test test-unit vet fuzz run stop example-images clean bench-warm console-screenshots bench-cold

FCD_DATA_DIR ?= /var/lib/fcd
REGISTRY ?=

all: build

build:
	$(GO) build -o $(BIN)/fcd ./cmd/fcd
	$(GO) build -o $(BIN)/fcctl ./cmd/fcctl

# deps installs only the packages that are missing, so it is cheap to repeat.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: all installed"; fi
	@modprobe fuse 2>/dev/null || true; modprobe overlay 2>/dev/null || true; modprobe loop 2>/dev/null || true; \
	 modprobe br_netfilter 2>/dev/null || true
	@if [ "$$(id -u)" = 0 ]; then ./scripts/cgroup-controllers.sh || true; fi

vet:
	$(GO) vet ./...

test: deps vet
	# scripts/gotest.sh repeats at the end what failed (see there).
	GO=$(GO) ./scripts/gotest.sh -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	# Instances run with crun where it can run (fcd's default); the instance
	# package's tests run once more with runc, the fall-back (~30 s).
	GO=$(GO) ./scripts/gotest.sh -race -count=1 -timeout 10m ./instance -args -runtime=runc
	# The frontend's raw-syscall connections (proxy/fastwrite.go) are used
	# only in builds without the race detector: test them as they ship.
	GO=$(GO) ./scripts/gotest.sh -count=1 -timeout 5m ./proxy/
	$(MAKE) fuzz

# Quick tests only: no deps, no race detector.
test-unit:
	$(GO) test -count=1 -short ./...

# Bounded fuzz runs of every fuzz target, seeded by the committed corpora.
fuzz:
	GO=$(GO) FUZZ_TIME=$(FUZZ_TIME) scripts/fuzz.sh

# run starts fcd with embedded defaults and shows a function invoked cold
# and warm; fcd keeps running until `make stop`.
run: deps build
	FCD_DATA_DIR=$(FCD_DATA_DIR) examples/demo.sh

stop:
	@if [ -f $(FCD_DATA_DIR)/fcd.pid ]; then 	  pid=$$(cat $(FCD_DATA_DIR)/fcd.pid); kill $$pid 2>/dev/null && 	  while kill -0 $$pid 2>/dev/null; do sleep 0.2; done; rm -f $(FCD_DATA_DIR)/fcd.pid; echo "fcd stopped"; 	else echo "no fcd running from $(FCD_DATA_DIR)"; fi

# example-images pushes the example images to REGISTRY (host:port), or to
# the embedded registry of the running fcd when REGISTRY is empty.
example-images:
	$(GO) run ./examples/cmd/push-images $(if $(REGISTRY),-registry $(REGISTRY)) -data-dir $(FCD_DATA_DIR)

clean:
	rm -rf $(BIN)

# bench-warm compares fcd's warm hop with haproxy and nginx in front of the
# same echo instance (see BenchmarkProxies in cmd/fcd).
bench-warm:
	@command -v wrk >/dev/null && command -v haproxy >/dev/null && command -v nginx >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk haproxy nginx-light)
	$(GO) test ./cmd/fcd -run '^$$' -bench '^BenchmarkProxies$$' -benchtime 1x -timeout 20m

# console-screenshots drives the web console in headless Chromium against
# fcd's frontend with a recorded function history (no root needed) and
# writes a PNG of every page at desktop (1280x800) and phone (390x844)
# width into CONSOLE_SHOTS. With LIVE=1 it also runs the browser test
# against a real fcd with instances (root, containerd), adding live-*.png.
CONSOLE_SHOTS ?= $(CURDIR)/screenshots/console
console-screenshots: deps
	mkdir -p $(CONSOLE_SHOTS)
	FCD_CONSOLE_SCREENSHOTS=$(CONSOLE_SHOTS) $(GO) test ./console -run '^TestPagesInBrowser$$' -count=1 -v
	$(if $(LIVE),FCD_CONSOLE_SCREENSHOTS=$(CONSOLE_SHOTS) flock -o /tmp/fcd-integration.lock \
	  $(GO) test ./cmd/fcd -run '^TestConsoleBrowser$$' -count=1 -v -timeout 15m)
	@ls $(CONSOLE_SHOTS)

# bench-cold runs the cold-start benchmark of issue 17 (two >= 1 GB images
# built once under /var/cache/fcd-bench, a 300 Mbit/s shaped link, three
# rounds; about 55 minutes) and the instance start overhead on a small
# local image.
bench-cold: deps
	@command -v mmdebstrap >/dev/null && command -v npm >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap npm)
	$(GO) test ./cmd/fcd -run '^$$' -bench '^BenchmarkColdStart$$' -benchtime 1x -timeout 90m
	$(GO) test ./instance -run '^$$' -bench '^BenchmarkStartEcho$$/warm' -benchtime 30x -timeout 10m
