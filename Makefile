# mwgc — see README.md. `make test` is what CI runs (.ci/run); as root on
# Debian it first installs what the network tests need.
GO      ?= go
BIN     := bin
PKGS    := ./...
APT_PKGS := keepalived tcpdump tshark iproute2

.PHONY: all build examples test test-unit lint bench deps fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The main job on the bundled examples: validate, then compile plans to out/.
examples: build
	$(BIN)/mwgc validate examples/ha-proxy examples/transparent-router examples/shared-segment
	$(BIN)/mwgc compile -o out/plans examples/ha-proxy examples/transparent-router examples/shared-segment
	@echo "plans written under out/plans/"

# deps installs the Debian packages the network-namespace tests use. It only
# acts as root and only when something is missing.
deps:
	@missing=""; \
	for c in keepalived tcpdump tshark ip; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null; \
		else \
			echo "missing:$$missing (network tests need root and: apt-get install $(APT_PKGS))"; \
		fi; \
	fi

# test runs every test, including the root-only network-namespace labs.
test: deps lint
	$(GO) test -count=1 -timeout 15m $(PKGS)

# test-unit skips nothing but needs no root: labs skip only outside CI.
test-unit:
	$(GO) test -count=1 -short $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./runtime/plan

bench: build deps
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf $(BIN) out
