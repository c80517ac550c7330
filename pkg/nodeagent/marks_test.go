package nodeagent

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/egressgw/egressgw/test/netlab"
)

// vpcCNIRules are the AWS VPC CNI's default node rules (external SNAT off, node port support on) as
// iptables-save prints them, with its connmark as a parameter (AWS_VPC_K8S_CNI_CONNMARK, default 0x80):
// pkg/networkutils/network.go and iptables_connmark.go of aws/amazon-vpc-cni-k8s.
func vpcCNIRules(connmark string) string {
	return strings.NewReplacer("{M}", connmark).Replace(`*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark {M}/{M}
-A PREROUTING -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask {M} --ctmask {M}
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:AWS-CONNMARK-CHAIN-0 - [0:0]
:AWS-SNAT-CHAIN-0 - [0:0]
-A PREROUTING -i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0
-A PREROUTING -m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask {M} --ctmask {M}
-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
-A AWS-CONNMARK-CHAIN-0 -d 10.0.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, VPC CIDR" -j RETURN
-A AWS-CONNMARK-CHAIN-0 -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark {M}/{M}
-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.11 --random-fully
COMMIT
`)
}

// kubeProxyRules are kube-proxy's iptables-mode mark rules (pkg/proxy/iptables/proxier.go).
const kubeProxyRules = `*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
COMMIT
`

// ourRules stand for egressgw's own chain and jump: they must never count as another owner's.
const ourRules = `*mangle
:EGRESSGW-PREROUTING - [0:0]
-A PREROUTING -m comment --comment "egressgw: steering and tunnel return marks" -j EGRESSGW-PREROUTING
-A EGRESSGW-PREROUTING -m mark --mark 0x0/0x3f -m comment --comment "egressgw: steer" -j MARK --set-xmark 0x1/0x3f
COMMIT
`

func TestIptablesMarksReadsEveryMarkOption(t *testing.T) {
	uses := iptablesMarks(vpcCNIRules("0x80") + kubeProxyRules + ourRules)
	var bitsSeen uint32
	for _, u := range uses {
		if strings.Contains(u.Rule, "egressgw") {
			t.Errorf("our own rule counted as another owner's: %s", u)
		}
		bitsSeen |= u.Bits
	}
	if len(uses) != 7 {
		t.Errorf("found %d mark uses, want 7 (4 of the VPC CNI, 3 of kube-proxy): %v", len(uses), uses)
	}
	if bitsSeen != 0x80|0x4000 {
		t.Errorf("bits seen %#x, want 0x4080", bitsSeen)
	}
}

func TestIptablesMarksWholeMark(t *testing.T) {
	cases := []struct {
		rule  string
		bits  uint32
		whole bool
	}{
		{"-A AZURE-NPM -m mark --mark 0x3000 -j AZURE-NPM-ACCEPT", 0x3000, true},
		{"-A PREROUTING -j MARK --set-xmark 0x14d/0xffffffff", 0x14d, true},
		{"-A ISTIO_PRERT -m mark ! --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff", 0xfff, false},
		{"-A PREROUTING -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff", 0x539, true},
		{"-A OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff", 0xffffffff, false},
	}
	for _, tc := range cases {
		u, ok := ruleMarkUse(tc.rule)
		if !ok || u.Bits != tc.bits || u.Whole != tc.whole {
			t.Errorf("%s: got bits %#x whole %v (found %v), want %#x %v", tc.rule, u.Bits, u.Whole, ok, tc.bits, tc.whole)
		}
	}
}

