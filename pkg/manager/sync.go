package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
	"github.com/egressgw/egressgw/providers"
)

// view is what the last sync derived from the cluster, kept for the status writes of the cloud
// operations that run between syncs. Guarded by Controller.mu.
type view struct {
	gateways map[string]*egressgwv1.EgressGateway // read-only cache objects, for Events
	ips      map[string]gatewayIPs                // the gateways' IPs, parsed
	nodes    map[string]*corev1.Node              // read-only cache objects, for Events
	nodeWhy  map[string]string                    // why each gateway node is ineligible; "" when eligible
	members  map[string][]string
	zones    map[string]string
	// egressIfs are the gateway nodes' dedicated egress NICs (AWS), published in status for their agents.
	egressIfs map[string]*egressgwv1.EgressInterface
	conflicts map[string]map[netip.Addr]string // per gateway, IPs another gateway owns
}

// sync is one pass of the loop: read the cluster, decide, record the intent of every move in status,
// then queue the cloud work, and report. A gateway whose object cannot be written (its finalizer, its
// status) holds up its own moves only.
func (c *Controller) sync(ctx context.Context) error {
	snap, err := c.snapshot(ctx)
	if err != nil {
		return err
	}
	unfinalized := c.ensureFinalizers(ctx, snap)
	c.prober.SetTargets(ctx, c.probeTargets(snap))
	now := time.Now()
	c.mu.Lock()
	c.trackOwners(snap, now)
	work := c.dueReads(ctx, snap, now)
	in, v, recheckAt := c.placementInput(snap, c.suspectIsolation(snap), now)
	c.recordView(v)
	moves, other, retryAt := c.applyDecisions(failover.Place(in), now)
	c.syncAgainAt(ctx, recheckAt, now)
	c.syncAgainAt(ctx, retryAt, now)
	work = append(work, other...)
	work = append(work, c.startReleases(now)...)
	work = append(work, c.dueRemovals(snap, now)...)
	c.prune(snap)
	c.mu.Unlock()

	c.pushAll(work)
	// A gateway without the finalizer could be deleted with its IPs still held: none of its IPs move.
	moves = c.holdBack(moves, unfinalized)
	// No cloud call moves an IP before status says where it is going: a new leader then knows.
	statusErr := c.writeStatusesThenMove(ctx, snap, moves)
	c.recordQueue()
	var finalizerErrs []error
	for _, err := range unfinalized {
		finalizerErrs = append(finalizerErrs, err)
	}
	return errors.Join(errors.Join(finalizerErrs...), statusErr, c.writePolicyStatuses(ctx, snap), c.finishDeletions(ctx, snap))
}

func (c *Controller) pushAll(ops []op) {
	for _, o := range ops {
		c.queue.push(o)
	}
}

// abandon undoes the planned moves of a gateway's IPs whose intent could not be recorded; the next sync
// plans them again.
func (c *Controller) abandon(m *moveOp, gateway string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for i, ip := range m.ips {
		if st := c.ips[ip]; st != nil && m.gateways[i] == gateway {
			st.abandonMove("StatusWriteFailed",
				fmt.Sprintf("waiting to record the move to %s in the status of gateway %s before calling the cloud: %v", m.to, gateway, err), now)
		}
	}
}

// trackOwners gives every IP state its current owner, and creates the states of new IPs, which are
// located in the cloud before anything is decided for them. Caller holds c.mu.
func (c *Controller) trackOwners(snap *snapshot, now time.Time) {
	wanted := snap.wanted
	for ip := range c.ips {
		c.ipState(ip, wanted[ip], now)
	}
	for ip, gw := range wanted {
		c.ipState(ip, gw, now)
	}
	// A new leader learns from status which gateway an IP no spec lists any more was released for.
	for name, ips := range snap.ips {
		for _, ip := range ips.recorded {
			if st := c.ips[ip]; st != nil && st.gateway == "" && st.former == "" {
				st.former = name
			}
		}
	}
}

