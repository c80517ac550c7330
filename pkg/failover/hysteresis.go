package failover

import "time"

// Hysteresis turns a stream of probe results per node into a health verdict that does not flap: a node
// becomes unhealthy after FailureThreshold consecutive failures and healthy again after SuccessThreshold
// consecutive successes. A node never probed has no verdict. Hysteresis is not safe for concurrent use.
type Hysteresis struct {
	FailureThreshold int
	SuccessThreshold int
	nodes            map[string]*nodeHealth
}

type nodeHealth struct {
	verdict   Verdict
	fails     int
	successes int
	lastOK    time.Time
}

// Verdict is what the probes say about a node.
type Verdict int

const (
	// Unknown: not probed enough yet to say.
	Unknown Verdict = iota
	Healthy
	Unhealthy
)

func (v Verdict) String() string {
	return [...]string{"Unknown", "Healthy", "Unhealthy"}[v]
}

// Change is a verdict that changed with the last probe.
type Change struct {
	Node    string
	Verdict Verdict
	// LastOK is the time of the last successful probe before the node became unhealthy: the time from
	// it to the failure verdict is the detection time.
	LastOK time.Time
}

// NewHysteresis returns a tracker with the given thresholds (at least 1 each).
func NewHysteresis(failures, successes int) *Hysteresis {
	return &Hysteresis{FailureThreshold: max(failures, 1), SuccessThreshold: max(successes, 1), nodes: map[string]*nodeHealth{}}
}

// Observe records one probe result and returns the change it caused, if any. The first success of a
// node never probed is enough to call it healthy: there is no flapping to guard against yet, and a new
// leader must not wait to trust the gateways that work.
func (h *Hysteresis) Observe(node string, ok bool, at time.Time) (Change, bool) {
	n := h.nodes[node]
	if n == nil {
		n = &nodeHealth{}
		h.nodes[node] = n
	}
	if ok {
		n.fails, n.lastOK = 0, at
		n.successes++
		if n.verdict == Unknown || (n.verdict == Unhealthy && n.successes >= h.SuccessThreshold) {
			return h.set(node, n, Healthy), true
		}
		return Change{}, false
	}
	n.successes = 0
	n.fails++
	if n.verdict != Unhealthy && n.fails >= h.FailureThreshold {
		return h.set(node, n, Unhealthy), true
	}
	return Change{}, false
}

func (h *Hysteresis) set(node string, n *nodeHealth, v Verdict) Change {
	n.verdict = v
	return Change{Node: node, Verdict: v, LastOK: n.lastOK}
}

// Verdict returns the current verdict of a node.
func (h *Hysteresis) Verdict(node string) Verdict {
	if n := h.nodes[node]; n != nil {
		return n.verdict
	}
	return Unknown
}

// Forget drops a node that is no longer probed.
func (h *Hysteresis) Forget(node string) { delete(h.nodes, node) }
