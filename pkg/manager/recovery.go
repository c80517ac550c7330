package manager

import (
	"context"
	"net/netip"
	"sync"
	"time"

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
		case <-time.After(c.nextAttempt(attempt+1, retryTransient)):
		}
	}
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
