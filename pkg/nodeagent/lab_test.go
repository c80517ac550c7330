package nodeagent

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// Shared facts of the datapath tests' lab.
var (
	egressIP  = netip.MustParseAddr("10.0.0.100")
	egressIP2 = netip.MustParseAddr("10.0.0.101")
	serverTCP = netip.AddrPortFrom(netlab.ServerIP, netlab.EchoPort)
	altServer = netip.AddrPortFrom(netlab.AltServerIP, netlab.EchoPort)
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: programs VXLAN, routes, ipsets and iptables in network namespaces (CI runs as root)")
	}
}

// echoDir holds the echo server binary; TestMain removes it.
var echoDir string

// echoBinary builds the echo server once per test binary, on first use (tests that need no root never
// build it).
var echoBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "egressgw-echo-")
	if err != nil {
		return "", err
	}
	echoDir = dir
	return netlab.BuildEchoServer(context.Background(), dir)
})

func TestMain(m *testing.M) {
	if os.Getenv(sysctlHelperEnv) != "" {
		os.Exit(sysctlHelperMain())
	}
	code := m.Run()
	if echoDir != "" {
		_ = os.RemoveAll(echoDir)
	}
	os.Exit(code)
}

// lab is a netlab topology with a Datapath per node and the echo server running.
type lab struct {
	t    testing.TB
	topo *netlab.Topology
	srv  *netlab.EchoServer
	dps  map[string]*Datapath
	cfg  Config
}

// forEachProfile runs fn once per netlab profile (CNI and service proxy), each as a parallel subtest
// named after the profile: `go test -run 'TestEgressThroughGateway/aws-vpc-cni'` runs one. The labs share
// nothing, and most of a packet test's time is spent waiting for packets that must not arrive, so the
// subtests overlap (as many at once as -parallel, GOMAXPROCS by default).
func forEachProfile(t *testing.T, fn func(t *testing.T, p netlab.Profile)) {
	forProfiles(t, netlab.Profiles(), fn)
}

// egressLinkProfiles are the profiles of the egress-interface tests: the dedicated ENI is AWS's, so
// the VPC CNI's, beside the plain baseline.
var egressLinkProfiles = []netlab.Profile{{}, {CNI: netlab.AWSVPCCNI(netlab.AWSOptions{}), Proxy: netlab.KubeProxyIPTables}}

// forProfiles runs fn as one parallel subtest per profile of ps.
func forProfiles(t *testing.T, ps []netlab.Profile, fn func(t *testing.T, p netlab.Profile)) {
	for _, p := range ps {
		if p.CNI == nil {
			p.CNI = netlab.PlainMasquerade()
		}
		t.Run(p.Name(), func(t *testing.T) {
			t.Parallel()
			fn(t, p)
		})
	}
}

