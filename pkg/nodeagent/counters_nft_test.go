package nodeagent

import "testing"

// terseListing is `nft -t -y list table ip egressgw` of a source node with two fail-closed policies.
const terseListing = `table ip egressgw {
	set egressgw-cluster {
		type ipv4_addr
		flags interval
	}

	chain forward {
		type filter hook forward priority -10; policy accept;
		oifname "egressgw0" tcp flags syn / syn,rst tcp option maxseg size > 1410 tcp option maxseg size set 1410 comment "egressgw: TCP entering the tunnel fits its MTU"
		ip saddr @egressgw-s-aaaaaaaaaaaa ip daddr != @egressgw-cluster counter packets 3 bytes 180 drop comment "egressgw: fail closed: no egress IP for policy shop/web"
		ip saddr @egressgw-s-bbbbbbbbbbbb ip daddr != @egressgw-cluster counter packets 2 bytes 100 drop comment "egressgw: fail closed: no egress IP for policy shop/api"
		iifname "egressgw0" ct direction original meta mark & 0x0000003f != 0x0000003f counter packets 5 bytes 500 drop comment "egressgw: tunnelled packets that no SNAT rule takes"
		ip daddr 10.0.0.100 counter packets 1 bytes 60 drop comment "egressgw: egress IP 10.0.0.100 takes replies only"
	}

	chain input {
		type filter hook input priority -10; policy accept;
		udp dport 4866 ip saddr != @egressgw-nodes counter packets 7 bytes 700 drop comment "egressgw: tunnel packets only from cluster nodes"
	}
}
`

func TestDropCountersByReasonAndPolicy(t *testing.T) {
	k := newKernelState()
	if err := parseNftTableCounted([]byte(terseListing), k); err != nil {
		t.Fatal(err)
	}
	counts := map[string]DropCount{DropFailClosed: {ByPolicy: map[string]DropCount{}}}
	for _, chain := range []string{"forward", "input"} {
		for _, r := range k.nft.chains[chain].rules {
			addDropCount(counts, r)
		}
	}
	want := map[string]uint64{DropFailClosed: 5, DropUnmatchedTunnel: 5, DropSpoofedTunnelSource: 7, DropUnsolicitedEgressIP: 1}
	for reason, packets := range want {
		if counts[reason].Packets != packets {
			t.Errorf("%s: %d packets, want %d", reason, counts[reason].Packets, packets)
		}
	}
	if web, api := counts[DropFailClosed].ByPolicy["shop/web"], counts[DropFailClosed].ByPolicy["shop/api"]; web.Packets != 3 || web.Bytes != 180 || api.Packets != 2 {
		t.Errorf("fail closed by policy: %+v", counts[DropFailClosed].ByPolicy)
	}
	if k.nft.chains["forward"].header != "type filter hook forward priority -10; policy accept;" {
		t.Errorf("forward header %q", k.nft.chains["forward"].header)
	}
}
