package azuresim

import (
	"net/http"
	"net/netip"
	"slices"
	"time"
)

// Operation states as the Azure-AsyncOperation resource reports them.
const (
	statusInProgress = "InProgress"
	statusSucceeded  = "Succeeded"
	statusFailed     = "Failed"
)

const operationsAPIVersion = "2025-05-01"

// accept applies a validated write: the NIC shows its new configuration at once (provisioningState
// Updating) and gets a new ETag, the addresses it adds are taken at once, and those it drops stay taken
// until the operation completes. With no operation latency it completes before the answer (one that is
// to fail completes at the next request, so that its failure shows in the operation's status). The caller
// holds s.mu; the returned events are to be fired after it is released.
func (s *Server) accept(n *nic, next []ipConfig) []Event {
	latency := s.operationLatency()
	op := &operation{id: s.st.newID(), nic: key(n.id), status: statusInProgress, prev: cloneConfigs(n.ipconfigs),
		next: cloneConfigs(next), failure: s.nextOpFailure(), done: s.now().Add(latency), latency: latency}
	n.ipconfigs, n.etag, n.op, n.failed = next, s.st.newETag(), op, false
	s.st.ops[op.id] = op
	s.latencies = append(s.latencies, latency)
	if latency <= 0 && op.failure == nil {
		return s.complete(op)
	}
	time.AfterFunc(latency, s.settle)
	return nil
}

// OperationLatencies returns the latency of every NIC write accepted so far, in order of acceptance:
// the part of a caller's wait that is the cloud's.
func (s *Server) OperationLatencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.latencies)
}

// settle completes the operations whose time has come and reports their changes.
func (s *Server) settle() {
	s.fireMu.Lock()
	defer s.fireMu.Unlock()
	s.mu.Lock()
	var events []Event
	now := s.now()
	for _, k := range s.st.nicOrder {
		if op := s.st.nics[k].op; op != nil && op.status == statusInProgress && !now.Before(op.done) {
			events = append(events, s.complete(op)...)
		}
	}
	s.mu.Unlock()
	s.notify(events)
}

// complete ends an operation: a failed one rolls the NIC back to what it was. The caller holds s.mu.
func (s *Server) complete(op *operation) []Event {
	n := s.st.nics[op.nic]
	if op.failure != nil {
		op.status, n.ipconfigs, n.etag, n.failed = statusFailed, cloneConfigs(op.prev), s.st.newETag(), true
		return nil
	}
	op.status = statusSucceeded
	return s.st.changes(n, op.prev, op.next)
}

// changes lists the private IPs whose place or public IP a write changed.
func (st *state) changes(n *nic, prev, next []ipConfig) []Event {
	var out []Event
	hop := primaryIP(next)
	for _, c := range next {
		i := slices.IndexFunc(prev, func(p ipConfig) bool { return p.ip == c.ip })
		if i < 0 || key(prev[i].pip) != key(c.pip) {
			out = append(out, Event{IP: c.ip, Interface: n.id, Instance: n.attachedTo, PublicIP: c.pip, NextHop: hop})
		}
	}
	for _, p := range prev {
		if !slices.ContainsFunc(next, func(c ipConfig) bool { return c.ip == p.ip }) {
			out = append(out, Event{IP: p.ip, PrevInterface: n.id})
		}
	}
	return out
}

func primaryIP(cs []ipConfig) (ip netip.Addr) {
	for _, c := range cs {
		if c.primary {
			return c.ip
		}
	}
	return ip
}

// fire reports events from a write, in order with those of completions.
func (s *Server) fire(events []Event) {
	if len(events) == 0 {
		return
	}
	s.fireMu.Lock()
	defer s.fireMu.Unlock()
	s.notify(events)
}

// notify logs and reports events; the caller holds s.fireMu.
func (s *Server) notify(events []Event) {
	for _, ev := range events {
		s.opts.Logger.Info("azuresim: IP changed", "ip", ev.IP, "nic", ev.Interface, "from", ev.PrevInterface, "publicIP", ev.PublicIP)
		if s.opts.OnChange != nil {
			s.opts.OnChange(ev)
		}
	}
}

// opHeaders is what the answers about an operation tell the client: where to poll, and when.
type opHeaders struct {
	sub, location, id string
	inProgress        bool
	retryAfter        time.Duration
}

// headersOf captures an operation's headers; the caller holds s.mu.
func (s *Server) headersOf(op *operation) *opHeaders {
	if op == nil {
		return nil
	}
	return &opHeaders{sub: s.st.sub, location: s.st.location, id: op.id, inProgress: op.status == statusInProgress, retryAfter: s.faults.pollRetryAfter}
}

// set points the client at the operation's status (Azure-AsyncOperation) and result (Location)
// resources, with the Retry-After the Network resource provider sends while it runs.
func (h *opHeaders) set(w http.ResponseWriter, r *http.Request) {
	if h == nil {
		return
	}
	base := "https://" + r.Host + "/subscriptions/" + h.sub + "/providers/Microsoft.Network/locations/" + h.location
	w.Header().Set("Azure-AsyncOperation", base+"/operations/"+h.id+"?api-version="+operationsAPIVersion)
	w.Header().Set("Location", base+"/operationResults/"+h.id+"?api-version="+operationsAPIVersion)
	if h.inProgress && h.retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(h.retryAfter))
	}
}

type operationStatus struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	StartTime string     `json:"startTime,omitempty"`
	Error     *errorInfo `json:"error,omitempty"`
}

type errorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// getOperation answers the Azure-AsyncOperation status resource.
func (s *Server) getOperation(w http.ResponseWriter, rt route) *APIError {
	s.mu.Lock()
	op, ok := s.st.ops[rt.names[len(rt.names)-1]]
	var body operationStatus
	if ok {
		body = operationStatus{Name: op.id, Status: op.status}
		if op.failure != nil && op.status == statusFailed {
			body.Error = &errorInfo{Code: op.failure.Code, Message: op.failure.Message}
		}
	}
	retryAfter := s.faults.pollRetryAfter
	s.mu.Unlock()
	if !ok {
		return apiErr(http.StatusNotFound, CodeNotFound, "Operation %s not found.", rt.id)
	}
	if body.Status == statusInProgress && retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(retryAfter))
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// getOperationResult answers the Location resource: 202 while the operation runs, then the NIC or the
// operation's error.
func (s *Server) getOperationResult(w http.ResponseWriter, r *http.Request, rt route) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.st.ops[rt.names[len(rt.names)-1]]
	switch {
	case !ok:
		return apiErr(http.StatusNotFound, CodeNotFound, "Operation %s not found.", rt.id)
	case op.status == statusInProgress:
		s.headersOf(op).set(w, r)
		w.WriteHeader(http.StatusAccepted)
		return nil
	case op.status == statusFailed:
		return &APIError{Status: op.failure.Status, Code: op.failure.Code, Message: op.failure.Message}
	}
	writeJSON(w, http.StatusOK, s.st.renderNIC(s.st.nics[op.nic]))
	return nil
}