// placementInput turns the snapshot and the cloud's view into placement's input, and the view of the
// cluster that status shows; it changes nothing. IPs not located yet, and IPs something outside the
// cluster holds, are left out. isolated says whether the manager doubts its own probes
// (suspectIsolation). recheckAt is when the input changes by itself (a Lease going stale, a recovered
// node's guard ending): placement must run again then; zero when never. Caller holds c.mu.
func (c *Controller) placementInput(snap *snapshot, isolated bool, now time.Time) (in failover.Input, v view, recheckAt time.Time) {
	v = view{gateways: snap.gateways, ips: snap.ips, nodes: snap.nodes, nodeWhy: map[string]string{}, members: snap.members, zones: map[string]string{},
		egressIfs: map[string]*egressgwv1.EgressInterface{}, conflicts: map[string]map[netip.Addr]string{}}
	in = failover.Input{Nodes: map[string]failover.Node{}}
	for _, name := range snap.gatewayNodes {
		node := snap.nodes[name]
		n := c.placementNode(node, &v)
		recheckAt = earliest(recheckAt, c.weighProbes(&n, node, snap, isolated, now))
		in.Nodes[name] = n
	}
	for _, gw := range snap.live {
		in.Gateways = append(in.Gateways, c.placementGateway(gw, snap.ips[gw.Name].spec, snap.members[gw.Name]))
	}
	return in, v, recheckAt
}

// recordView keeps the view of this sync for the status writes, and publishes each gateway node's
// eligibility as a gauge. Caller holds c.mu.
func (c *Controller) recordView(v view) {
	c.view = v
	for name, why := range v.nodeWhy {
		c.metrics.gatewayHealthy.WithLabelValues(name).Set(boolGauge(why == ""))
		c.gauged[name] = true
	}
}

// syncAgainAt asks for a sync at t; zero asks for none.
func (c *Controller) syncAgainAt(ctx context.Context, t, now time.Time) {
	if !t.IsZero() {
		c.kickAfter(ctx, t.Sub(now))
	}
}

// earliest is the earlier of two times, zero standing for never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// placementNode is the node as placement sees it: eligible or why not, its subnet and free room. What
// status shows of the node (zone, egress interface, why it is ineligible) goes into v, the view being
// built.
func (c *Controller) placementNode(node *corev1.Node, v *view) failover.Node {
	nc := c.nodes[node.Name]
	why := ineligibility(node, c.prober.Health(node.Name).Verdict)
	if why == "" {
		why = nc.ineligibility()
	}
	n := failover.Node{Name: node.Name, Ineligible: why}
	if nc != nil && nc.read {
		n.Subnets, n.Free = []netip.Prefix{nc.info.Subnet}, nc.info.Free()
		v.zones[node.Name] = nc.info.Zone
		v.egressIfs[node.Name] = egressInterfaceOf(nc.info)
	}
	if v.zones[node.Name] == "" {
		v.zones[node.Name] = node.Labels[corev1.LabelTopologyZone]
	}
	v.nodeWhy[node.Name] = why
	return n
}

// placementGateway passes on the gateway's IPs that are located and free to take. Whether an IP is
// passed does not depend on the gateway, so that an IP two gateways list reaches placement for both or
// for neither, and placement reports the conflict on the younger one.
func (c *Controller) placementGateway(gw *egressgwv1.EgressGateway, ips []netip.Addr, members []string) failover.Gateway {
	g := failover.Gateway{Name: gw.Name, Created: gw.CreationTimestamp.Time, Nodes: members, Current: map[netip.Addr]string{}}
	for _, ip := range ips {
		if st := c.ips[ip]; st.located && st.foreign == "" {
			g.IPs = append(g.IPs, ip)
			g.Current[ip] = st.currentNode()
		}
	}
	return g
}

// applyDecisions records placement's decisions in the IP states and returns the moves they need,
// grouped by target node, and the other cloud operations. retryAt is the earliest time an IP waiting
// for a retry may move: placement must run again then; zero when none waits. Caller holds c.mu.
func (c *Controller) applyDecisions(decisions []failover.Decision, now time.Time) (moves []*moveOp, ops []op, retryAt time.Time) {
	byTarget := map[string]*moveOp{} // see planMove
	unplaced := 0
	held := c.statusEntriesHeld()
	for _, d := range decisions {
		st := c.ips[d.IP]
		switch {
		case d.Reason == failover.ReasonIPConflict:
			c.noteConflict(d.Gateway, d.IP, d.Message)
		case st.target != "":
			// a cloud call is in flight for it; its result comes first
		case d.Node == "":
			unplaced++
			c.unplace(st, d, now)
		case !d.Moves():
			ops = append(ops, c.settle(st, d, now)...)
		case now.Before(st.retryAt):
			retryAt = earliest(retryAt, st.retryAt)
		case st.currentNode() == "" && held[st.gateway] >= maxAssignments:
			st.waitForRoom(fmt.Sprintf("waiting for room in the gateway's status, whose %d entries all name IPs the cloud holds "+
				"(IPs removed from the spec count until they are released)", maxAssignments), now)
		default:
			if st.currentNode() == "" {
				held[st.gateway]++
			}
			c.planMove(byTarget, st, d, now)
		}
	}
	c.metrics.unplaced.Set(float64(unplaced))
	moves = make([]*moveOp, 0, len(byTarget))
	for _, m := range byTarget {
		moves = append(moves, m)
	}
	return moves, ops, retryAt
}

