package netlab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestProfiles builds a lab under each profile and checks that the profile's rules are in the kernel as
// declared (iptables-save, ip rule, sysctls, nft), that an ordinary pod reaches the external server with
// the source the real CNI gives it, through the CNI's own SNAT rule when it masquerades, and that pods on
// two nodes reach each other with their own addresses.
func TestProfiles(t *testing.T) {
	profiles := append(Profiles(), Profile{AWSVPCCNI(AWSOptions{Connmark: 0x400000}), KubeProxyIPTables},
		Profile{AWSVPCCNI(AWSOptions{ExternalSNAT: true}), KubeProxyIPTables})
	for _, p := range profiles {
		t.Run(p.Name(), func(t *testing.T) {
			ctx := context.Background()
			topo, srv := startLab(t, Spec{Nodes: 2, PodsPerNode: 1, Profile: p})
			for _, n := range topo.Nodes {
				if err := topo.Verify(ctx, n); err != nil {
					t.Error(err)
				}
				checkPodAddressing(t, topo, n.Pods[0])
				checkOrdinaryEgress(t, topo, srv.Addr, n.Pods[0])
			}
			a, b := topo.Nodes[0].Pods[0], topo.Nodes[1].Pods[0]
			if got, err := a.NS.SourceOf(ctx, "tcp", startPeerEcho(t, topo, b), "pod-to-pod"); err != nil || got != a.IP {
				t.Errorf("pod %s to pod %s: seen as %v (err %v), want the pod's own address", a.IP, b.IP, got, err)
			}
		})
	}
}

// checkPodAddressing checks where p's address comes from: the VPC itself, delivered by the fabric as a
// /32 (a secondary IP), for VPC-addressed profiles; the node's pod block, delivered as one range,
// otherwise. The host side of its veth carries the CNI's name.
func checkPodAddressing(t *testing.T, topo *Topology, p *Pod) {
	t.Helper()
	vpc := topo.Profile.CNI.addressing() == vpcAddresses
	if !p.Node.PodCIDR.Contains(p.IP) || VPCCIDR.Contains(p.IP) != vpc {
		t.Errorf("pod %s on %s (block %s): VPC address %v, want %v", p.IP, p.Node.Name, p.Node.PodCIDR, VPCCIDR.Contains(p.IP), vpc)
	}
	want := p.Node.PodCIDR
	if vpc {
		want = netip.PrefixFrom(p.IP, 32)
	}
	out, err := topo.Fabric.Run(context.Background(), nil, "ip", "route", "show", "exact", want.String())
	if err != nil || !strings.Contains(string(out), "via "+p.Node.IP.String()) {
		t.Errorf("fabric route for %s: %q (err %v), want it via %s", want, out, err, p.Node.IP)
	}
	if _, err := p.Node.NS.NL.LinkByName(topo.Profile.CNI.hostVeth(p)); err != nil {
		t.Errorf("host veth %s of pod %s: %v", topo.Profile.CNI.hostVeth(p), p.IP, err)
	}
}

// checkOrdinaryEgress sends one request from p and checks the source the server saw and the CNI's SNAT
// counter on p's node.
func checkOrdinaryEgress(t *testing.T, topo *Topology, server netip.AddrPort, p *Pod) {
	t.Helper()
	ctx := context.Background()
	before, err := topo.SNATPackets(ctx, p.Node)
	if err != nil {
		t.Fatal(err)
	}
	want := topo.OrdinarySource(p, server.Addr())
	for _, proto := range []string{"tcp", "udp"} {
		if got, err := p.NS.SourceOf(ctx, proto, server, "ordinary-"+proto); err != nil || got != want {
			t.Errorf("%s pod %s over %s: seen as %v (err %v), want %s", p.Node.Name, p.IP, proto, got, err, want)
		}
	}
	after, err := topo.SNATPackets(ctx, p.Node)
	if err != nil {
		t.Fatal(err)
	}
	masq := want == p.Node.IP
	if masq && after-before < 2 {
		t.Errorf("%s: the CNI's SNAT rule (%+v) counted %d packets for two new flows", p.Node.Name, topo.SNATRule(), after-before)
	}
	if !masq && after != before {
		t.Errorf("%s: the CNI's SNAT rule counted %d packets for flows it should leave alone", p.Node.Name, after-before)
	}
}

// startPeerEcho runs the echo server inside pod p (on the pod's address) and returns where it listens.
func startPeerEcho(t *testing.T, topo *Topology, p *Pod) netip.AddrPort {
	t.Helper()
	dir := t.TempDir()
	bin, err := BuildEchoServer(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(p.IP, EchoPort)
	cmd, err := p.NS.Start(bin, "-listen", addr.String(), "-log", dir+"/peer.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitForEcho(t, p.NS, addr)
	return addr
}

func waitForEcho(t *testing.T, ns *Namespace, addr netip.AddrPort) {
	t.Helper()
	var err error
	for range 100 {
		if _, err = ns.Ask(context.Background(), "tcp", addr, "ready", 0); err == nil {
			return
		}
		if !strings.Contains(err.Error(), "refused") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("echo server at %s: %v", addr, err)
}

// TestProfileMarksDeclared checks that each profile that programs marks lists them, each naming a rule.
func TestProfileMarksDeclared(t *testing.T) {
	for _, p := range Profiles() {
		topo := &Topology{Profile: p}
		marks := topo.Marks()
		_, plain := p.CNI.(plainCNI)
		if len(marks) == 0 && !plain && p.CNI.Name() != "gke" && !strings.HasPrefix(p.CNI.Name(), "azure") {
			t.Errorf("%s lists no marks", p.Name())
		}
		for _, m := range marks {
			if m.Mask == 0 || m.Value&^m.Mask != 0 || m.Rule == "" || m.Owner == "" {
				t.Errorf("%s: malformed mark %v", p.Name(), m)
			}
		}
	}
}
