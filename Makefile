# fcd — build, run and test.
#
#   make run    set up the host, start fcd with embedded defaults and show a
#               function cold- and warm-invoked
#   make test   install what the tests need, then run every test

SHELL := /bin/bash
GO    ?= go
export PATH := $(PATH):/usr/local/go/bin

# Debian packages fcd and its tests need.
DEB_PACKAGES := containerd runc containernetworking-plugins fuse3 iptables iproute2 \
                e2fsprogs mount util-linux pigz gzip tar python3 ca-certificates

BIN := bin
TEST_TIMEOUT ?= 25m
FUZZ_TIME ?= 10s

.PHONY: all build deps test test-unit vet fuzz run example-images clean

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

vet:
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) fuzz

# Quick tests only: no deps, no race detector.
test-unit:
	$(GO) test -count=1 -short ./...

# Bounded fuzz runs of every fuzz target, seeded by the committed corpora.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f ($(FUZZ_TIME))"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZ_TIME) || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