func TestMarkConflictsNameTheOwnersRule(t *testing.T) {
	ours := DefaultConfig().SteerMask | DefaultConfig().ReplyMark
	if _, err := markConflicts(iptablesMarks(vpcCNIRules("0x80")+kubeProxyRules), ours); err != nil {
		t.Errorf("default marks beside the VPC CNI's defaults and kube-proxy: %v", err)
	}
	_, err := markConflicts(iptablesMarks(vpcCNIRules("0x20")), ours)
	if err == nil || !strings.Contains(err.Error(), `"AWS, CONNMARK"`) || !strings.Contains(err.Error(), "mark bits 0x20") {
		t.Errorf("VPC CNI with AWS_VPC_K8S_CNI_CONNMARK=0x20: got %v, want a refusal naming its CONNMARK rule", err)
	}
	whole, err := markConflicts(iptablesMarks("*filter\n-A AZURE-NPM -m mark --mark 0x3000 -j AZURE-NPM-ACCEPT\n"), ours)
	if err != nil || len(whole) != 1 {
		t.Errorf("a whole-mark compare without shared bits: got %v, %v; want one warning and no error", whole, err)
	}
}

// kubeProxyNFT is kube-proxy's nftables-mode table as `nft list ruleset` prints it
// (pkg/proxy/nftables/proxier.go), next to a table of iptables-nft, which iptables-save covers.
const kubeProxyNFT = `table ip mangle {
	chain PREROUTING {
		meta mark & 0x0000003f == 0x00000000 counter packets 0 bytes 0 meta mark set mark and 0xffffffc0 xor 0x1
	}
}
table ip kube-proxy {
	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}
	chain masquerading {
		meta mark & 0x00004000 == 0x00000000 return
		meta mark set meta mark ^ 0x00004000
		masquerade fully-random
	}
}
`

func TestNFTMarks(t *testing.T) {
	uses := nftMarks(kubeProxyNFT)
	if len(uses) != 3 {
		t.Fatalf("found %v, want the three mark statements of table ip kube-proxy", uses)
	}
	for _, u := range uses {
		if u.Bits != 0x4000 || u.Where != "nft table ip kube-proxy" {
			t.Errorf("%s: bits %#x, want 0x4000 in table ip kube-proxy", u, u.Bits)
		}
	}
	if _, err := markConflicts(uses, 0x4000); err == nil {
		t.Error("mark 0x4000 beside kube-proxy's nftables mode was accepted")
	}
}

func TestBPFMarksWhenCiliumRuns(t *testing.T) {
	uses := bpfMarks("*mangle\n:CILIUM_PRE_mangle - [0:0]\n")
	if len(uses) != 1 || uses[0].Bits != 0xffff0000 {
		t.Fatalf("got %v, want Cilium's eBPF identity bits", uses)
	}
	if _, err := markConflicts(uses, DefaultConfig().SteerMask); err != nil {
		t.Errorf("the default steer mask beside Cilium's identity marks: %v", err)
	}
	if _, err := markConflicts(uses, 0x00ff0000); err == nil {
		t.Error("marks inside Cilium's identity bits were accepted")
	}
	if len(bpfMarks(kubeProxyRules)) != 0 {
		t.Error("eBPF marks reported on a node without Cilium")
	}
}

