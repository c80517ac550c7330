package manager

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/egressgw/egressgw/providers"
)

// moveOp takes IPs to one node.
type moveOp struct {
	to         string
	ips        []netip.Addr
	from       []string // the node each IP leaves; "" when it was nowhere
	why        []string // why each IP moves
	gateways   []string // the gateway of each IP, whose status records the move's intent
	priority   Priority
	detectedAt time.Time
}

// add puts one more IP into the move.
func (m *moveOp) add(ip netip.Addr, from, why, gateway string) {
	m.ips, m.from, m.why, m.gateways = append(m.ips, ip), append(m.from, from), append(m.why, why), append(m.gateways, gateway)
}

// split divides the move into the IPs for which keep holds and the others.
func (m *moveOp) split(keep func(i int) bool) (kept, dropped *moveOp) {
	kept = &moveOp{to: m.to, priority: m.priority, detectedAt: m.detectedAt}
	dropped = &moveOp{to: m.to, priority: m.priority, detectedAt: m.detectedAt}
	for i, ip := range m.ips {
		part := dropped
		if keep(i) {
			part = kept
		}
		part.add(ip, m.from[i], m.why[i], m.gateways[i])
	}
	return kept, dropped
}

func (c *Controller) moveOperation(m *moveOp) op {
	return op{priority: m.priority, name: "move to " + m.to, run: func(ctx context.Context) { c.runMove(ctx, m) }}
}

// runMove makes the cloud call of a move whose intent sync recorded in status, and records the result
// for the next sync to write. A crash at any point leaves the intent in status and the cloud's truth for
// the next leader.
func (c *Controller) runMove(ctx context.Context, m *moveOp) {
	rec := MoveRecord{IPs: m.ips, From: strings.Join(uniqueNonEmpty(m.from), ","), To: m.to, DetectedAt: m.detectedAt, Started: time.Now()}
	err := c.cloudMove(ctx, m)
	rec.Done, rec.Err = time.Now(), err
	if ctx.Err() != nil {
		return // no longer leading: the next leader reads the cloud's truth
	}
	rec.BrokeAt = c.finishMove(m, rec)
	c.metrics.observeMove(rec)
	if c.OnMove != nil {
		c.OnMove(rec)
	}
	c.kick()
}

