package manager

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/egressgw/egressgw/pkg/failover"
)

// probeTargets returns the health endpoints of the agents of every gateway node. A node without an
// InternalIP cannot be probed and keeps no verdict, which makes it ineligible.
func (c *Controller) probeTargets(snap *snapshot) []failover.Target {
	var out []failover.Target
	for _, name := range snap.gatewayNodes {
		if ip, ok := internalIP(snap.nodes[name]); ok {
			out = append(out, failover.Target{Node: name, URL: c.healthURL(ip)})
		}
	}
	return out
}

func (c *Controller) healthURL(ip netip.Addr) string {
	return fmt.Sprintf("http://%s%s", net.JoinHostPort(ip.String(), strconv.Itoa(c.cfg.AgentHealthPort)), c.cfg.AgentHealthPath)
}

func internalIP(node *corev1.Node) (netip.Addr, bool) {
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

func (c *Controller) allProbed(targets []failover.Target) bool {
	for _, t := range targets {
		if c.prober.Verdict(t.Node) == failover.Unknown {
			return false
		}
	}
	return true
}
