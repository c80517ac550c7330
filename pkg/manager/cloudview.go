package manager

// The leader's view of the cloud in steady state: reads of where the IPs are (Locate) and of the
// gateway nodes' instances (describe), and how they are recorded.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers"
)

// locate asks the cloud where ips are, in one call under the cloud timeout.
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
	wanted, nodes := snap.wanted, c.nodesByInstance(snap)
	for _, ip := range ips {
		st := c.ipState(ip, wanted[ip], readAt)
		if st.target != "" || st.confirmedAt.After(readAt.Add(-c.cfg.CloudSettle)) {
			continue // our own call is in flight or just confirmed: fresher than this read
		}
		loc, held := locs[ip]
		switch node := nodes[loc.Instance]; {
		case !held:
			st.locatedAs(nil, "", "")
		case loc.InUse != "": // the provider says it is not egressgw's (another tool's NIC, an ambiguous IP)
			st.locatedAs(&loc, "", loc.InUse)
		case loc.Primary:
			st.locatedAs(&loc, "", fmt.Sprintf("it is the primary address of instance %s", loc.Instance))
		case node != "":
			st.locatedAs(&loc, node, "")
		default:
			stray, foreign := c.strayHolder(loc)
			st.locatedAs(&loc, stray, foreign)
		}
	}
}

// strayHolder names the holder of an egressgw IP that no node of the cluster holds, as ipState.node
// records it: an instance whose Node object was deleted while the VM runs on (an operator, an
// autoscaler that deletes the Node before the VM terminates) holds it on egressgw's own NIC, and the IP
// is taken back from "instance <id>", which placement sees as a node that is no gateway. Anything the
// manager cannot release from (a NIC attached to no instance, an instance the provider cannot name) is
// foreign: reported, never taken. Caller holds c.mu.
func (c *Controller) strayHolder(loc providers.Location) (node, foreign string) {
	if loc.Instance == "" {
		return "", fmt.Sprintf("it is held by %s, which is not a node of this cluster", describeHolder(loc))
	}
	if _, err := c.provider.InstanceNode(loc.Instance); err != nil {
		return "", fmt.Sprintf("it is held by %s, which is not a node of this cluster: %v", describeHolder(loc), err)
	}
	return strayName(loc.Instance), ""
}

// strayName is how the manager names an instance that is no node of the cluster.
func strayName(instance string) string { return "instance " + instance }

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

// nodesByInstance maps cloud instances to the cluster's nodes: every Node by the instance its providerID
// names, which only the provider can read, and the nodes the cloud described whose Node is gone (a record
// outlives its Node object, and the instance may still hold IPs). A live Node wins over a record of the
// same instance under another name (a node re-registered under a new name), so that its IPs stay. Caller
// holds c.mu.
func (c *Controller) nodesByInstance(snap *snapshot) map[string]string {
	out := make(map[string]string, len(snap.nodes)+len(c.nodes))
	for name, n := range c.nodes {
		if n.info.Instance != "" {
			out[n.info.Instance] = name
		}
	}
	for name, n := range snap.nodes {
		if instance, err := c.provider.InstanceOf(n.Spec.ProviderID); err == nil && instance != "" {
			out[instance] = name
		}
	}
	return out
}

func describeHolder(loc providers.Location) string {
	if loc.Instance == "" {
		return "network interface " + loc.Interface + " (not attached to an instance)"
	}
	return "instance " + loc.Instance
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
	n.busy, n.reread, n.at, n.err, n.node = false, false, time.Now(), err, pn
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
