package manager

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
	"github.com/egressgw/egressgw/providers"
)

// recover rebuilds the leader's knowledge before it acts: the cloud's view of every gateway node, where
// the cloud has every IP any gateway names or named, and a first verdict on every gateway's agent.
// Nothing in the previous leader's status is trusted: a crash may have left it anywhere.
func (c *Controller) recover(ctx context.Context) error {
	snap, err := c.snapshot(ctx)
	if err != nil {
		return err
	}
	targets := c.probeTargets(snap)
	c.prober.SetTargets(ctx, targets)
	c.describeNodes(ctx, snap, snap.gatewayNodes)
	c.adoptLeftovers(ctx, snap)
	ips := snap.knownIPs()
	readAt := time.Now()
	locs, err := c.locateUntilDone(ctx, ips)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.applyLocations(snap, ips, locs, readAt)
	c.lastLocate = readAt
	c.mu.Unlock()
	c.waitForVerdicts(ctx, targets)
	return nil
}

// describeNodes reads the cloud's view of nodes, a few at a time, and waits for all of them.
func (c *Controller) describeNodes(ctx context.Context, snap *snapshot, names []string) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, c.cfg.CloudConcurrency)
	for _, name := range names {
		node := snap.nodes[name]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c.describe(ctx, node)
		})
	}
	wg.Wait()
}

// locateUntilDone retries Locate until it succeeds: acting without knowing where the IPs are could put
// an IP on a second node.
func (c *Controller) locateUntilDone(ctx context.Context, ips []netip.Addr) (map[netip.Addr]providers.Location, error) {
	for attempt := 0; ; attempt++ {
		locs, err := c.locate(ctx, ips)
		if err == nil {
			return locs, nil
		}
		c.log.Error(err, "cannot read where the cloud has the egress IPs; retrying", "attempt", attempt)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff(c.cfg.RetryMin, c.cfg.RetryMax, attempt)):
		}
	}
}

func (c *Controller) locate(ctx context.Context, ips []netip.Addr) (map[netip.Addr]providers.Location, error) {
	if len(ips) == 0 {
		return nil, nil
	}
	if err := c.fence(); err != nil {
		return nil, err
	}
	ctx, cancel := cloudContext(ctx, c.cfg.CloudTimeout)
	defer cancel()
	start := time.Now()
	locs, err := c.provider.Locate(ctx, ips)
	c.metrics.observeCloud("Locate", start, err)
	return locs, err
}

// applyLocations records where the cloud has ips. Caller holds c.mu.
// readAt is when the read started.
func (c *Controller) applyLocations(snap *snapshot, ips []netip.Addr, locs map[netip.Addr]providers.Location, readAt time.Time) {
	wanted := snap.wanted
	for _, ip := range ips {
		st := c.ipState(ip, wanted[ip], readAt)
		if st.target != "" || st.confirmedAt.After(readAt.Add(-c.cfg.CloudSettle)) {
			continue // our own call is in flight or just confirmed: fresher than this read
		}
		loc, held := locs[ip]
		st.located = true
		st.node, st.foreign, st.publicIP, st.publicOK = "", "", netip.Addr{}, false
		if !held {
			continue
		}
		st.publicIP = loc.PublicIP
		st.publicOK = st.publicID != "" && loc.PublicIPID == st.publicID
		if loc.Primary {
			st.foreign = fmt.Sprintf("it is the primary address of instance %s", loc.Instance)
			continue
		}
		if st.node = c.nodeOfInstance(snap, loc.Instance); st.node == "" {
			st.foreign = fmt.Sprintf("it is held by %s, which is not a node of this cluster", describeHolder(loc))
		}
	}
}

// ipState returns the state of ip, creating it for an IP seen for the first time. gw may be nil for an
// IP no live gateway wants any more. Caller holds c.mu.
func (c *Controller) ipState(ip netip.Addr, gw *egressgwv1.EgressGateway, now time.Time) *ipState {
	st := c.ips[ip]
	if st == nil {
		st = &ipState{ip: ip, state: egressgwv1.AssignmentPending, since: now}
		c.ips[ip] = st
	}
	if gw == nil && st.gateway != "" {
		st.former = st.gateway // removed from its spec: its status lists it until it is released
	}
	st.gateway, st.publicID = "", ""
	if gw != nil {
		st.gateway, st.former = gw.Name, ""
		st.publicID = publicIDOf(gw, ip)
	}
	return st
}

func publicIDOf(gw *egressgwv1.EgressGateway, ip netip.Addr) string {
	for _, e := range gw.Spec.EgressIPs {
		if e.IP == ip.String() {
			return e.PublicIP
		}
	}
	return ""
}

// nodeOfInstance finds the cluster node of a cloud instance: first among the nodes the cloud described,
// then by the providerID, which ends with the instance's name on every supported cloud.
func (c *Controller) nodeOfInstance(snap *snapshot, instance string) string {
	if instance == "" {
		return ""
	}
	for name, n := range c.nodes {
		if n.info.Instance == instance {
			return name
		}
	}
	for name, n := range snap.nodes {
		if strings.HasSuffix(n.Spec.ProviderID, "/"+instance) {
			return name
		}
	}
	return ""
}

func describeHolder(loc providers.Location) string {
	if loc.Instance == "" {
		return "network interface " + loc.Interface + " (not attached to an instance)"
	}
	return "instance " + loc.Instance
}

// waitForVerdicts waits, at most StartupProbeWait, until every gateway has a first health verdict.
func (c *Controller) waitForVerdicts(ctx context.Context, targets []failover.Target) {
	deadline := time.Now().Add(c.cfg.StartupProbeWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if c.allProbed(targets) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describe reads the cloud's view of one node (ensuring its egress NIC, see attachments.go) and records it.
func (c *Controller) describe(ctx context.Context, node *corev1.Node) {
	if c.fence() != nil {
		return // a stale leader's view is of no use; the busy flag dies with this leader's state
	}
	callCtx, cancel := cloudContext(ctx, c.cfg.CloudTimeout)
	defer cancel()
	pn := providerNode(node)
	info, err := c.readNode(callCtx, pn)
	if ctx.Err() != nil {
		return // no longer leading: the answer is of no use
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeCloud(node.Name)
	_, n.attacher = c.provider.(providers.Attacher)
	n.busy, n.at, n.err, n.node = false, time.Now(), err, pn
	c.reportAttachment(node, n, err)
	if err == nil {
		n.info, n.read = info, true
	} else {
		c.log.Error(err, "cannot read the node's cloud instance", "node", node.Name, "providerID", node.Spec.ProviderID)
	}
}

// nodeCloud returns the cloud record of a node, creating it. Caller holds c.mu.
func (c *Controller) nodeCloud(name string) *nodeCloud {
	n := c.nodes[name]
	if n == nil {
		n = &nodeCloud{}
		c.nodes[name] = n
	}
	return n
}

// providerNode is how providers see a Kubernetes node.
func providerNode(node *corev1.Node) providers.Node {
	pn := providers.Node{Name: node.Name, ProviderID: node.Spec.ProviderID}
	for _, a := range node.Status.Addresses {
		if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == corev1.NodeInternalIP {
			pn.Addresses = append(pn.Addresses, ip)
		}
	}
	return pn
}

// backoff is exponential from lo to hi with up to 50% jitter subtracted, so that retries of many IPs
// spread out instead of arriving at the cloud together.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo << min(attempt, 20)
	if d <= 0 || d > hi {
		d = hi
	}
	return d - time.Duration(rand.Int64N(int64(d)/2+1))
}
