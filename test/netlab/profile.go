package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// CNI is what a cluster's network plugin does on a node: the rules it programs (iptables, ip rules,
// sysctls), the host-side pod interfaces those rules match on, where pod addresses come from and how the
// cloud network delivers them, and how ordinary pod traffic is SNATed. Each implementation reproduces one
// cloud's default plugin from its source; the constructors below say which files. Select one through
// Spec.CNI (nil: PlainMasquerade, the lab's original single MASQUERADE rule).
type CNI interface {
	// Name identifies the profile in test names ("aws-vpc-cni").
	Name() string

	addressing() addressing
	// node is what the plugin programs on n once, when the node starts.
	node(n *Node) Declared
	// pod is what the plugin adds on p's node for p (ip rules), besides the veth and its /32 route.
	pod(p *Pod) Declared
	// hostVeth names p's host-side interface the way the plugin does.
	hostVeth(p *Pod) string
	// gatewayARP says how the pod resolves its gateway 169.254.1.1: by proxy ARP on the host veth, or
	// by a static neighbour entry the plugin writes into the pod (and then proxy ARP may still be on).
	gatewayARP() gatewayARP
	// clusterRanges are the destinations the operator declares as cluster ranges for this plugin.
	clusterRanges() []netip.Prefix
	// masquerades reports whether the plugin on n SNATs a packet from src to dst, leaving n, to n's
	// address.
	masquerades(n *Node, src, dst netip.Addr) bool
	marks() []Mark
	snatRule() SNATRule
}

// addressing is where a plugin's pod addresses come from.
type addressing int

const (
	// podBlocks: each node owns a block of PodSupernet (10.244.N.0/24) that the cloud network routes
	// to it as one range (a GCP alias range, an Azure overlay, a Calico or Cilium route).
	podBlocks addressing = iota
	// vpcAddresses: pods get addresses of the VPC itself (secondary IPs of the node's NIC), drawn from
	// 10.0.N.0/24 inside VPCCIDR, each routed to its node by the cloud network like any secondary IP.
	vpcAddresses
)

type gatewayARP int

const (
	proxyARP gatewayARP = iota
	staticNeighbour
	staticNeighbourAndProxyARP
)

// Mark is one fwmark or connmark range another owner uses on a node: Value within Mask, and the rule
// that uses it as iptables-save prints it (or as nft or ip rule print it).
type Mark struct {
	Value, Mask uint32
	Owner       string
	Rule        string
}

func (m Mark) String() string {
	return fmt.Sprintf("%#x/%#x (%s: %s)", m.Value, m.Mask, m.Owner, m.Rule)
}

// SNATRule identifies the rule that SNATs ordinary pod traffic leaving the cluster: in the nat table,
// in Chain, carrying Comment. The zero value: the CNI has none (the AWS VPC CNI with external SNAT).
type SNATRule struct {
	Chain, Comment string
}

// Declared is node state a profile programs, in the form the kernel's tools print it back, so that what
// is installed and what is checked are the same text.
type Declared struct {
	// Tables maps an iptables table to its rules as iptables-save prints them ("-A CHAIN ..."), in
	// chain order. Chains that are not built in are created; ":CHAIN" declares one with no rules.
	Tables map[string][]string
	// InsertFirst puts the rules for built-in chains ahead of those already there (the plugin inserts
	// its jumps at the top), keeping their relative order.
	InsertFirst bool
	// NFT is an nft script (a whole table) and NFTExpect lines that `nft list table` must show for it.
	NFT       string
	NFTTable  string
	NFTExpect []string
	// Rules are ip rules: what `ip rule add` takes and what `ip rule show` prints after "N:\t".
	Rules []IPRule
	// DeleteRules are ip rules the plugin removes (by priority and what `ip rule show` prints).
	DeleteRules []IPRule
	// Sysctls are "key=value" settings.
	Sysctls []string
	// Setup are commands the plugin runs before its rules (ipsets they match on).
	Setup [][]string
	// Commands are further commands the plugin runs (routes in its own tables), after the rules.
	Commands [][]string
}

// IPRule is one policy routing rule.
type IPRule struct {
	Priority int
	Args     []string // after `ip rule add`, without the priority
	Shown    string   // what `ip rule show` prints after the priority
}

// Profile is a CNI together with the service proxy every cloud runs beside it.
type Profile struct {
	CNI   CNI
	Proxy ServiceProxy
}

// Name is "cni" or "cni+proxy".
func (p Profile) Name() string {
	cni := PlainMasquerade()
	if p.CNI != nil {
		cni = p.CNI
	}
	if p.Proxy == NoServiceProxy {
		return cni.Name()
	}
	return cni.Name() + "+" + p.Proxy.String()
}

// Profiles is the matrix the datapath tests run under: today's plain masquerade, then each cloud's
// default plugin with the service proxy it ships with (EKS, AKS and GKE run kube-proxy in iptables mode;
// GKE Dataplane V2 and Cilium replace it partly; the nftables mode runs beside Calico, which supports it).
func Profiles() []Profile {
	return []Profile{
		{PlainMasquerade(), NoServiceProxy},
		{AWSVPCCNI(AWSOptions{}), KubeProxyIPTables},
		{AzureCNI(), KubeProxyIPTables},
		{AzureCNIOverlay(), KubeProxyIPTables},
		{GKE(), KubeProxyIPTables},
		{GKEDataplaneV2(), NoServiceProxy},
		{Calico(), KubeProxyNFTables},
		{Cilium(), KubeProxyIPTables},
	}
}