// newLab builds nodes×pods under profile p, starts the echo server and creates (but does not apply) a
// Datapath per node.
func newLab(t testing.TB, p netlab.Profile, nodes, pods int) *lab {
	requireRoot(t)
	ctx := context.Background()
	bin, err := echoBinary()
	if err != nil {
		t.Fatal(err)
	}
	topo, err := netlab.Build(ctx, netlab.Spec{Nodes: nodes, PodsPerNode: pods, Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, topo: topo, dps: map[string]*Datapath{}, cfg: DefaultConfig()}
	t.Cleanup(l.close)
	if l.srv, err = topo.StartEchoServer(ctx, bin, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	for _, n := range topo.Nodes {
		if l.dps[n.Name], err = New(l.cfg, n.NS.NL, n.NS, testLogger(t)); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// ciliumLocalRule reports whether p's CNI moves the kernel's local rule to priority 100.
func ciliumLocalRule(p netlab.Profile) bool {
	return p.CNI != nil && (p.CNI.Name() == netlab.Cilium().Name() || p.CNI.Name() == netlab.GKEDataplaneV2().Name())
}

func (l *lab) close() {
	if l.srv != nil {
		_ = l.srv.Stop()
	}
	if err := l.topo.Close(); err != nil {
		l.t.Error(err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// view is the cluster as every node sees it, with the given policies and the cluster ranges the
// profile asks the operator to declare.
func (l *lab) view(policies ...PolicyView) View {
	v := View{ClusterCIDRs: l.topo.ClusterRanges(), Policies: policies}
	for _, n := range l.topo.Nodes {
		v.Nodes = append(v.Nodes, NodeInfo{Name: n.Name, IP: n.IP})
	}
	return v
}

// apply computes every node's desired state from v and applies it, returning the changes per node.
func (l *lab) apply(v View) map[string]Changes {
	l.t.Helper()
	out := map[string]Changes{}
	for _, n := range l.topo.Nodes {
		out[n.Name] = l.applyNode(n.Name, v)
	}
	return out
}

// update runs the event path (Datapath.Update) on every node.
func (l *lab) update(v View) {
	l.t.Helper()
	for _, n := range l.topo.Nodes {
		v.Node = n.Name
		d, err := DesiredState(v, l.cfg)
		if err != nil {
			l.t.Fatal(err)
		}
		if _, err := l.dps[n.Name].Update(context.Background(), d); err != nil {
			l.t.Fatalf("update on %s: %v", n.Name, err)
		}
	}
}

func (l *lab) applyNode(node string, v View) Changes {
	l.t.Helper()
	v.Node = node
	d, err := DesiredState(v, l.cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	ch, err := l.dps[node].Apply(context.Background(), d)
	if err != nil {
		l.t.Fatalf("apply on %s: %v", node, err)
	}
	return ch
}

// pod returns pod i (1-based) of node n (1-based).
func (l *lab) pod(n, i int) *netlab.Pod { return l.topo.Nodes[n-1].Pods[i-1] }

func (l *lab) node(n int) *netlab.Node { return l.topo.Nodes[n-1] }

func podRefs(pods ...*netlab.Pod) []PodRef {
	var out []PodRef
	for _, p := range pods {
		out = append(out, PodRef{IP: p.IP, Node: p.Node.Name})
	}
	return out
}

// ordinary is the source the server sees for pod p's traffic to server that egressgw leaves alone: the
// CNI's SNAT or the pod's own address.
func (l *lab) ordinary(p *netlab.Pod, server netip.AddrPort) netip.Addr {
	return l.topo.OrdinarySource(p, server.Addr())
}

// expectOrdinary asserts that pod p's traffic to server over proto is seen as the CNI would have it
// and, where the CNI SNATs it, went through the CNI's SNAT rule.
func (l *lab) expectOrdinary(p *netlab.Pod, proto string, server netip.AddrPort, what string) {
	l.t.Helper()
	ctx := context.Background()
	before, err := l.topo.SNATPackets(ctx, p.Node)
	if err != nil {
		l.t.Fatal(err)
	}
	want := l.ordinary(p, server)
	l.expectSource(p.NS, proto, server, want, what)
	after, err := l.topo.SNATPackets(ctx, p.Node)
	if err != nil {
		l.t.Fatal(err)
	}
	if masq := want == p.Node.IP; masq != (after > before) {
		l.t.Errorf("%s over %s: the CNI's SNAT rule %+v counted %d packets, want %s", what, proto,
			l.topo.SNATRule(), after-before, map[bool]string{true: "some", false: "none"}[masq])
	}
}

// expectSource asserts the address the echo server saw for a request from ns over proto.
func (l *lab) expectSource(ns *netlab.Namespace, proto string, server netip.AddrPort, want netip.Addr, what string) {
	l.t.Helper()
	got, err := ns.SourceOf(context.Background(), proto, server, "probe")
	if err != nil {
		l.t.Errorf("%s over %s: %v", what, proto, err)
		return
	}
	if got != want {
		l.t.Errorf("%s over %s: server saw %s, want %s", what, proto, got, want)
	}
}

// dumps returns the kernel dumps of a node that the tests compare: iptables-save, ip rule, every route
// table, ipset list, nft list ruleset and the links. What changes by itself (iptables-save's
// timestamps, nft's counter values) is dropped.
func dumps(t testing.TB, ns *netlab.Namespace) map[string]string {
	t.Helper()
	cmds := map[string][]string{
		"iptables-save":    {"iptables-save"},
		"ip rule":          {"ip", "rule"},
		"ip route":         {"ip", "route", "show", "table", "all"},
		"ipset list":       {"ipset", "list"},
		"nft list ruleset": {"nft", "list", "ruleset"},
		"ip link":          {"ip", "-d", "link", "show"},
	}
	out := map[string]string{}
	for name, c := range cmds {
		b, err := ns.Run(context.Background(), nil, c[0], c[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = nftCountersRE.ReplaceAllString(timestampRE.ReplaceAllString(string(b), ""), "counter")
	}
	return out
}

var (
	timestampRE   = regexp.MustCompile(`(?m)^# (Generated|Completed) .*\n`)
	nftCountersRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)
)

// compareDumps reports every dump that differs.
func compareDumps(t testing.TB, what string, want, got map[string]string) {
	t.Helper()
	for name := range want {
		if want[name] != got[name] {
			t.Errorf("%s: %s differs:\n--- want\n%s\n--- got\n%s", what, name, want[name], got[name])
		}
	}
}
