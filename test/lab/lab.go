// Package lab runs the whole of egressgw on one machine, as a cluster on AWS (or GCP, or Azure) would run
// it, with no cloud and no container engine: a real kube-apiserver and etcd, network namespaces for a VPC
// fabric, four nodes in two zones and a firewall outside the VPC, the cloud's simulator behind its real
// SDK (its IP moves re-point the fabric's routes, so nothing works unless the manager really called the
// cloud), the cloud's CNI rules on every node (the AWS VPC CNI, GKE's, Azure CNI overlay), pods created
// the way a kubelet creates them (a namespace each, the node's
// CNI configuration run through libcni with the reference bridge and host-local plugins and
// egressgw-cni chained by the agent), and egressgw's real binaries as processes: two manager replicas
// and one agent per node, each with its own kubeconfig.
//
// `make lab` (test/lab/cmd/lab) runs Up, the demonstration and Close; `make lab-up` keeps the lab running
// for exploration; test/e2e runs its scenarios on the same machinery. Everything the lab starts carries
// its marker in the environment and every namespace its prefix, so Sweep finds what a killed lab left.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/egressgw/egressgw/test/helmchart"
	"github.com/egressgw/egressgw/test/netlab"
)

// DefaultPrefix starts the names of the namespaces of `make lab`; tests use random prefixes.
const DefaultPrefix = "egwlab"

// Config says where the lab lives and what it prints.
type Config struct {
	// Prefix starts every network namespace's name (DefaultPrefix when empty).
	Prefix string
	// StateDir holds the lab's binaries, kubeconfigs, CNI folders and logs.
	StateDir string
	// Assets is the folder of kube-apiserver and etcd (KUBEBUILDER_ASSETS).
	Assets string
	// RepoRoot is the repository, for the CRDs, the IAM policy and the binaries' sources.
	RepoRoot string
	// Out receives the progress lines (nil: discarded).
	Out io.Writer
	// Cloud is the cloud the lab simulates: aws (the default), gcp or azure.
	Cloud string
	// RealisticLatency makes the simulator as slow as its cloud (RealisticLatencies); the default answers
	// at once, which shows egressgw's own share of a failover.
	RealisticLatency bool
	// OperationLatency, when set, is the fixed time every write of the cloud takes (GCP zone operations,
	// Azure NIC writes; on AWS every answer), for tests that act in the middle of a move.
	OperationLatency time.Duration
}

// RealisticLatencies says how slow each simulator is with Config.RealisticLatency: what the clouds take for
// the calls of a move (EC2 answers AssignPrivateIpAddresses in a few hundred milliseconds; a Compute
// Engine zone operation on a NIC takes about 2-5 s; an Azure NIC write's long-running operation 2-10 s).
var RealisticLatencies = map[string]string{
	AWS:   "every EC2 answer 200 ms",
	GCP:   "zone operations 2-5 s",
	Azure: "NIC writes 2-10 s",
}

// Lab is a running lab.
type Lab struct {
	cfg   Config
	spec  cloudSpec
	start time.Time
	outMu sync.Mutex

	Topo   *netlab.Topology
	Client client.Client
	env    *ctrlenvtest.Environment
	// AdminKubeconfig is a kubeconfig with full rights, for a person's kubectl on this machine.
	AdminKubeconfig string

	Cloud *Cloud
	Echo  *netlab.EchoServer

	bins  binaries
	helm  *helmchart.Releases
	chart *helmchart.Rendered
	ctrls *controllers
	// footprints are the nodes' kernel state before the agents first ran (NodeFootprint).
	footprints map[string]map[string]string
	procs      procTable
	kubelets   *kubelets
	Pods       []*Pod
	podSeq     int

	closers []func() error
}

// nodeCount is the lab's nodes: node1 and node2 (the gateways) and node3 in the first zone, node4 in the
// second.
const nodeCount = 4

// zoneOf is node i's (1-based) zone: 0 or 1.
func zoneOf(i int) int {
	if i == 4 {
		return 1
	}
	return 0
}

