// Package lab runs the whole of egressgw on one machine, as a cluster on AWS would run it, with no cloud
// and no container engine: a real kube-apiserver and etcd, network namespaces for a VPC fabric, four
// nodes in two zones and a firewall outside the VPC, the EC2 simulator behind the AWS SDK (its IP moves
// re-point the fabric's routes, so nothing works unless the manager really called EC2), the AWS VPC
// CNI's rules on every node, pods created the way a kubelet creates them (a namespace each, the node's
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
}

// Lab is a running lab.
type Lab struct {
	cfg   Config
	start time.Time
	outMu sync.Mutex

	Topo   *netlab.Topology
	Client client.Client
	env    *ctrlenvtest.Environment
	// AdminKubeconfig is a kubeconfig with full rights, for a person's kubectl on this machine.
	AdminKubeconfig string

	Cloud *Cloud
	Echo  *netlab.EchoServer

	bins     binaries
	procs    procTable
	kubelets *kubelets
	Pods     []*Pod
	podSeq   int

	closers []func() error
}

// Zones of the lab: the gateways and node3 in the first, node4 in the second.
const (
	ZoneA = "us-east-1a"
	ZoneB = "us-east-1b"
)

// The lab's cluster.
var (
	// nodeZones puts node1..node4 in their zones; node1 and node2 are the gateways.
	nodeZones = []string{ZoneA, ZoneA, ZoneA, ZoneB}
	// SubnetA and SubnetB split the node subnet between the zones, as two AWS subnets would.
	SubnetA = netip.MustParsePrefix("10.0.0.0/25")
	SubnetB = netip.MustParsePrefix("10.0.0.128/25")
	// ServiceCIDR is the cluster's service range.
	ServiceCIDR = netlab.ServiceCIDR
)

// gatewayNodes are the nodes labelled as gateways.
var gatewayNodes = map[string]bool{"node1": true, "node2": true}

// nodeAddr places node1..3 in SubnetA and node4 in SubnetB.
func nodeAddr(i int) netip.Addr {
	if nodeZones[i-1] == ZoneB {
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
	l := &Lab{cfg: cfg, start: time.Now(), procs: procTable{}}
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
		{"build the VPC: fabric router, 4 nodes in 2 zones with the AWS VPC CNI's rules, a firewall outside", l.buildNetwork},
		{"start the EC2 simulator (its IP moves re-point the fabric's routes)", l.startCloud},
		{"register the nodes as a kubelet would (Node, Lease) and the gateways and policies", l.registerCluster},
		{"start one egressgw-agent per node", l.startAgents},
		{"start two egressgw-manager replicas", l.startManagers},
		{"wait for the manager to attach the egress IPs through EC2", l.waitPlaced},
		{"start pods through libcni: bridge + host-local + egressgw-cni", l.startPods},
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
