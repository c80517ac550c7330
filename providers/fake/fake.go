// Package fake is an in-memory providers.Provider (and providers.Mover, or not: WithoutMover) for unit tests
// of the manager. It keeps the contract's rules (subnet, capacity, one node per IP, idempotency), records
// every call, and can be told to fail or slow down any method.
package fake

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/egressgw/egressgw/providers"
)

// Method names a provider method, for FailNext, SetDelay and Call.Method.
type Method string

// The methods the fake records.
const (
	DescribeNode Method = "DescribeNode"
	Assign       Method = "Assign"
	Release      Method = "Release"
	Locate       Method = "Locate"
	Move         Method = "Move"
)

// Call is one recorded call and its outcome.
type Call struct {
	Method   Method
	Node     string // Node.Name; empty for Locate
	IPs      []netip.Addr
	PublicIP string
	Err      error
}

// Provider is the fake. The zero value is not usable: call New.
type Provider struct {
	mu     sync.Mutex
	nodes  map[string]*node // by providerID
	owner  map[netip.Addr]string
	public map[string]netip.Addr // public IP handle -> private IP it follows
	calls  []Call
	fail   map[Method][]error
	delay  map[Method]time.Duration
}

type node struct {
	info providers.NodeInfo
	name string
}

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Mover    = (*Provider)(nil)
)

// New returns an empty fake cloud.
func New() *Provider {
	return &Provider{
		nodes:  map[string]*node{},
		owner:  map[netip.Addr]string{},
		public: map[string]netip.Addr{},
		fail:   map[Method][]error{},
		delay:  map[Method]time.Duration{},
	}
}

// AddNode puts a node into the fake cloud. info.Addresses are its current addresses, primary first; they
// count against info.Capacity.
func (p *Provider) AddNode(n providers.Node, info providers.NodeInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info.Addresses = slices.Clone(info.Addresses)
	p.nodes[n.ProviderID] = &node{info: info, name: n.Name}
	for _, ip := range info.Addresses {
		p.owner[ip] = n.ProviderID
	}
}

// RemoveNode deletes a node from the fake cloud, as a terminated instance; its IPs go with it.
func (p *Provider) RemoveNode(providerID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip, owner := range p.owner {
		if owner == providerID {
			delete(p.owner, ip)
		}
	}
	delete(p.nodes, providerID)
}

// AddPublicIP makes a public IP handle (for Assignment.PublicIP) exist.
func (p *Provider) AddPublicIP(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.public[id] = netip.Addr{}
}

// FailNext makes the next len(errs) calls of m return these errors, in order, without changing anything.
func (p *Provider) FailNext(m Method, errs ...error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail[m] = append(p.fail[m], errs...)
}

// SetDelay makes every call of m wait d (or until its context is done) before it acts.
func (p *Provider) SetDelay(m Method, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay[m] = d
}

// Calls returns a copy of every call made so far, in order.
func (p *Provider) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// Owner returns the providerID of the node holding ip.
func (p *Provider) Owner(ip netip.Addr) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.owner[ip]
	return id, ok
}

// PublicTarget returns the private IP that public IP id follows.
func (p *Provider) PublicTarget(id string) (netip.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ip, ok := p.public[id]
	return ip, ok && ip.IsValid()
}

// begin waits the configured delay, then locks the fake and returns the injected error, if any. The caller
// must call p.end with the call record while still holding the lock.
func (p *Provider) begin(ctx context.Context, m Method) error {
	p.mu.Lock()
	d := p.delay[m]
	p.mu.Unlock()
	if err := sleep(ctx, d); err != nil {
		p.mu.Lock()
		return err
	}
	p.mu.Lock()
	if q := p.fail[m]; len(q) > 0 {
		p.fail[m] = q[1:]
		return q[0]
	}
	return nil
}

// end records c and unlocks.
func (p *Provider) end(c Call) error {
	p.calls = append(p.calls, c)
	p.mu.Unlock()
	return c.Err
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// lookup finds the node; the caller holds the lock.
func (p *Provider) lookup(n providers.Node) (*node, error) {
	if n.ProviderID == "" {
		return nil, fmt.Errorf("node %q has no providerID: %w", n.Name, providers.ErrUnsupportedNode)
	}
	nd, ok := p.nodes[n.ProviderID]
	if !ok {
		return nil, fmt.Errorf("node %q (%s): %w", n.Name, n.ProviderID, providers.ErrNotFound)
	}
	return nd, nil
}
