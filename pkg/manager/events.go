package manager

import (
	"fmt"
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
	byGateway := map[string][]string{}
	for _, ip := range m.ips {
		if st := c.ips[ip]; st != nil && st.gateway != "" {
			byGateway[st.gateway] = append(byGateway[st.gateway], ip.String())
		}
	}
	took := rec.Done.Sub(rec.Started).Round(time.Millisecond)
	for name, ips := range byGateway {
		gw := c.view.gateways[name]
		if rec.Err != nil {
			c.log.Error(rec.Err, "move failed", "gateway", name, "ips", ips, "to", m.to)
			if gw != nil {
				c.events.Eventf(gw, nil, corev1.EventTypeWarning, errorCode(rec.Err), "Move",
					"moving %v to %s failed: %v", ips, m.to, rec.Err)
			}
			continue
		}
		from := rec.From
		if from == "" {
			from = "nowhere"
		}
		c.log.Info("moved", "gateway", name, "ips", ips, "from", from, "to", m.to, "took", took)
		if gw != nil {
			c.events.Eventf(gw, nil, corev1.EventTypeNormal, "Moved", "Move", "moved %v from %s to %s in %s", ips, from, m.to, took)
		}
	}
}
