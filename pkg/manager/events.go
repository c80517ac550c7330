package manager

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// warnGateway records a Warning Event on a gateway. Caller holds c.mu.
func (c *Controller) warnGateway(gateway, reason, action, format string, args ...any) {
	msg := bounded(fmt.Sprintf(format, args...))
	if gw := c.view.gateways[gateway]; gw != nil {
		c.events.Eventf(gw, nil, corev1.EventTypeWarning, reason, action, "%s", msg)
	}
	c.log.Info("warning", "gateway", gateway, "reason", reason, "message", msg)
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
	// The target Node is the Event's related object. Events of the same reason and action about the same
	// object version are one series to the events API, which keeps the first note only: two moves that
	// finish before the gateway's next status write would otherwise show as one.
	var related runtime.Object
	if n := c.view.nodes[m.to]; n != nil {
		related = n
	}
	for name, g := range byGateway {
		why := strings.Join(g.why, "; ")
		gw := c.view.gateways[name]
		if rec.Err != nil {
			c.log.Error(rec.Err, "move failed", "gateway", name, "ips", g.ips, "to", m.to, "why", why)
			if gw != nil {
				c.events.Eventf(gw, related, corev1.EventTypeWarning, errorCode(rec.Err), "Move", "%s",
					bounded(fmt.Sprintf("moving %s to %s (%s) failed: %v", ipSummary(g.ips), m.to, why, rec.Err)))
			}
			continue
		}
		c.log.Info("moved", "gateway", name, "ips", g.ips, "to", m.to, "why", why, "took", took)
		if gw != nil {
			c.events.Eventf(gw, related, corev1.EventTypeNormal, "Moved", "Move", "%s",
				bounded(fmt.Sprintf("moved %s to %s in %s: %s", ipSummary(g.ips), m.to, took, why)))
		}
	}
}

// ipSummary lists up to eight IPs and counts the rest, for Events.
func ipSummary(ips []string) string {
	const shown = 8
	if len(ips) <= shown {
		return "[" + strings.Join(ips, " ") + "]"
	}
	return fmt.Sprintf("[%s and %d more]", strings.Join(ips[:shown], " "), len(ips)-shown)
}
