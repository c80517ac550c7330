package manager

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// dueReads queues the reads of the cloud that are due: nodes never described or described longer
// than CloudResync ago, and a Locate of new IPs or, every CloudResync, of all IPs. Reads that placement
// waits for (a new node, a new IP) go ahead of background refreshes. Caller holds c.mu.
func (c *Controller) dueReads(ctx context.Context, snap *snapshot, now time.Time) []op {
	var ops []op
	for _, name := range snap.gatewayNodes {
		nc := c.nodeCloud(name)
		if nc.busy || (!nc.reread && !nc.at.IsZero() && now.Sub(nc.at) < c.cfg.CloudResync) {
			continue
		}
		nc.busy = true
		node := snap.nodes[name].DeepCopy()
		prio := PriorityBackground
		if !nc.read {
			prio = PriorityPlacement
		}
		ops = append(ops, op{priority: prio, name: "describe " + name, run: func(ctx context.Context) {
			c.describe(ctx, node)
			c.kick()
		}})
	}
	if o, ok := c.dueLocate(ctx, now); ok {
		ops = append(ops, o)
	}
	return ops
}

// relocateEvery spaces the Locates of IPs whose calls failed, so that sustained failures cost at most
// one small read a second.
const relocateEvery = time.Second

// dueLocate queues a Locate when one is due: of the IPs never located (placement waits for them), of the
// IPs a failed call made doubtful (at most every relocateEvery), or, every CloudResync, of all IPs.
func (c *Controller) dueLocate(ctx context.Context, now time.Time) (op, bool) {
	if c.locating || now.Before(c.locateRetryAt) {
		return op{}, false
	}
	var ips []netip.Addr
	for ip, st := range c.ips {
		if !st.located {
			ips = append(ips, ip)
		}
	}
	prio := PriorityPlacement
	switch {
	case now.Sub(c.lastLocate) >= c.cfg.CloudResync:
		if len(ips) == 0 {
			prio = PriorityBackground
		}
		ips = slices.Collect(maps.Keys(c.ips))
		c.lastLocate = now
		clear(c.relocate)
	case len(c.relocate) > 0 && now.Sub(c.lastRelocate) >= relocateEvery:
		for ip := range c.relocate {
			if c.ips[ip] != nil && !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
		c.lastRelocate = now
		clear(c.relocate)
	case len(c.relocate) > 0:
		c.kickAfter(ctx, relocateEvery-now.Sub(c.lastRelocate))
	}
	if len(ips) == 0 {
		return op{}, false
	}
	c.locating = true
	return op{priority: prio, name: "locate", run: func(ctx context.Context) { c.runLocate(ctx, ips) }}, true
}

// runLocate reads where the cloud has ips and records it.
func (c *Controller) runLocate(ctx context.Context, ips []netip.Addr) {
	readAt := time.Now()
	locs, err := c.locate(ctx, ips)
	if ctx.Err() != nil {
		return
	}
	snap, serr := c.snapshot(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.locating = false
	if err == nil && serr == nil {
		c.locateFailures = 0
		c.applyLocations(snap, ips, locs, readAt)
	} else {
		c.locateFailures++
		c.locateRetryAt = time.Now().Add(c.nextAttempt(c.locateFailures, retryTransient))
		c.log.Error(errors.Join(err, serr), "cannot read where the cloud has the egress IPs", "ips", len(ips), "retryAt", c.locateRetryAt)
		c.kickAfter(ctx, time.Until(c.locateRetryAt))
	}
	c.kick()
}
