package manager

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers"
)

// The egress NICs of clouds that give each gateway a NIC of its own (providers.Attacher, AWS's dedicated
// ENI). Every read of a gateway node's cloud view ensures its NIC, so that every gateway candidate has one
// before placement ever chooses it ("warm"): a failover then never waits for a NIC to be created. A node
// that stops being a gateway candidate (its label removed, or the Node deleted while its instance lives
// on) has its NIC removed once no egress IP is on it, which gives the instance's interface slot and the
// subnet address back to the CNI; when the instance itself goes, the cloud deletes the NIC with it.

// IneligibleNoEgressInterface is why a gateway node whose egress NIC cannot be created takes no IPs.
const IneligibleNoEgressInterface = "EgressInterfaceUnavailable"

// readNode is the cloud read of one gateway node: EnsureAttachment where the provider makes the NIC,
// else DescribeNode.
func (c *Controller) readNode(ctx context.Context, node providers.Node) (providers.NodeInfo, error) {
	start := time.Now()
	if a, ok := c.provider.(providers.Attacher); ok {
		info, err := a.EnsureAttachment(ctx, node)
		c.metrics.observeCloud("EnsureAttachment", start, err)
		return info, err
	}
	info, err := c.provider.DescribeNode(ctx, node)
	c.metrics.observeCloud("DescribeNode", start, err)
	return info, err
}

// egressInterfaceOf is what a gateway's agent needs to route SNATed traffic out of the node's dedicated
// egress NIC; nil when the NIC is the node's primary one, or the cloud did not say enough.
func egressInterfaceOf(info providers.NodeInfo) *egressgwv1.EgressInterface {
	if !info.Dedicated || info.MAC == "" || !info.PrimaryIP.Is4() || !info.Gateway.Is4() || !info.Subnet.IsValid() {
		return nil
	}
	return &egressgwv1.EgressInterface{
		MAC:     strings.ToLower(info.MAC),
		Address: netip.PrefixFrom(info.PrimaryIP, info.Subnet.Bits()).String(),
		Router:  info.Gateway.String(),
	}
}

// attachFailed tells whether a failed read was the NIC that could not be made (not the instance that is
// gone or unsupported), which is the node's reason to take no IPs.
func attachFailed(err error, attacher bool) bool {
	return attacher && err != nil && !errors.Is(err, providers.ErrNotFound) && !errors.Is(err, providers.ErrUnsupportedNode) &&
		!providers.Retryable(err)
}

// reportAttachment records a Warning Event on the node, and on every gateway it serves, when its NIC
// cannot be made, once per distinct error. Caller holds c.mu.
func (c *Controller) reportAttachment(node *corev1.Node, n *nodeCloud, err error) {
	if !attachFailed(err, n.attacher) {
		n.attachErr = ""
		return
	}
	if err.Error() == n.attachErr {
		return
	}
	n.attachErr = err.Error()
	c.events.Eventf(node, nil, corev1.EventTypeWarning, IneligibleNoEgressInterface, "EnsureAttachment",
		"cannot create or attach the node's egress interface, so it takes no egress IPs: %v", err)
	for gw, members := range c.view.members {
		if slices.Contains(members, node.Name) {
			c.warnGateway(gw, IneligibleNoEgressInterface, "EnsureAttachment", "gateway node %s has no egress interface: %v", node.Name, err)
		}
	}
}

// dueRemovals queues the removal of the egress NIC of every node that is no longer a gateway candidate
// and holds none of the tracked IPs. Caller holds c.mu.
func (c *Controller) dueRemovals(snap *snapshot, now time.Time) []op {
	a, ok := c.provider.(providers.Attacher)
	if !ok {
		return nil
	}
	var ops []op
	for name, nc := range c.nodes {
		if nc.busy || !nc.info.Dedicated || slices.Contains(snap.gatewayNodes, name) || now.Before(nc.removeAt) || c.holdsIPs(name) {
			continue
		}
		nc.busy = true
		node := nc.node
		ops = append(ops, op{priority: PriorityBackground, name: "remove the egress interface of " + name, run: func(ctx context.Context) {
			c.removeAttachment(ctx, a, name, node)
		}})
	}
	return ops
}

// holdsIPs reports whether a tracked IP is on the node or on its way there or away. Caller holds c.mu.
func (c *Controller) holdsIPs(name string) bool {
	for _, st := range c.ips {
		if st.node == name || st.target == name {
			return true
		}
	}
	return false
}

func (c *Controller) removeAttachment(ctx context.Context, a providers.Attacher, name string, node providers.Node) {
	err := c.call(ctx, "RemoveAttachment", func(ctx context.Context) error { return a.RemoveAttachment(ctx, node) })
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	nc := c.nodes[name]
	if nc == nil {
		return
	}
	nc.busy = false
	if err != nil {
		nc.removeFailures++
		nc.removeAt = time.Now().Add(backoff(c.cfg.RetryMin, c.cfg.RetryMax, nc.removeFailures-1))
		c.log.Error(err, "cannot remove the egress interface of a node that is no longer a gateway", "node", name, "retryAt", nc.removeAt)
		c.kickAfter(ctx, time.Until(nc.removeAt))
		return
	}
	c.log.Info("removed the egress interface of a node that is no longer a gateway", "node", name, "interface", nc.info.Interface)
	delete(c.nodes, name)
}

// adoptLeftovers finds, when a leader starts, the egress NICs of instances that are no gateway node now
// (the node left while no manager led), and records them so that dueRemovals removes them. A failure only
// postpones that to the next leader. Caller must not hold c.mu.
func (c *Controller) adoptLeftovers(ctx context.Context, snap *snapshot) {
	a, ok := c.provider.(providers.Attacher)
	if !ok {
		return
	}
	if c.fence() != nil {
		return
	}
	callCtx, cancel := cloudContext(ctx, c.cfg.CloudTimeout)
	defer cancel()
	start := time.Now()
	owners, err := a.Attachments(callCtx)
	c.metrics.observeCloud("Attachments", start, err)
	if err != nil {
		c.log.Error(err, "cannot list the egress interfaces; those of former gateway nodes stay for now")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	nodes := c.nodesByInstance(snap)
	for _, owner := range owners {
		name := nodes[owner.Name]
		if slices.Contains(snap.gatewayNodes, name) {
			continue
		}
		node := owner
		if n := snap.nodes[name]; n != nil {
			node = providerNode(n)
		} else {
			name = strayName(owner.Name)
		}
		if _, known := c.nodes[name]; !known {
			c.nodes[name] = &nodeCloud{node: node, info: providers.NodeInfo{Instance: owner.Name, Dedicated: true}}
			c.log.Info("found the egress interface of a node that is no gateway any more", "node", name, "instance", owner.Name)
		}
	}
}