// ServiceCIDR is the cluster's service range.
var ServiceCIDR = netlab.ServiceCIDR

// gatewayNodes are the nodes labelled as gateways.
var gatewayNodes = map[string]bool{"node1": true, "node2": true}

// nodeAddr places node1..3 in SubnetA and node4 in SubnetB (on AWS the two zones' subnets; elsewhere
// both halves of one regional subnet).
func nodeAddr(i int) netip.Addr {
	if zoneOf(i) == 1 {
		return netip.AddrFrom4([4]byte{10, 0, 0, byte(128 + 10 + i)})
	}
	return netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)})
}

// Up builds and starts the lab. On error it removes what it made.
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.StateDir == "" || cfg.Assets == "" || cfg.RepoRoot == "" {
		return nil, errors.New("lab: StateDir, Assets and RepoRoot are required")
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root (network namespaces, iptables, VXLAN)")
	}
	spec, err := specOf(cfg.Cloud)
	if err != nil {
		return nil, err
	}
	if cfg.Cloud == "" {
		cfg.Cloud = AWS
	}
	l := &Lab{cfg: cfg, spec: spec, start: time.Now(), procs: procTable{}}
	if err := l.up(ctx); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) up(ctx context.Context) error {
	// Each lab starts with fresh logs and node folders; the binaries stay (go build reuses them).
	for _, d := range []string{"logs", "nodes"} {
		if err := os.RemoveAll(filepath.Join(l.cfg.StateDir, d)); err != nil {
			return err
		}
	}
	for _, d := range []string{"bin", "logs", "nodes"} {
		if err := os.MkdirAll(filepath.Join(l.cfg.StateDir, d), 0o755); err != nil {
			return err
		}
	}
	steps := []struct {
		what string
		run  func(context.Context) error
	}{
		{"build egressgw's binaries, the reference CNI plugins and the firewall's server", l.build},
		{"start kube-apiserver and etcd", l.startAPIServer},
		{fmt.Sprintf("build the VPC: fabric router, 4 nodes in 2 zones with the %s rules, a firewall outside", l.spec.profile().Name()), l.buildNetwork},
		{fmt.Sprintf("start the %s simulator (its IP moves re-point the fabric's routes)", l.cfg.Cloud), l.startCloud},
		{"register the nodes as a kubelet would (Node, Lease) and the gateways and policies", l.registerCluster},
		{"helm install the chart (helm's Go SDK): its ServiceAccounts, RBAC, Deployment, DaemonSet in the API server", l.installChart},
		{"start one egressgw-agent per node, as the chart's DaemonSet runs it", l.startAgents},
		{"start two egressgw-manager replicas, as the chart's Deployment runs them", l.startManagers},
		{"stand in for the controllers and kubelets of the chart's workloads and hooks", l.startControllers},
		{"wait for the manager to attach the egress IPs through the cloud's API", l.waitPlaced},
		{"start pods through libcni: the node's CNI conflist with egressgw-cni chained", l.startPods},
	}
	for _, s := range steps {
		began := time.Now()
		l.Printf("%s ...", s.what)
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		l.Printf("  done in %s", time.Since(began).Round(10*time.Millisecond))
	}
	return nil
}

// Printf writes one progress line, stamped with the time since the lab started.
func (l *Lab) Printf(format string, args ...any) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	fmt.Fprintf(l.cfg.Out, "[%6.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}

// Close stops everything the lab started, last first, and removes its namespaces.
func (l *Lab) Close() error {
	var errs []error
	for i := len(l.closers) - 1; i >= 0; i-- {
		errs = append(errs, l.closers[i]())
	}
	l.closers = nil
	return errors.Join(errs...)
}

func (l *Lab) onClose(fn func() error) { l.closers = append(l.closers, fn) }

// path is a file or folder under the state folder.
func (l *Lab) path(parts ...string) string {
	return filepath.Join(append([]string{l.cfg.StateDir}, parts...)...)
}