// ProfileByName finds one of Profiles by its Name.
func ProfileByName(name string) (Profile, error) {
	var names []string
	for _, p := range Profiles() {
		if p.Name() == name {
			return p, nil
		}
		names = append(names, p.Name())
	}
	return Profile{}, fmt.Errorf("netlab: no profile %q: want one of %s", name, strings.Join(names, ", "))
}

// install programs d in n: sysctls, iptables (one iptables-restore per table), nft, ip rules, commands.
func (d Declared) install(ctx context.Context, ns *Namespace) error {
	if err := ns.Sysctl(d.Sysctls...); err != nil {
		return err
	}
	if err := ns.RunLines(ctx, d.Setup...); err != nil {
		return err
	}
	for _, table := range sortedKeys(d.Tables) {
		in := restoreInput(table, d.Tables[table], d.InsertFirst)
		if _, err := ns.Run(ctx, []byte(in), "iptables-restore", "--noflush"); err != nil {
			return fmt.Errorf("install %s rules:\n%s\n%w", table, in, err)
		}
	}
	if d.NFT != "" {
		if _, err := ns.Run(ctx, []byte(d.NFT), "nft", "-f", "-"); err != nil {
			return fmt.Errorf("install nft table %s: %w", d.NFTTable, err)
		}
	}
	for _, r := range d.Rules {
		args := append([]string{"rule", "add", "priority", fmt.Sprint(r.Priority)}, r.Args...)
		if _, err := ns.Run(ctx, nil, "ip", args...); err != nil {
			return err
		}
	}
	for _, r := range d.DeleteRules {
		args := append([]string{"rule", "del", "priority", fmt.Sprint(r.Priority)}, r.Args...)
		if _, err := ns.Run(ctx, nil, "ip", args...); err != nil {
			return err
		}
	}
	return ns.RunLines(ctx, d.Commands...)
}

var builtinChains = map[string]bool{"PREROUTING": true, "INPUT": true, "FORWARD": true, "OUTPUT": true, "POSTROUTING": true}

// restoreInput renders one table for iptables-restore --noflush: chain declarations for the chains the
// rules append to, then the rules; with insertFirst, rules of built-in chains become inserts at the
// top (in reverse, so they keep their order).
func restoreInput(table string, rules []string, insertFirst bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s\n", table)
	declared := map[string]bool{}
	for _, r := range rules {
		if c := chainOf(r); c != "" && !builtinChains[c] && !declared[c] {
			declared[c] = true
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
	}
	var inserts []string
	for _, r := range rules {
		if strings.HasPrefix(r, ":") {
			continue
		}
		if c := chainOf(r); insertFirst && builtinChains[c] {
			inserts = append(inserts, "-I "+c+" 1"+strings.TrimPrefix(r, "-A "+c))
			continue
		}
		b.WriteString(r + "\n")
	}
	for _, r := range slices.Backward(inserts) {
		b.WriteString(r + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// chainOf is the chain of a rule "-A CHAIN ..." or of a declaration ":CHAIN".
func chainOf(rule string) string {
	if c, ok := strings.CutPrefix(rule, ":"); ok {
		return c
	}
	f := strings.Fields(rule)
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// containsMark reports whether an iptables rule reads or writes a mark or connmark.
func containsMark(rule string) bool {
	return strings.Contains(rule, "mark ") || strings.Contains(rule, "MARK ")
}

// ReassertCNI does on n what a CNI that keeps its jumps first does on each periodic refresh (Calico's
// felix in its default insert mode, Cilium with its prepend default): its rules in the built-in chains
// are taken out and inserted again at the top, ahead of whatever another owner inserted since. A CNI
// that appends its rules (the AWS VPC CNI checks existence, not position) is left alone.
func (t *Topology) ReassertCNI(ctx context.Context, n *Node) error {
	d := t.Profile.CNI.node(n)
	if !d.InsertFirst {
		return nil
	}
	for _, table := range sortedKeys(d.Tables) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%s\n", table)
		var builtin []string
		for _, r := range d.Tables[table] {
			if c := chainOf(r); builtinChains[c] && !strings.HasPrefix(r, ":") {
				builtin = append(builtin, r)
				b.WriteString("-D" + strings.TrimPrefix(r, "-A") + "\n")
			}
		}
		if len(builtin) == 0 {
			continue
		}
		in := restoreInput(table, builtin, true)
		b.WriteString(strings.TrimPrefix(in, "*"+table+"\n"))
		if _, err := n.NS.Run(ctx, []byte(b.String()), "iptables-restore", "--noflush"); err != nil {
			return fmt.Errorf("%s: reassert the %s jumps: %w", n.Name, t.Profile.CNI.Name(), err)
		}
	}
	return nil
}
