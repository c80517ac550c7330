package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
)

// Datapath programs one node's kernel. It is namespace-agnostic: every netlink call goes through nl
// and every tool runs through exec, so the agent points both at the host and tests at a namespace.
// Its methods are safe for concurrent use (they serialise).
type Datapath struct {
	cfg  Config
	nl   *netlink.Handle
	exec Exec
	log  *slog.Logger

	mu      sync.Mutex
	last    *kernelState // what the last successful Apply or Update left, for Update's fast path
	link    netlink.Link
	applied basis // the devices the last Apply set up, which Update's fast path relies on
}

// basis is what the last Apply built on: when any of it changed, Update's fast path would program
// stale devices, so it takes the full path instead.
type basis struct {
	links              links
	egress             *EgressLink
	nodeIP             netip.Addr
	uplinkIndex, upMTU int
}

// Changes counts what an Apply, Update or Uninstall changed in the kernel; all zero means the kernel
// already matched.
type Changes struct {
	Link, Sysctls, Peers, Routing, SetOps, IptablesTables, ConntrackEntries int
	// Nftables counts the chains of egressgw's nftables table written or deleted, and the table itself
	// when it is created or deleted. SetOps counts its sets created or deleted and members added or
	// deleted (and ipsets of an earlier version destroyed).
	Nftables int
}

// Total is the number of changes of every kind.
func (c Changes) Total() int {
	return c.Link + c.Sysctls + c.Peers + c.Routing + c.SetOps + c.IptablesTables + c.ConntrackEntries + c.Nftables
}

// New validates cfg and returns a Datapath that programs the namespace nl and exec point into.
func New(cfg Config, nl *netlink.Handle, exec Exec, log *slog.Logger) (*Datapath, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid datapath configuration: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Datapath{cfg: cfg, nl: nl, exec: exec, log: log.With("component", "datapath")}, nil
}

// Apply makes the kernel match want, reading the kernel first: it creates what is missing, repairs what
// differs and removes what is ours but no longer wanted, touching nothing that is not ours. It is
// idempotent (a second call changes nothing) and completes a node left half-programmed by a crash.
// Order keeps traffic safe: peers and routes exist before a rule or mark can send packets to them, and
// marks and SNAT rules go before the routes and sets they use. When an egress IP stops being held here,
// its conntrack entries are deleted after its SNAT rules.
func (dp *Datapath) Apply(ctx context.Context, want *Desired) (Changes, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	return dp.apply(ctx, want)
}

func (dp *Datapath) apply(ctx context.Context, want *Desired) (Changes, error) {
	dp.last = nil
	var ch Changes
	uplink, err := dp.uplink(want.NodeIP)
	if err != nil {
		return ch, err
	}
	wantLink := dp.wantLink(uplink, want.NodeIP)
	link, n, err := dp.ensureLink(wantLink)
	if ch.Link = n; err != nil {
		return ch, err
	}
	n, err = dp.ensureAddress(link, want.NodeIP)
	if ch.Link += n; err != nil {
		return ch, err
	}
	egress, n, err := dp.ensureEgressLink(want.Egress)
	if ch.Link += n; err != nil {
		return ch, err
	}
	if ch.Sysctls, err = dp.ensureSysctls(ctx, egress); err != nil {
		return ch, err
	}
	have, err := dp.observe(ctx, link)
	if err != nil {
		return ch, err
	}
	l := links{mtu: wantLink.MTU}
	if egress != nil {
		l.egressIfindex = egress.Attrs().Index
	}
	target := render(want, dp.cfg, l)
	err = dp.converge(ctx, link, have, target, &ch)
	dp.remember(link, target, err)
	dp.applied = basis{links: l, egress: want.Egress, nodeIP: want.NodeIP,
		uplinkIndex: uplink.Attrs().Index, upMTU: uplink.Attrs().MTU}
	return ch, err
}

// Update is Apply's fast path for a node this Datapath has programmed: it diffs want against what the
// last Apply or Update left instead of reading the kernel, so adding or removing a pod costs one small
// nft transaction (`add element` or `delete element`) and a netlink call or two. Without a previous
// success, or when what the last Apply built on changed (the node IP, the uplink or its MTU, the tunnel
// device, the egress interface), it takes Apply's full path; so it does when the fast path fails (the
// kernel was changed behind its back, and a delete of a member that is gone fails the transaction).
// The agent calls Update on every change and Apply periodically, which repairs anything changed behind
// its back.
func (dp *Datapath) Update(ctx context.Context, want *Desired) (Changes, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	last, link := dp.last, dp.link
	if last == nil || !dp.basisHolds(link, want) {
		return dp.apply(ctx, want)
	}
	var ch Changes
	target := render(want, dp.cfg, dp.applied.links)
	err := dp.converge(ctx, link, last, target, &ch)
	dp.remember(link, target, err)
	if err != nil {
		dp.log.Info("fast path failed; reading the kernel and applying in full", "err", err)
		full, err := dp.apply(ctx, want)
		return addChanges(ch, full), err
	}
	return ch, nil
}

func addChanges(a, b Changes) Changes {
	return Changes{Link: a.Link + b.Link, Sysctls: a.Sysctls + b.Sysctls, Peers: a.Peers + b.Peers,
		Routing: a.Routing + b.Routing, SetOps: a.SetOps + b.SetOps, IptablesTables: a.IptablesTables + b.IptablesTables,
		ConntrackEntries: a.ConntrackEntries + b.ConntrackEntries, Nftables: a.Nftables + b.Nftables}
}

