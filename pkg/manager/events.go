package manager

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// warnGateway records a Warning Event on a gateway. Caller holds c.mu.
func (c *Controller) warnGateway(gateway, reason, action, format string, args ...any) {
	if gw := c.view.gateways[gateway]; gw != nil {
		c.events.Eventf(gw, nil, corev1.EventTypeWarning, reason, action, format, args...)
	}
	c.log.Info("warning", "gateway", gateway, "reason", reason, "message", fmt.Sprintf(format, args...))
}

// reportMove records the outcome of a move on the gateways of its IPs, as an Event and a log line.
// Caller holds c.mu.
func (c *Controller) reportMove(m *moveOp, rec MoveRecord) {
	type group struct{ ips, why []string }
	byGateway := map[string]*group{}
	for i, ip := range m.ips {
		st := c.ips[ip]
		if st == nil || st.gateway == "" {
			continue
		}
		g := byGateway[st.gateway]
		if g == nil {
			g = &group{}
			byGateway[st.gateway] = g
		}
		g.ips = append(g.ips, ip.String())
		if !slices.Contains(g.why, m.why[i]) {
			g.why = append(g.why, m.why[i])
		}
	}
	took := rec.Done.Sub(rec.Started).Round(time.Millisecond)
	for name, g := range byGateway {
		why := strings.Join(g.why, "; ")
		gw := c.view.gateways[name]
		if rec.Err != nil {
			c.log.Error(rec.Err, "move failed", "gateway", name, "ips", g.ips, "to", m.to, "why", why)
			if gw != nil {
				c.events.Eventf(gw, nil, corev1.EventTypeWarning, errorCode(rec.Err), "Move",
					"moving %v to %s (%s) failed: %v", g.ips, m.to, why, rec.Err)
			}
			continue
		}
		c.log.Info("moved", "gateway", name, "ips", g.ips, "to", m.to, "why", why, "took", took)
		if gw != nil {
			c.events.Eventf(gw, nil, corev1.EventTypeNormal, "Moved", "Move", "moved %v to %s in %s: %s", g.ips, m.to, took, why)
		}
	}
}
