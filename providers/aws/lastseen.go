package aws

import (
	"net/netip"
	"time"

	"github.com/egressgw/egressgw/providers"
)

// DefaultLastSeenTTL is how long the provider trusts what it last saw of an IP (see Options.LastSeenTTL):
// longer than the manager's default resync of one minute, so that its steady-state Locate keeps the
// addresses of placed IPs fresh and a failover needs no read of its own.
const DefaultLastSeenTTL = 90 * time.Second

// lastSeen is what the provider last knew of where an IP lives, from a DescribeNetworkInterfaces that
// looked for it (stamped with the time the read was sent) or from its own write that EC2 accepted.
type lastSeen struct {
	f    found // where it was; zero when free
	held bool
	at   time.Time
}

// remember records what a read or a write showed of ip at the given time, unless something newer is
// already known: a read that was sent before our own write must not undo it.
func (p *Provider) remember(ip netip.Addr, f found, held bool, at time.Time) {
	if p.opts.LastSeenTTL < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.seen[ip]; ok && cur.at.After(at) {
		return
	}
	p.seen[ip] = lastSeen{f: f, held: held, at: at}
	p.pruneSeen()
}

// rememberOn records ips on at's interface, after EC2 accepted our write.
func (p *Provider) rememberOn(at attachment, ips []netip.Addr) {
	now := time.Now()
	for _, ip := range ips {
		p.remember(ip, found{Location: providers.Location{IP: ip, Instance: at.instance, Interface: at.eni}, vpc: at.vpc}, true, now)
	}
}

// forget drops what is known of ips: a write about them failed, and only a read can tell where they are.
func (p *Provider) forget(ips []netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ip := range ips {
		delete(p.seen, ip)
	}
	p.pruneSeen()
}

// pruneSeen drops expired entries once the map outgrows the IPs a cluster may have; p.mu is held.
func (p *Provider) pruneSeen() {
	if len(p.seen) < 4096 {
		return
	}
	for ip, s := range p.seen {
		if time.Since(s.at) >= p.lastSeenTTL() {
			delete(p.seen, ip)
		}
	}
}

func (p *Provider) lastSeenTTL() time.Duration {
	if p.opts.LastSeenTTL == 0 {
		return DefaultLastSeenTTL
	}
	return p.opts.LastSeenTTL
}

// knownTakeable is takeable answered from what the provider last saw, without a read: known is false
// unless every IP was seen within the TTL either free or on an egressgw interface. Anything else (never
// seen, seen long ago, seen on an interface that is not egressgw's) is read again, and refused from there.
// IPs seen free go with AllowReassignment off, so that EC2 itself refuses one something took since.
func (p *Provider) knownTakeable(at attachment, ips []netip.Addr) (reassign, known bool) {
	if p.opts.LastSeenTTL < 0 {
		return false, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ip := range ips {
		s, ok := p.seen[ip]
		switch {
		case !ok || time.Since(s.at) >= p.lastSeenTTL() || s.f.InUse != "":
			return false, false
		case s.held && s.f.Interface != at.eni:
			reassign = true
		}
	}
	return reassign, true
}
