package netlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// ENI is a second network interface of a node, attached to the fabric the way a secondary ENI attaches
// to an EC2 instance: its own port on the router, its own source check. The cloud delivers an IP routed
// to the ENI to this interface only, and drops a packet that leaves any other interface with that IP as
// its source (AWS checks source and destination per ENI).
type ENI struct {
	Node *Node
	// Name is the interface's name in the node's namespace; IP its primary address in VPCSubnet.
	Name string
	IP   netip.Addr
	MAC  net.HardwareAddr
}

// AddENI attaches a new interface called name with address ip (in VPCSubnet) to node n. The interface
// is left down and without an address, as a freshly attached ENI is on a node whose OS does not manage
// it: whoever uses it must bring it up.
func (t *Topology) AddENI(ctx context.Context, n *Node, name string, ip netip.Addr) (*ENI, error) {
	if !VPCSubnet.Contains(ip) {
		return nil, fmt.Errorf("netlab: ENI address %s is outside the VPC subnet %s", ip, VPCSubnet)
	}
	port := fmt.Sprintf("n%d%s", n.index, name)
	if err := t.attachPort(ctx, port, n.NS, name, ip, netip.Prefix{}); err != nil {
		return nil, err
	}
	link, err := n.NS.NL.LinkByName(name)
	if err != nil {
		return nil, err
	}
	if err := n.NS.NL.LinkSetDown(link); err != nil {
		return nil, err
	}
	return &ENI{Node: n, Name: name, IP: ip, MAC: link.Attrs().HardwareAddr}, nil
}

// RouteToENI makes the fabric deliver ip to the ENI, the way EC2 delivers a secondary IP assigned to it,
// and lets only the ENI send from ip. It replaces any earlier assignment of ip.
func (t *Topology) RouteToENI(ip netip.Addr, e *ENI) error {
	return t.routeTo(ip, e.IP)
}