func (c *Controller) noteConflict(gateway string, ip netip.Addr, message string) {
	if c.view.conflicts[gateway] == nil {
		c.view.conflicts[gateway] = map[netip.Addr]string{}
	}
	c.view.conflicts[gateway][ip] = message
}

func (c *Controller) unplace(st *ipState, d failover.Decision, now time.Time) {
	if st.state != egressgwv1.AssignmentUnplaced || st.reason != d.Reason {
		c.warnGateway(st.gateway, d.Reason, "Place", "cannot place %s: %s", st.ip, d.Message)
	}
	st.unplace(d.Reason, d.Message, now)
}

// settle marks an IP that stays where it is as assigned, and asks for its public IP when one is
// configured and not associated yet.
func (c *Controller) settle(st *ipState, d failover.Decision, now time.Time) []op {
	if d.Reason != "" && st.reason != d.Reason {
		c.warnGateway(st.gateway, d.Reason, "Place", "%s: %s", st.ip, d.Message)
	}
	st.settle(d.Reason, d.Message, now)
	if st.publicID == "" || st.publicOK || now.Before(st.retryAt) {
		return nil
	}
	st.target = st.node
	return []op{c.associateOperation(st)}
}

// planMove adds an IP to the move to its new node. A cloud that moves in one call gets one move per
// target node; a two-step move gets one per target and old node, so that a release hanging on a dead
// VM holds up only the IPs leaving that VM.
func (c *Controller) planMove(moves map[string]*moveOp, st *ipState, d failover.Decision, now time.Time) {
	key := d.Node
	if _, oneCall := c.provider.(providers.Mover); !oneCall {
		key += "\x00" + st.node
	}
	if st.alone {
		key += "\x00" + st.ip.String()
	}
	m := moves[key]
	if m == nil {
		m = &moveOp{to: d.Node, priority: PriorityPlacement}
		moves[key] = m
	}
	why := "new egress IP"
	if st.node != "" {
		m.priority = PriorityFailover
		why = fmt.Sprintf("leaving %s (%s)", st.node, cmp.Or(c.view.nodeWhy[st.node], "no longer a gateway node"))
		m.detectedAt = c.detectedAt[st.node]
	}
	m.add(st.ip, st.node, why, st.gateway)
	st.startMove(d.Node, why, c.brokeAt[st.node], now)
}

// startReleases starts giving back the IPs that no live gateway wants (their target set, the operations
// returned) and forgets those that nothing holds.
// Caller holds c.mu.
func (c *Controller) startReleases(now time.Time) []op {
	var ops []op
	for ip, st := range c.ips {
		switch {
		case st.gateway != "" || st.target != "" || !st.located || now.Before(st.retryAt):
			// wanted, busy, not located yet (it may be held somewhere), or waiting for a retry
		case st.node == "":
			delete(c.ips, ip)
		default:
			st.target = st.node
			ops = append(ops, c.releaseOperation(st))
		}
	}
	return ops
}

func (c *Controller) recordQueue() {
	for p, n := range c.queue.depth() {
		c.metrics.queueDepth.WithLabelValues(Priority(p).String()).Set(float64(n))
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// statusEntriesHeld counts, per gateway, the IPs its status must list because the cloud may hold them
// for it: on a node or on their way to one, or removed from its spec and not released yet. The status is
// how a new leader knows them, and it has maxAssignments entries at most. Caller holds c.mu.
func (c *Controller) statusEntriesHeld() map[string]int {
	held := map[string]int{}
	for _, st := range c.ips {
		if gw := st.statusHolder(); gw != "" {
			held[gw]++
		}
	}
	return held
}
