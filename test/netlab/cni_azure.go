package netlab

import "net/netip"

// AzureCNI reproduces Azure CNI in node-subnet mode (the AKS "azure" plugin without overlay) with its
// transparent endpoint client (Azure/azure-container-networking network/transparent_endpointclient_linux.go,
// network/endpoint_linux.go): host veth azv<hash>, the pod's /32 route on it, proxy ARP on the host side,
// and in the pod a link route to 169.254.1.1, the default route through it and a static ARP entry for it.
// Pod addresses are the NIC's secondary ip configurations in the VNet subnet: as for the VPC CNI, node N's
// pods get 10.0.N.10 onward inside VPCCIDR (the VNet) and the fabric routes each one to its node. Azure
// CNI itself programs no iptables rule and no mark in this mode (the SWIFT chain of cni/network/invoker_cns.go
// belongs to the multitenant mode); SNAT is AKS's ip-masq-agent-v2 (Azure/ip-masq-agent-v2
// cmd/ip-masq-agent-v2/ip-masq-agent.go) with the VNet as its non-masquerade range. Azure Network Policy
// Manager is off by default on AKS (network policy "none"), so its marks are not programmed; they are
// listed by AzureNPMMarks.
//
// Address adoption, for the Azure provider (ipam/azure.go, the azure-vnet-ipam plugin of this mode):
// the IPAM asks the host's NMAgent (168.63.129.16, getinterfaceinfov1) for every NIC of the VM and puts
// every non-primary address of every ip configuration into the pod pool, NICs found by MAC, secondary
// NICs even preferred (priority 1). An egress IP added as an ip configuration, on the primary NIC or on
// a dedicated one, is therefore handed to pods: node-subnet mode needs another answer (overlay, or
// refusing with a reason). Not emulated here (pod addresses are assigned by the lab).
func AzureCNI() CNI { return azureCNI{overlay: false} }

// AzureCNIOverlay reproduces Azure CNI overlay: the same transparent endpoints, but pod addresses come
// from a pod CIDR outside the VNet (10.244.N.0/24 per node here) that Azure's SDN routes to the node; the
// ip-masq-agent's non-masquerade ranges are the pod CIDR and the VNet.
func AzureCNIOverlay() CNI { return azureCNI{overlay: true} }

type azureCNI struct{ overlay bool }

func (c azureCNI) Name() string {
	if c.overlay {
		return "azure-cni-overlay"
	}
	return "azure-cni"
}

func (c azureCNI) addressing() addressing {
	if c.overlay {
		return podBlocks
	}
	return vpcAddresses
}

func (azureCNI) gatewayARP() gatewayARP { return staticNeighbourAndProxyARP }
func (azureCNI) hostVeth(p *Pod) string { return hashedVeth("azv", p) }
func (azureCNI) pod(*Pod) Declared      { return Declared{} }
func (azureCNI) marks() []Mark          { return nil }

func (c azureCNI) clusterRanges() []netip.Prefix {
	if c.overlay {
		return []netip.Prefix{PodSupernet, VPCCIDR}
	}
	return []netip.Prefix{VPCCIDR}
}

func (c azureCNI) masquerades(_ *Node, _, dst netip.Addr) bool { return c.masq().masquerades(dst) }
func (c azureCNI) snatRule() SNATRule                          { return c.masq().snatRule() }

func (c azureCNI) node(*Node) Declared {
	d := c.masq().rules()
	d.Sysctls = []string{"net.ipv4.ip_forward=1"}
	return d
}

func (c azureCNI) masq() ipMasqAgent {
	return ipMasqAgent{chain: "IP-MASQ-AGENT", commentPrefix: "ip-masq-agent", nonMasq: c.clusterRanges()}
}

// AzureNPMMarks are the marks of Azure Network Policy Manager (Azure/azure-container-networking
// npm/util/const.go), programmed only when a cluster enables network policy "azure". NPM v1's ingress
// mark 0x2000 is egressgw's old reply mark.
func AzureNPMMarks() []Mark {
	return []Mark{
		{0x200, 0x200, "Azure NPM v2", "IptablesAzureIngressAllowMarkHex 0x200/0x200"},
		{0x400, 0x400, "Azure NPM v2", "IptablesAzureIngressDropMarkHex 0x400/0x400"},
		{0x800, 0x800, "Azure NPM v2", "IptablesAzureEgressDropMarkHex 0x800/0x800"},
		{0x0, 0xe00, "Azure NPM v2", "IptablesAzureClearMarkHexV2 0x0/0xE00"},
		{0x1000, 0x1000, "Azure NPM v1", "IptablesAzureEgressXMarkHex 0x1000/0x1000"},
		{0x2000, 0x2000, "Azure NPM v1", "IptablesAzureIngressMarkHex 0x2000"},
		{0x3000, 0x3000, "Azure NPM v1", "IptablesAzureAcceptMarkHex 0x3000"},
	}
}

// ipMasqAgent is the nat chain the ip-masq-agent family writes: a jump from POSTROUTING for non-local
// destinations, RETURN for link-local and each non-masquerade range, MASQUERADE for the rest. The
// Kubernetes ip-masq-agent (GKE) and Azure's ip-masq-agent-v2 differ only in chain, comments and the
// --random-fully flag.
type ipMasqAgent struct {
	chain, commentPrefix string
	nonMasq              []netip.Prefix
	// nonMasqComment is the comment of the RETURN rules when it differs from the link-local one.
	nonMasqComment func(netip.Prefix) string
	randomFully    bool
}

func (a ipMasqAgent) masqComment() string {
	return a.commentPrefix + ": outbound traffic is subject to MASQUERADE (must be last in chain)"
}

func (a ipMasqAgent) rules() Declared {
	local := a.commentPrefix + ": local traffic is not subject to MASQUERADE"
	rules := []string{
		`-A POSTROUTING -m comment --comment "` + a.commentPrefix + `: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom ` +
			a.chain + ` chain" -m addrtype ! --dst-type LOCAL -j ` + a.chain,
		`-A ` + a.chain + ` -d 169.254.0.0/16 -m comment --comment "` + local + `" -j RETURN`,
	}
	for _, p := range a.nonMasq {
		comment := local
		if a.nonMasqComment != nil {
			comment = a.nonMasqComment(p)
		}
		rules = append(rules, `-A `+a.chain+` -d `+p.String()+` -m comment --comment "`+comment+`" -j RETURN`)
	}
	masq := `-A ` + a.chain + ` -m comment --comment "` + a.masqComment() + `" -j MASQUERADE`
	if a.randomFully {
		masq += " --random-fully"
	}
	return Declared{Tables: map[string][]string{"nat": append(rules, masq)}}
}

func (a ipMasqAgent) masquerades(dst netip.Addr) bool {
	if netip.MustParsePrefix("169.254.0.0/16").Contains(dst) {
		return false
	}
	for _, p := range a.nonMasq {
		if p.Contains(dst) {
			return false
		}
	}
	return true
}

func (a ipMasqAgent) snatRule() SNATRule { return SNATRule{Chain: a.chain, Comment: a.masqComment()} }
