# egressgw: `make lab` runs the whole system on one machine, `make test` runs every test.
# Both install what they need: Debian packages (as root), Go modules, and a kube-apiserver and etcd built
# from Go modules into a cache outside the repository (see test/tools).

SHELL := /usr/bin/env bash
# The Go toolchain of a fresh Debian machine lives in /usr/local/go.
export PATH := $(PATH):/usr/local/go/bin
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
# Extra flags for `go test`, for example GOTEST_FLAGS='-run TestCRD'. Results are never taken from the test
# cache (-count=1): the datapath tests depend on the kernel and its tools, which the cache does not see.
GOTEST_FLAGS ?=

.PHONY: all build generate test lab lab-up lab-down lab-bin envtest-assets test-deps vet fmt-check bench-datapath bench-manager bench-azure bench-agent images images-test

all: build

build:
	$(GO) build ./...

## generate: re-create deepcopy code and the CRDs of the chart with controller-gen.
# Old outputs go first, so that a removed type leaves no stale file behind.
generate:
	rm -f api/*/zz_generated.deepcopy.go charts/egressgw/crds/*.yaml
	$(GO) tool controller-gen object paths=./api/... crd output:crd:artifacts:config=charts/egressgw/crds

## images: the manager's and the agent's OCI image archives in _output/images, without a container daemon
## (go-containerregistry; the agent's userland from Debian packages), each an image index with one
## manifest per platform. VERSION sets the tag; PLATFORMS the platforms (PLATFORMS=linux/amd64 for speed).
VERSION ?= dev
PLATFORMS ?= linux/amd64,linux/arm64
images:
	@command -v apt-get >/dev/null || { echo "make images: needs apt-get and dpkg-deb (Debian or Ubuntu)"; exit 1; }
	@if [[ $$(id -u) -eq 0 ]]; then apt-get update -qq; fi
	$(GO) run ./build/images -out _output/images -version $(VERSION) -platforms $(PLATFORMS)

## images-test: build the images, then run their binaries chrooted into each image's filesystem (root).
## Not part of `make test`: the build of both platforms takes about 2 minutes with a warm Go cache (1 with
## PLATFORMS=linux/amd64); a cold cache compiles every package once per architecture (25 min on a busy machine).
## The arm64 binaries run through qemu's user-mode emulator (Debian's qemu-user-static, installed here).
images-test: images
	@if [[ ",$(PLATFORMS)," == *,linux/arm64,* ]] && ! command -v qemu-aarch64-static >/dev/null && [[ $$(id -u) -eq 0 ]]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null; fi
	EGRESSGW_IMAGES=$(CURDIR)/_output/images EGRESSGW_IMAGES_PLATFORMS=$(PLATFORMS) $(GO) test -count=1 -v -run 'TestImages|TestArm64Images|TestIPTablesWrapper|TestUninstallHook' ./build/images/

## envtest-assets: build (once) and print the folder to use as KUBEBUILDER_ASSETS.
envtest-assets:
	@test/tools/build-envtest-assets.sh

test-deps:
	@test/install-deps.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [[ -n "$$out" ]]; then echo "gofmt would change: $$out"; exit 1; fi

## test: every test of the repository, with the race detector; names every skipped test and why.
test: test-deps fmt-check vet
	@if [[ $$(id -u) -ne 0 ]]; then echo "make test: not root: the network-namespace tests will skip (they need root)"; fi
	@assets=$$(test/tools/build-envtest-assets.sh); \
	KUBEBUILDER_ASSETS=$$assets $(GO) test -race -json -count=1 -timeout 30m $(GOTEST_FLAGS) ./... | $(GO) run ./test/testreport

## bench-datapath: the datapath's figures (root): full apply of 10,000 pods, one pod change, iperf3
## throughput through the tunnel against direct SNAT, with the controls that explain the gap (docs/datapath.md).
bench-datapath: test-deps
	$(GO) test -run '^$$' -bench 'BenchmarkFullApply|BenchmarkPodChange' -benchtime 20x ./pkg/nodeagent/
	$(GO) test -run '^$$' -bench 'BenchmarkTunnelThroughput' -benchtime 1x -timeout 60m ./pkg/nodeagent/

## bench-manager: the manager at scale (1,000 nodes, 500 IPs) against the real API server and the EC2 simulator.
bench-manager:
	@assets=$$(test/tools/build-envtest-assets.sh); \
	KUBEBUILDER_ASSETS=$$assets $(GO) test -run '^$$' -bench Scale -benchtime 1x ./pkg/manager/

## bench-azure: Azure failover figures through the simulator (20 moves at NIC write latency 0 and 2-10 s, ~5 min)
bench-azure:
	$(GO) test -run '^$$' -bench 'Failover|SDKPollUntilDone' -benchtime 1x -timeout 20m ./providers/azure/

## bench-agent: the node agent (root): API write -> kernel programmed through the informers, and the real
## binary's memory on a source and a gateway node with 2,000 and 10,000 pods (docs/agent.md).
bench-agent: test-deps
	@assets=$$(test/tools/build-envtest-assets.sh); \
	KUBEBUILDER_ASSETS=$$assets $(GO) test -run '^$$' -bench 'InformerPath' -benchtime 200x ./pkg/agent/ && \
	KUBEBUILDER_ASSETS=$$assets $(GO) test -run '^$$' -bench 'AgentFootprint' -benchtime 1x -timeout 30m ./pkg/agent/

## lab: the whole system on one machine with the EC2 simulator (root): the firewall's view of every pod,
## FAILOVERS gateway deaths measured, then everything removed (docs/lab.md). lab-up leaves it running,
## lab-down removes it (and whatever a killed lab left).
LAB_STATE ?= /tmp/egressgw-lab
FAILOVERS ?= 3
# CLOUD: aws (EKS: VPC CNI, dedicated ENIs), gcp (GKE: alias IPs) or azure (AKS: Azure CNI overlay, ip configurations)
CLOUD ?= aws
# REALISTIC_LATENCY=true makes the cloud simulator as slow as the cloud (docs/lab.md)
REALISTIC_LATENCY ?= false
lab: lab-bin
	@KUBEBUILDER_ASSETS=$$(test/tools/build-envtest-assets.sh) $(LAB_STATE)/lab run -state $(LAB_STATE) -failovers $(FAILOVERS) -cloud $(CLOUD) -realistic-latency=$(REALISTIC_LATENCY)

lab-up: lab-bin
	@KUBEBUILDER_ASSETS=$$(test/tools/build-envtest-assets.sh) $(LAB_STATE)/lab up -state $(LAB_STATE) -cloud $(CLOUD) -realistic-latency=$(REALISTIC_LATENCY)

lab-down:
	@if [[ -x $(LAB_STATE)/lab ]]; then $(LAB_STATE)/lab down -state $(LAB_STATE); else echo "make lab-down: no lab in $(LAB_STATE)"; fi

lab-bin: test-deps
	@if [[ $$(id -u) -ne 0 ]]; then echo "make lab: needs root (network namespaces, iptables, VXLAN)"; exit 1; fi
	@echo "make lab: the API server and etcd (built once into ~/.cache/egressgw: about 10 minutes on a fresh machine)"
	@test/tools/build-envtest-assets.sh >/dev/null && mkdir -p $(LAB_STATE) && $(GO) build -o $(LAB_STATE)/lab ./test/lab/cmd/lab