// cloudMove moves in one call where the cloud allows it, else releases each IP from wherever the cloud
// has it and assigns it to the new node. The whole move shares one deadline, so that a release hanging on
// a dead VM fails this move in time and holds up no other (two-step moves are one per old node, see
// planMove).
//
// The IPs of a two-step move go through their two steps side by side: each IP is released before it is
// assigned (never on two NICs), and the provider folds the edits that wait on one NIC at the same moment
// into one write (providers/internal/coalesce). Done one after the other, two IPs leaving a dead node cost
// four operations of 2-10 s each in a row instead of two (the lab measured 15-19 s against 7-9 s on GCP).
func (c *Controller) cloudMove(ctx context.Context, m *moveOp) error {
	ctx, cancel := cloudContext(ctx, c.cfg.CloudTimeout)
	defer cancel()
	to, err := c.providerNodeNamed(ctx, m.to)
	if err != nil {
		return err
	}
	if mover, ok := c.provider.(providers.Mover); ok {
		return c.call(ctx, "Move", func(ctx context.Context) error { return mover.Move(ctx, to, m.ips) })
	}
	errs := make([]error, len(m.ips))
	var wg sync.WaitGroup
	for i, ip := range m.ips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.moveInTwoSteps(ctx, to, m.to, ip, m.from[i] != "")
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// moveInTwoSteps releases ip from wherever the cloud has it (when it was on a node) and assigns it to to.
func (c *Controller) moveInTwoSteps(ctx context.Context, to providers.Node, toName string, ip netip.Addr, held bool) error {
	if held {
		if err := c.releaseHeld(ctx, toName, ip); err != nil {
			return err
		}
	}
	a := providers.Assignment{IP: ip, PublicIP: c.publicIDOf(ip)}
	return c.call(ctx, "Assign", func(ctx context.Context) error { return c.provider.Assign(ctx, to, a) })
}

// releaseHeld releases ip from wherever the cloud has it now, unless that is node keep. It goes by the
// cloud's Location, not by a Node object: the old node's Node may be deleted, or its name may now stand
// for another instance. An IP the cloud holds nowhere is free; an old instance that is gone (ErrNotFound)
// took the IP with it. Either way the caller may assign: Assign still refuses an IP held elsewhere, so the
// IP never lands on two NICs.
func (c *Controller) releaseHeld(ctx context.Context, keep string, ip netip.Addr) error {
	locs, err := c.locate(ctx, []netip.Addr{ip})
	if err != nil {
		return fmt.Errorf("locating %s before releasing it: %w", ip, err)
	}
	loc, held := locs[ip]
	if !held {
		return nil
	}
	name, old, err := c.holderOf(loc)
	if err != nil || name == keep {
		return err
	}
	err = c.call(ctx, "Release", func(ctx context.Context) error {
		return c.provider.Release(ctx, old, providers.Assignment{IP: ip})
	})
	if errors.Is(err, providers.ErrNotFound) {
		c.log.Info("the instance that held the egress IP is gone, and the IP with it", "ip", ip, "node", name, "instance", loc.Instance)
		return nil
	}
	if err != nil {
		return fmt.Errorf("releasing %s from %s (instance %s): %w", ip, name, loc.Instance, err)
	}
	return nil
}

// holderOf names the node whose instance holds an IP, as the provider needs it: from the cloud's record
// the manager keeps of every node it described, which outlives the Node object, else (a new leader, an
// instance whose Node was deleted before this leader described it) as the provider names the instance.
// An IP on a NIC that is not egressgw's, or a NIC's primary address, is not taken from.
func (c *Controller) holderOf(loc providers.Location) (string, providers.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if loc.InUse != "" {
		return "", providers.Node{}, fmt.Errorf("%s, and is not taken from it: %w", loc.InUse, providers.ErrIPInUse)
	}
	if loc.Primary {
		return "", providers.Node{}, fmt.Errorf("%s is the primary address of instance %s: %w", loc.IP, loc.Instance, providers.ErrAssignedElsewhere)
	}
	for name, nc := range c.nodes {
		if loc.Instance != "" && nc.info.Instance == loc.Instance && nc.node.ProviderID != "" {
			return name, nc.node, nil
		}
	}
	if loc.Instance == "" {
		return "", providers.Node{}, fmt.Errorf("%s is held by %s, and is not taken from it: %w", loc.IP, describeHolder(loc), providers.ErrAssignedElsewhere)
	}
	node, err := c.provider.InstanceNode(loc.Instance)
	if err != nil {
		return "", providers.Node{}, fmt.Errorf("%s is held by %s, which the provider cannot name, and is not taken from it: %w: %w",
			loc.IP, describeHolder(loc), err, providers.ErrAssignedElsewhere)
	}
	return strayName(loc.Instance), node, nil
}

// call runs one provider call under the cloud timeout and records its latency and errors.
func (c *Controller) call(ctx context.Context, method string, f func(context.Context) error) error {
	if err := c.fence(); err != nil {
		return err
	}
	ctx, cancel := cloudContext(ctx, c.cfg.CloudTimeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	c.metrics.observeCloud(method, start, err)
	return err
}

// finishMove records the outcome in the IP states and returns when the failed node last answered.
func (c *Controller) finishMove(m *moveOp, rec MoveRecord) (brokeAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for i, ip := range m.ips {
		st := c.ips[ip]
		if st == nil {
			continue
		}
		if !st.brokeAt.IsZero() {
			brokeAt = st.brokeAt
		}
		if rec.Err != nil {
			c.moveFailed(st, m, rec.Err, now)
			continue
		}
		c.moveCapacity(ip, m.from[i], m.to)
		st.moved(m.to, now)
	}
	c.reportMove(m, rec)
	if rec.Err != nil {
		c.distrustCloudView(m.to, m.ips, rec.Err)
	}
	return brokeAt
}

// moveFailed records a failed move of one of the move's IPs. When the cloud refused a batch (not a
// throttle or an outage, which any batch meets alike), one IP of it may be the cause: every IP of the
// batch is tried again soon in a call of its own, so that the others go and the culprit is named.
func (c *Controller) moveFailed(st *ipState, m *moveOp, err error, now time.Time) {
	if len(m.ips) > 1 && refusal(err) {
		st.splitOff(c.cfg.RetryMin, errorCode(err),
			fmt.Sprintf("the cloud refused the move of %d IPs to %s; retrying each on its own: %v", len(m.ips), m.to, err), now)
		return
	}
	what := fmt.Sprintf("moving to %s failed", m.to)
	if st.alone {
		what = fmt.Sprintf("the cloud refuses %s on its own, moving to %s", st.ip, m.to)
	}
	c.retryLater(st, err, what, now)
}

// refusal tells an answer about the request's content (an IP the cloud will not take, no room for all)
// from one about the cloud's state (throttled, unavailable, timed out).
func refusal(err error) bool {
	for _, e := range []error{providers.ErrPermanent, providers.ErrOutsideSubnet, providers.ErrAssignedElsewhere, providers.ErrCapacityExhausted} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// retryLater sets an IP back to Pending with the error and the time of the next attempt.
func (c *Controller) retryLater(st *ipState, err error, what string, now time.Time) {
	st.failures++
	wait := backoff(c.cfg.RetryMin, c.cfg.RetryMax, st.failures-1)
	if errors.Is(err, providers.ErrPermanent) {
		wait = c.cfg.RetryMax // retrying soon will not help; the message says what to change
	}
	st.retryAfter(wait, errorCode(err),
		fmt.Sprintf("%s (attempt %d, next in %s): %v", what, st.failures, wait.Round(time.Millisecond), err), now)
}

// distrustCloudView makes the next syncs read again what a failed call may have changed or shown to be
// wrong: where its IPs are (those only: a full Locate after every failure would spend the account's
// shared Describe budget under sustained failures), and the target node's room and subnet.
func (c *Controller) distrustCloudView(node string, ips []netip.Addr, err error) {
	for _, ip := range ips {
		c.relocate[ip] = true
	}
	if errors.Is(err, providers.ErrCapacityExhausted) || errors.Is(err, providers.ErrOutsideSubnet) ||
		errors.Is(err, providers.ErrNotFound) {
		if nc := c.nodes[node]; nc != nil {
			nc.reread = true
		}
	}
}

func (c *Controller) moveCapacity(ip netip.Addr, from, to string) {
	if nc := c.nodes[from]; nc != nil && from != to {
		nc.removeAddress(ip)
	}
	if to != "" {
		c.nodeCloud(to).addAddress(ip)
	}
}

func (c *Controller) associateOperation(st *ipState) op {
	node, a := st.node, providers.Assignment{IP: st.ip, PublicIP: st.publicID}
	return c.ipOperation(st, PriorityPlacement, "associate "+a.PublicIP,
		func(ctx context.Context) error { return c.assign(ctx, node, a) },
		func(err error) {
			if err != nil {
				c.retryLater(st, err, fmt.Sprintf("associating public IP %s failed", a.PublicIP), time.Now())
				c.warnGateway(st.gateway, errorCode(err), "AssociatePublicIP", "%s", st.message)
				return
			}
			st.associated()
			c.relocate[st.ip] = true // read the public address back
		})
}

func (c *Controller) assign(ctx context.Context, node string, a providers.Assignment) error {
	pn, err := c.providerNodeNamed(ctx, node)
	if err != nil {
		return err
	}
	return c.call(ctx, "Assign", func(ctx context.Context) error { return c.provider.Assign(ctx, pn, a) })
}

// releaseOperation gives an IP that no gateway wants back to the cloud.
func (c *Controller) releaseOperation(st *ipState) op {
	node, ip := st.node, st.ip
	return c.ipOperation(st, PriorityBackground, "release "+ip.String(),
		func(ctx context.Context) error { return c.releaseHeld(ctx, "", ip) },
		func(err error) {
			if err != nil {
				c.retryLater(st, err, "releasing failed", time.Now())
				c.log.Error(err, "cannot release an egress IP no gateway wants", "ip", ip, "node", node)
				return
			}
			st.released(time.Now())
			c.moveCapacity(ip, node, "")
			c.log.Info("released an egress IP no gateway wants", "ip", ip, "node", node)
		})
}

// ipOperation is a cloud call for one IP whose target the caller set: after the call, done records the
// outcome under c.mu with the target cleared, and a sync follows. Once leadership is lost nothing is
// recorded: the next leader reads the cloud.
func (c *Controller) ipOperation(st *ipState, priority Priority, name string, call func(context.Context) error, done func(error)) op {
	return op{priority: priority, name: name, run: func(ctx context.Context) {
		err := call(ctx)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		st.target = ""
		done(err)
		c.mu.Unlock()
		c.kick()
	}}
}

func (c *Controller) providerNodeNamed(ctx context.Context, name string) (providers.Node, error) {
	var node corev1.Node
	if err := c.client.Get(ctx, client.ObjectKey{Name: name}, &node); err != nil {
		return providers.Node{}, fmt.Errorf("node %s: %w", name, err)
	}
	return providerNode(&node), nil
}

func (c *Controller) publicIDOf(ip netip.Addr) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.ips[ip]; st != nil {
		return st.publicID
	}
	return ""
}

func uniqueNonEmpty(s []string) []string {
	var out []string
	for _, v := range s {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
