package fake

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/egressgw/egressgw/providers"
)

// DescribeNode implements providers.Provider.
func (p *Provider) DescribeNode(ctx context.Context, n providers.Node) (providers.NodeInfo, error) {
	if err := p.begin(ctx, DescribeNode); err != nil {
		return providers.NodeInfo{}, p.end(Call{Method: DescribeNode, Node: n.Name, Err: err})
	}
	nd, err := p.lookup(n)
	if err != nil {
		return providers.NodeInfo{}, p.end(Call{Method: DescribeNode, Node: n.Name, Err: err})
	}
	info := nd.info
	info.Addresses = slices.Clone(info.Addresses)
	return info, p.end(Call{Method: DescribeNode, Node: n.Name})
}

// Assign implements providers.Provider.
func (p *Provider) Assign(ctx context.Context, n providers.Node, a providers.Assignment) error {
	c := Call{Method: Assign, Node: n.Name, IPs: []netip.Addr{a.IP}, PublicIP: a.PublicIP}
	if c.Err = p.begin(ctx, Assign); c.Err != nil {
		return p.end(c)
	}
	c.Err = p.assign(n, a)
	return p.end(c)
}

func (p *Provider) assign(n providers.Node, a providers.Assignment) error {
	nd, err := p.lookup(n)
	if err != nil {
		return err
	}
	if a.PublicIP != "" {
		if _, ok := p.public[a.PublicIP]; !ok {
			return fmt.Errorf("public IP %s: %w", a.PublicIP, providers.ErrNotFound)
		}
	}
	if owner, ok := p.owner[a.IP]; ok && owner != n.ProviderID {
		return fmt.Errorf("assign %s to %s: held by %s: %w", a.IP, n.Name, p.nodes[owner].name, providers.ErrAssignedElsewhere)
	}
	if err := p.place(n.ProviderID, nd, []netip.Addr{a.IP}); err != nil {
		return err
	}
	if a.PublicIP != "" {
		p.public[a.PublicIP] = a.IP
	}
	return nil
}

// place checks subnet and capacity for every IP, then moves them all to nd; nothing changes on error.
func (p *Provider) place(id string, nd *node, ips []netip.Addr) error {
	var outside, fresh []netip.Addr
	for _, ip := range ips {
		if !nd.info.Subnet.Contains(ip) {
			outside = append(outside, ip)
		} else if p.owner[ip] != id && !slices.Contains(fresh, ip) {
			fresh = append(fresh, ip)
		}
	}
	if len(outside) > 0 {
		return fmt.Errorf("%v not in %s of %s: %w", outside, nd.info.Subnet, nd.name, providers.ErrOutsideSubnet)
	}
	if len(fresh) > nd.info.Free() {
		return fmt.Errorf("%d more IPs on %s (%d free): %w", len(fresh), nd.name, nd.info.Free(), providers.ErrCapacityExhausted)
	}
	for _, ip := range fresh {
		if err := p.takeFrom(ip); err != nil {
			return err
		}
	}
	for _, ip := range fresh {
		p.owner[ip] = id
		nd.info.Addresses = append(nd.info.Addresses, ip)
	}
	return nil
}

// takeFrom removes ip from its current node; a primary address cannot be taken.
func (p *Provider) takeFrom(ip netip.Addr) error {
	owner, ok := p.owner[ip]
	if !ok {
		return nil
	}
	old := p.nodes[owner]
	if old.info.Addresses[0] == ip {
		return fmt.Errorf("%s is the primary address of %s: %w", ip, old.name, providers.ErrPermanent)
	}
	old.info.Addresses = slices.DeleteFunc(old.info.Addresses, func(a netip.Addr) bool { return a == ip })
	delete(p.owner, ip)
	return nil
}

// Release implements providers.Provider.
func (p *Provider) Release(ctx context.Context, n providers.Node, a providers.Assignment) error {
	c := Call{Method: Release, Node: n.Name, IPs: []netip.Addr{a.IP}, PublicIP: a.PublicIP}
	if c.Err = p.begin(ctx, Release); c.Err != nil {
		return p.end(c)
	}
	c.Err = p.release(n, a)
	return p.end(c)
}

func (p *Provider) release(n providers.Node, a providers.Assignment) error {
	if _, err := p.lookup(n); err != nil {
		return err
	}
	if p.owner[a.IP] != n.ProviderID {
		return nil
	}
	if err := p.takeFrom(a.IP); err != nil {
		return err
	}
	for id, ip := range p.public {
		if ip == a.IP {
			p.public[id] = netip.Addr{}
		}
	}
	return nil
}

// Locate implements providers.Provider.
func (p *Provider) Locate(ctx context.Context, ips []netip.Addr) (map[netip.Addr]providers.Location, error) {
	c := Call{Method: Locate, IPs: slices.Clone(ips)}
	if c.Err = p.begin(ctx, Locate); c.Err != nil {
		return nil, p.end(c)
	}
	out := map[netip.Addr]providers.Location{}
	for _, ip := range ips {
		if owner, ok := p.owner[ip]; ok {
			out[ip] = p.location(ip, p.nodes[owner])
		}
	}
	return out, p.end(c)
}

func (p *Provider) location(ip netip.Addr, nd *node) providers.Location {
	loc := providers.Location{IP: ip, Instance: nd.info.Instance, Interface: nd.info.Interface, Primary: nd.info.Addresses[0] == ip}
	for id, target := range p.public {
		if target == ip {
			loc.PublicIPID = id
		}
	}
	return loc
}

// Move implements providers.Mover.
func (p *Provider) Move(ctx context.Context, n providers.Node, ips []netip.Addr) error {
	c := Call{Method: Move, Node: n.Name, IPs: slices.Clone(ips)}
	if c.Err = p.begin(ctx, Move); c.Err != nil {
		return p.end(c)
	}
	nd, err := p.lookup(n)
	if err == nil {
		err = p.movable(ips)
	}
	if err == nil {
		err = p.place(n.ProviderID, nd, ips)
	}
	c.Err = err
	return p.end(c)
}

// movable refuses primary addresses before anything changes, so that a Move is all or nothing.
func (p *Provider) movable(ips []netip.Addr) error {
	for _, ip := range ips {
		if owner, ok := p.owner[ip]; ok && p.nodes[owner].info.Addresses[0] == ip {
			return fmt.Errorf("%s is the primary address of %s: %w", ip, p.nodes[owner].name, providers.ErrPermanent)
		}
	}
	return nil
}

// InstanceOf implements providers.Provider: the Instance of the node added under providerID.
func (p *Provider) InstanceOf(providerID string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	nd, ok := p.nodes[providerID]
	if !ok || nd.info.Instance == "" {
		return "", fmt.Errorf("providerID %q names no instance of the fake cloud: %w", providerID, providers.ErrUnsupportedNode)
	}
	return nd.info.Instance, nil
}

// InstanceNode implements providers.Provider: the node added with NodeInfo.Instance instance, under its
// providerID.
func (p *Provider) InstanceNode(instance string) (providers.Node, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, nd := range p.nodes {
		if instance != "" && nd.info.Instance == instance {
			return providers.Node{Name: nd.name, ProviderID: id}, nil
		}
	}
	return providers.Node{}, fmt.Errorf("%q is no instance of the fake cloud: %w", instance, providers.ErrUnsupportedNode)
}
