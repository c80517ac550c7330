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
	verdict     Verdict
	fails       int
	successes   int
	lastOK      time.Time
	recoveredAt time.Time
}

// Health is a node's verdict and what else placement weighs: whether its last probe failed (it may be
// on its way to Unhealthy, or the start of a partition) and when it last recovered from Unhealthy.
type Health struct {
	Verdict Verdict
	// Failing says that the last probe failed.
	Failing bool
	// RecoveredAt is when the node last turned Healthy after being Unhealthy; zero if it never was.
	RecoveredAt time.Time
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
		if n.verdict == Unhealthy && n.successes >= h.SuccessThreshold {
			n.recoveredAt = at
		}
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

// Health returns the current health of a node.
func (h *Hysteresis) Health(node string) Health {
	n := h.nodes[node]
	if n == nil {
		return Health{}
	}
	return Health{Verdict: n.verdict, Failing: n.fails > 0, RecoveredAt: n.recoveredAt}
}

// Forget drops a node that is no longer probed.
func (h *Hysteresis) Forget(node string) { delete(h.nodes, node) }