// basisHolds checks, with two netlink reads, that the devices the last Apply set up are still as it
// left them and that want asks for the same node IP and egress interface.
func (dp *Datapath) basisHolds(link netlink.Link, want *Desired) bool {
	b := dp.applied
	if want.NodeIP != b.nodeIP || !sameEgressLink(b.egress, want.Egress) {
		return false
	}
	up, err := dp.nl.LinkByIndex(b.uplinkIndex)
	if err != nil || up.Attrs().MTU != b.upMTU {
		return false
	}
	tun, err := dp.nl.LinkByIndex(link.Attrs().Index)
	return err == nil && tun.Attrs().Name == dp.cfg.Device && tun.Attrs().MTU == b.links.mtu
}

func (dp *Datapath) remember(link netlink.Link, state *kernelState, err error) {
	dp.last, dp.link = nil, nil
	if err == nil {
		dp.last, dp.link = state, link
	}
}

// observe reads everything of ours from the kernel.
func (dp *Datapath) observe(ctx context.Context, link netlink.Link) (*kernelState, error) {
	k := newKernelState()
	if link != nil {
		if err := dp.observePeers(link, k); err != nil {
			return nil, err
		}
	}
	if err := dp.observeRouting(k, link); err != nil {
		return nil, err
	}
	if err := dp.observeNft(ctx, k); err != nil {
		return nil, err
	}
	if err := dp.observeLegacySets(ctx, k); err != nil {
		return nil, err
	}
	return k, dp.observeIptables(ctx, k)
}

// converge turns have into want in the safe order described on Apply, counting changes into ch: peers
// and routes first, then the nftables table in one transaction (sets, marks, SNAT and drops together),
// then iptables (the accept chain; the chains of an earlier version go), the old ipsets after the
// rules that used them, the routes and peers no longer needed, and the conntrack entries of released
// egress IPs last.
func (dp *Datapath) converge(ctx context.Context, link netlink.Link, have, want *kernelState, ch *Changes) error {
	steps := []func() (int, error){
		func() (int, error) { return dp.addPeers(link, have, want) },
		func() (int, error) { return dp.addRouting(link, have, want) },
		func() (int, error) { return dp.updateNft(ctx, have, want, ch) },
		func() (int, error) { return dp.updateIptables(ctx, have, want) },
		func() (int, error) { return dp.destroyLegacySets(ctx, have) },
		func() (int, error) { return dp.removeRouting(link, have, want) },
		func() (int, error) { return dp.removePeers(link, have, want) },
		func() (int, error) { return dp.releaseEgressIPs(have, want) },
	}
	counters := []*int{&ch.Peers, &ch.Routing, &ch.Nftables, &ch.IptablesTables, &ch.SetOps, &ch.Routing, &ch.Peers, &ch.ConntrackEntries}
	for i, step := range steps {
		n, err := step()
		*counters[i] += n
		if err != nil {
			return err
		}
	}
	return nil
}

// updateNft runs the table's transaction; it returns the chains written and adds the set operations
// to ch.SetOps.
func (dp *Datapath) updateNft(ctx context.Context, have, want *kernelState, ch *Changes) (int, error) {
	if changes, ok := elementOnly(have, want); ok && dp.canUseNetlink() {
		if len(changes) == 0 {
			return 0, nil
		}
		if err := dp.setElements(changes); err != nil {
			return 0, err
		}
		for _, c := range changes {
			ch.SetOps += len(c.adds) + len(c.dels)
		}
		return 0, nil
	}
	script, setOps, chains := planNft(have, want)
	if err := dp.runNft(ctx, script); err != nil {
		return 0, err
	}
	ch.SetOps += setOps
	return chains, nil
}

func (dp *Datapath) updateIptables(ctx context.Context, have, want *kernelState) (int, error) {
	plan := planIptables(have, want)
	return bytes.Count(plan, []byte("COMMIT\n")), dp.restoreIptables(ctx, plan)
}

// releaseEgressIPs deletes the conntrack entries of every egress IP that have SNATs to and want does not.
func (dp *Datapath) releaseEgressIPs(have, want *kernelState) (int, error) {
	keep := heldEgressIPs(want)
	total := 0
	for ip := range heldEgressIPs(have) {
		if keep[ip] {
			continue
		}
		n, err := dp.flushConntrack(ip)
		total += int(n)
		if err != nil {
			return total, err
		}
		dp.log.Info("egress IP released", "ip", ip, "conntrackEntriesDeleted", n)
	}
	return total, nil
}

// Uninstall removes every kernel object of ours (the nftables table, the iptables accept chain and its
// jump, chains and ipsets of an earlier version, rules, routes, the device, the egress address) and
// the conntrack entries of the egress IPs we held. It touches nothing else, is idempotent, and leaves
// net.ipv4.ip_forward as it is (the node's CNI needs it). A later Apply starts from scratch.
func (dp *Datapath) Uninstall(ctx context.Context) (Changes, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	dp.last, dp.link = nil, nil
	var ch Changes
	have, err := dp.observe(ctx, nil)
	if err != nil {
		return ch, err
	}
	err = dp.converge(ctx, nil, have, newKernelState(), &ch)
	n, lerr := dp.deleteLink()
	ch.Link += n
	n, aerr := dp.removeEgressAddresses()
	ch.Link += n
	return ch, errors.Join(err, lerr, aerr)
}

// deleteLink deletes our device (and with it its neighbour and FDB entries) if it exists.
func (dp *Datapath) deleteLink() (int, error) {
	link, err := dp.nl.LinkByName(dp.cfg.Device)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if err := dp.nl.LinkDel(link); err != nil {
		return 0, fmt.Errorf("delete %s: %w", dp.cfg.Device, err)
	}
	return 1, nil
}
