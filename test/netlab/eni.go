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
	return t.AttachENI(ctx, n, name, ip, nil)
}

// AttachENI is AddENI with the interface's MAC address given, as a cloud reports it for the interface it
// attached (nil: the kernel's random one).
func (t *Topology) AttachENI(ctx context.Context, n *Node, name string, ip netip.Addr, mac net.HardwareAddr) (*ENI, error) {
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
	if mac != nil {
		if err := n.NS.NL.LinkSetHardwareAddr(link, mac); err != nil {
			return nil, fmt.Errorf("netlab: %s %s: set MAC %s: %w", n.Name, name, mac, err)
		}
		if link, err = n.NS.NL.LinkByName(name); err != nil {
			return nil, err
		}
	}
	return &ENI{Node: n, Name: name, IP: ip, MAC: link.Attrs().HardwareAddr}, nil
}

// RouteToENI makes the fabric deliver ip to the ENI, the way EC2 delivers a secondary IP assigned to it,
// and lets only the ENI send from ip. It replaces any earlier assignment of ip.
func (t *Topology) RouteToENI(ip netip.Addr, e *ENI) error {
	return t.routeTo(ip, e.IP)
}

// DetachENI unplugs e from its node, as detaching an ENI does: the interface and its router port go, and
// the fabric forgets the addresses routed to it.
func (t *Topology) DetachENI(e *ENI) error {
	port := t.ports[e.IP]
	for ip, p := range t.ports {
		if p == port {
			delete(t.ports, ip)
		}
	}
	link, err := t.Fabric.NL.LinkByName(port)
	if err != nil {
		return fmt.Errorf("netlab: %s %s: port %s: %w", e.Node.Name, e.Name, port, err)
	}
	if err := t.Fabric.NL.LinkDel(link); err != nil {
		return fmt.Errorf("netlab: %s %s: delete port %s: %w", e.Node.Name, e.Name, port, err)
	}
	return t.Fabric.RunLines(context.Background(),
		sourceCheckRule("-D", port),
		[]string{"ipset", "destroy", sourceSet(port)})
}