// TestCheckMarksOnNode reads a real node's kernel: the VPC CNI's rules installed with iptables-restore,
// and ip rules through netlink.
func TestCheckMarksOnNode(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	ns, err := netlab.NewNamespace(ctx, netlab.RandomPrefix()+"-marks")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	if _, err := ns.Run(ctx, []byte(vpcCNIRules("0x80")+kubeProxyRules), "iptables-restore", "--noflush"); err != nil {
		t.Fatal(err)
	}
	dp, err := New(DefaultConfig(), ns.NL, ns, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dp.CheckMarks(ctx); err != nil {
		t.Fatalf("default marks beside the VPC CNI and kube-proxy: %v", err)
	}

	cfg := DefaultConfig()
	cfg.SteerMask = 0x0000007f // valid in itself, but this node's VPC CNI was given connmark 0x20
	if _, err := ns.Run(ctx, []byte(vpcCNIRules("0x20")), "iptables-restore", "--noflush"); err != nil {
		t.Fatal(err)
	}
	cfg.ReplyMark = 0x1000
	dp, err = New(cfg, ns.NL, ns, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = dp.CheckMarks(ctx)
	if err == nil || !strings.Contains(err.Error(), "iptables nat AWS-CONNMARK-CHAIN-0") || !strings.Contains(err.Error(), "--set-xmark 0x20/0x20") {
		t.Errorf("CheckMarks = %v, want a refusal naming the VPC CNI's connmark rule", err)
	}

	mask := uint32(0x1000)
	rule := netlink.NewRule()
	rule.Priority, rule.Mark, rule.Mask, rule.Table = 1024, 0x1000, &mask, 254
	if err := ns.NL.RuleAdd(rule); err != nil {
		t.Fatal(err)
	}
	_, err = dp.CheckMarks(ctx)
	if err == nil || !strings.Contains(err.Error(), "ip rule 1024: fwmark 0x1000/0x1000") {
		t.Errorf("CheckMarks = %v, want a refusal naming ip rule 1024", err)
	}
}

// TestPodMarksDoNotReachTheNode checks the fact the survey relies on for meshes: marks set inside a
// pod's network namespace (Istio's rules live there) are cleared by the kernel when the packet crosses
// the veth into the node, so the node's rules never see them.
func TestPodMarksDoNotReachTheNode(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	topo, err := netlab.Build(ctx, netlab.Spec{Nodes: 1, PodsPerNode: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Close() })
	node, pod := topo.Nodes[0], topo.Nodes[0].Pods[0]
	if err := pod.NS.RunLines(ctx,
		[]string{"iptables", "-t", "mangle", "-A", "OUTPUT", "-j", "MARK", "--set-mark", "0x539"}); err != nil {
		t.Fatal(err)
	}
	if err := node.NS.RunLines(ctx,
		[]string{"iptables", "-t", "mangle", "-A", "PREROUTING", "-s", pod.IP.String(), "-m", "mark", "--mark", "0x0", "-j", "ACCEPT"},
		[]string{"iptables", "-t", "mangle", "-A", "PREROUTING", "-s", pod.IP.String(), "-j", "ACCEPT"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := pod.NS.SendUDP(ctx, netip.AddrPortFrom(node.IP, 9), "marked"); err != nil {
			t.Fatal(err)
		}
	}
	out, err := node.NS.Run(ctx, nil, "iptables", "-t", "mangle", "-L", "PREROUTING", "-v", "-x", "-n")
	if err != nil {
		t.Fatal(err)
	}
	counts := nonZeroPacketCounts(string(out), "ACCEPT")
	if len(counts) != 1 || counts[0] != 3 {
		t.Errorf("node PREROUTING counters %v, want only the first rule (mark 0) to count 3 packets:\n%s", counts, out)
	}
	out, err = pod.NS.Run(ctx, nil, "iptables", "-t", "mangle", "-L", "OUTPUT", "-v", "-x", "-n")
	if err != nil {
		t.Fatal(err)
	}
	if counts := nonZeroPacketCounts(string(out), "MARK"); len(counts) != 1 || counts[0] != 3 {
		t.Errorf("the pod marked %v packets, want 3:\n%s", counts, out)
	}
}

// nonZeroPacketCounts returns the packet counters of the rules with target in `iptables -L -v -x -n` output that counted.
func nonZeroPacketCounts(listing, target string) []int {
	var out []int
	for line := range strings.Lines(listing) {
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[2] != target {
			continue
		}
		if n, err := strconv.Atoi(fields[0]); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// TestNFTMarksSkipOurTable: egressgw's own table carries its marks; it is not another owner's.
func TestNFTMarksSkipOurTable(t *testing.T) {
	ruleset := "table ip egressgw {\n\tchain prerouting {\n\t\tmeta mark & 0x0000003f == 0x00000000 meta mark set meta mark | 0x00000001\n\t}\n}\n" +
		"table ip other {\n\tchain c {\n\t\tmeta mark set meta mark | 0x00000020\n\t}\n}\n"
	uses := nftMarks(ruleset)
	if len(uses) != 1 || uses[0].Where != "nft table ip other" || uses[0].Bits != 0x20 {
		t.Errorf("nftMarks = %+v, want only table ip other's 0x20", uses)
	}
}
