# mwgc — see README.md. `make test` is what CI runs (.ci/run); as root on
# Debian it first installs what the network tests need.
GO      ?= go
BIN     := bin
PKGS    := ./...
# Debian packages the tests and benchmarks use: real VRRP peers (keepalived,
# frr), captures (tcpdump, tshark), labs (iproute2, nftables), forged packets
# (python3-scapy), throughput (iperf3), page checks (chromium), the runtime
# library of the keepalived 2.4.3 test peer (libmagic1), systemd-analyze.
APT_PKGS := keepalived frr tcpdump tshark iproute2 nftables python3-scapy iperf3 chromium libmagic1 systemd
# mwgc graph's output is checked by the real renderers: Graphviz for DOT,
# Mermaid (from npm, run in chromium) for Mermaid.
APT_PKGS += graphviz nodejs
MERMAID  := mermaid@12.3.0

.PHONY: all build examples test test-unit lint bench soak deps fuzz clean

all: build

# The go tool does not stamp VCS data in a git worktree; pass it on.
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION := $(shell git rev-parse HEAD 2>/dev/null)
MODIFIED := $(shell test -n "$$(git status --porcelain 2>/dev/null)" && echo true)
BUILDINFO := github.com/mwgc/mwgc/runtime/buildinfo
LDFLAGS := -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).revision=$(REVISION) -X $(BUILDINFO).modified=$(MODIFIED)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The main job on the bundled examples: validate, then compile plans to out/.
examples: build
	$(BIN)/mwgc validate examples/ha-proxy examples/transparent-router examples/shared-segment examples/distribution examples/unicast
	$(BIN)/mwgc compile -o out/plans examples/ha-proxy examples/transparent-router examples/shared-segment examples/distribution examples/unicast
	@echo "plans written under out/plans/"

# deps installs the Debian packages the network-namespace tests use. It only
# acts as root and only when something is missing.
deps:
	@missing=""; \
	for p in $(APT_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing:$$missing (network tests need root and: apt-get install$$missing)"; \
		fi; \
	fi
	@if [ ! -s $(BIN)/mermaid/mermaid.min.js ] && command -v npm >/dev/null 2>&1; then \
		echo "fetching $(MERMAID) into $(BIN)/mermaid"; \
		rm -rf $(BIN)/mermaid && mkdir -p $(BIN)/mermaid && cd $(BIN)/mermaid && \
		npm pack --silent $(MERMAID) >/dev/null && tar xzf mermaid-*.tgz package/dist/mermaid.min.js && \
		mv package/dist/mermaid.min.js . && rm -rf package mermaid-*.tgz; \
	fi

# test runs every test, including the root-only network-namespace labs.
test: deps lint
	$(GO) test -count=1 -timeout 15m $(PKGS)

# test-unit runs the tests without installing anything; as non-root (and
# without CI=true) the network-namespace labs skip.
test-unit:
	$(GO) test -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# fuzz runs each decoder's fuzz target for a while (the seeds run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 30s ./runtime/plan
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./runtime/vrrp
	$(GO) test -run '^$$' -fuzz '^FuzzRoundTrip$$' -fuzztime 30s ./runtime/vrrp
	$(GO) test -run '^$$' -fuzz '^FuzzRouter$$' -fuzztime 30s ./runtime/vrrp
	$(GO) test -run '^$$' -fuzz '^FuzzUnicastRouter$$' -fuzztime 30s ./runtime/vrrp
	$(GO) test -run '^$$' -fuzz '^FuzzReaddressed$$' -fuzztime 30s ./runtime/vrrp
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s -parallel 1 ./runtime/mgmt/wire
	$(GO) test -run '^$$' -fuzz '^FuzzReceive$$' -fuzztime 30s ./runtime/mgmt/engine
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime 60s -fuzzminimizetime 2s ./compiler
	$(GO) test -run '^$$' -fuzz '^FuzzLoadBytes$$' -fuzztime 60s -fuzzminimizetime 2s ./compiler
	$(GO) test -run '^$$' -fuzz '^FuzzTrailer$$' -fuzztime 30s ./runtime/vrrp/auth
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 30s ./runtime/vrrp/auth
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./runtime/keyfile
	$(GO) test -run '^$$' -fuzz '^FuzzParseFrame$$' -fuzztime 30s ./runtime/vrrpwatch
	$(GO) test -run '^$$' -fuzz '^FuzzParseClaim$$' -fuzztime 30s ./runtime/vrrpwatch

# bench prints, in one run: Go micro-benchmarks; mwgc validate/compile beside
# `cue vet` at 100/1,000/10,000 nodes; mwgc-agent beside keepalived (crash
# failover, graceful handover, memory, CPU; needs root), again with every
# advert authenticated beside keepalived 2.4.3's auth_hmac; failover as a
# client feels it, mwgc beside keepalived under six kinds of fault (root); a
# director tracking 1,000 scanning nodes over UDP on loopback (needs root);
# traffic distribution: throughput through the director (l2, nat) beside
# direct, node down to new map in the kernel, clients moved (needs root);
# unicast VRRP beside multicast (crash failover, graceful handover, the
# sender's CPU with 1, 4 and 16 peers at 10 ms adverts; needs root).
bench: build deps
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(GO) run ./compiler/internal/vetbench
	$(GO) run ./runtime/e2e/cmd/failoverbench -trials 20
	$(GO) run ./runtime/e2e/cmd/failoverbench -trials 20 -auth
	$(GO) run ./runtime/e2e/cmd/clientbench -trials 10
	$(GO) run ./runtime/mgmt/cmd/mgmt-loadtest -nodes 1000 -interval 1s -measure 30s
	$(GO) run ./runtime/distributor/cmd/distbench -rounds 7 -seconds 3 -trials 20
	$(GO) run ./runtime/e2e/cmd/unicastbench -trials 20

# soak forces 1,000 failovers of mixed kinds on mwgc pairs and prints what an
# independent observer counted (two VIP holders, stale VIPs, client
# blackholes); it fails on any. Needs root; about half an hour. A 50-event
# version runs in `make test` (TestChurnSoakShort).
soak: build deps
	$(GO) run ./runtime/e2e/cmd/churnsoak -events 1000

clean:
	rm -rf $(BIN) out
