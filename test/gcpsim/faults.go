package gcpsim

import (
	"github.com/egressgw/egressgw/test/simkit"
	"math/rand/v2"
	"net/http"
	"time"
)

// Rate quota groups: Compute Engine meters API requests per project and minute in separate quotas for
// reads, writes and operation reads.
const (
	QuotaRead       = "read"
	QuotaWrite      = "write"
	QuotaOperations = "operations"
)

// quotaGroup is the rate quota each method counts against.
var quotaGroup = map[string]string{
	"instances.get": QuotaRead, "instances.aggregatedList": QuotaRead, "subnetworks.get": QuotaRead,
	"instances.updateNetworkInterface": QuotaWrite,
	"zoneOperations.get":               QuotaOperations, "zoneOperations.wait": QuotaOperations,
}

// faults are the injected misbehaviours. Guarded by Server.mu.
type faults struct {
	inject            simkit.Injections[*APIError] // by method: errors for its next calls
	quotas            map[string]*simkit.TokenBucket
	opLatency         time.Duration
	opLatencyMax      time.Duration // when above opLatency, each operation draws its latency in between
	opErrors          []string
	staleFingerprints int
	lost              simkit.Countdown     // method -> answers to replace with 503 after the request took effect
	deletions         map[string]time.Time // instance key -> when it is gone
}

func newFaults() faults {
	return faults{quotas: map[string]*simkit.TokenBucket{}, deletions: map[string]time.Time{}, lost: simkit.Countdown{}}
}

// InjectError makes the next n calls of method (every method when "") fail with this HTTP status and
// reason before they change anything; errors injected earlier fire first.
func (s *Server) InjectError(method string, status int, reason string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := "Injected by the simulator."
	if reason == ReasonRateLimitExceeded {
		msg = "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'compute.googleapis.com'."
	}
	s.faults.inject.Add(method, apiErr(status, reason, "%s", msg), n)
}

// Throttle makes the next n calls of method (every method when "") fail with 429 rateLimitExceeded.
func (s *Server) Throttle(method string, n int) {
	s.InjectError(method, http.StatusTooManyRequests, ReasonRateLimitExceeded, n)
}

// LoseAnswers makes the next n calls of method take effect and then answer 503, as when a response is
// lost on the way: a client that retries without the same requestId would apply its change twice.
func (s *Server) LoseAnswers(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.lost[method] += n
}

// ClearFaults removes injected request errors and operation errors that have not fired yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.inject.Clear()
	s.faults.opErrors = nil
	s.faults.staleFingerprints = 0
	s.faults.lost = simkit.Countdown{}
}

// SetRateQuota meters a quota group (QuotaRead, QuotaWrite, QuotaOperations) at perMinute requests,
// answering 403 rateLimitExceeded beyond it as Compute Engine does; 0 removes the quota.
func (s *Server) SetRateQuota(group string, perMinute int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perMinute <= 0 {
		delete(s.faults.quotas, group)
		return
	}
	// A per-minute quota is a bucket of the minute's requests, refilled evenly over the minute.
	s.faults.quotas[group] = simkit.NewTokenBucket(simkit.Bucket{Capacity: float64(perMinute), RefillPerSecond: float64(perMinute) / 60})
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.latency.Set(d)
}

// SetOperationLatency makes operations started from now on take d from insertion to DONE (PENDING for
// the first tenth, RUNNING after); 0 makes them DONE in the answer that starts them.
func (s *Server) SetOperationLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.opLatency, s.faults.opLatencyMax = d, 0
}

// SetOperationLatencyRange makes each operation started from now on take a latency drawn uniformly from
// [lo, hi] (Compute Engine's NIC updates: about 2-5s).
func (s *Server) SetOperationLatencyRange(lo, hi time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.opLatency, s.faults.opLatencyMax = lo, hi
}

// operationLatency is the latency of a new operation. The caller holds s.mu.
func (s *Server) operationLatency() time.Duration {
	f := s.faults
	if f.opLatencyMax <= f.opLatency {
		return f.opLatency
	}
	return f.opLatency + rand.N(f.opLatencyMax-f.opLatency+1)
}

// FailOperations makes the next operations to complete end with these error codes (one each), without
// their effect.
func (s *Server) FailOperations(codes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.opErrors = append(s.faults.opErrors, codes...)
}

// StaleFingerprints makes the next n updateNetworkInterface requests meet a NIC that another writer has
// just changed (its fingerprint is new), so they get 412 conditionNotMet.
func (s *Server) StaleFingerprints(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.staleFingerprints += n
}

// SetHung makes the operations of an instance stay RUNNING (hung = true) until it is set false again.
func (s *Server) SetHung(zone, name string, hung bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.st.instances[zone+"/"+name]; in != nil {
		in.hung = hung
	}
}

// DeleteInstance starts deleting an instance: it is STOPPING at once, its operations stop progressing,
// and after d it is gone with its addresses (its pending operations then fail with RESOURCE_NOT_FOUND).
func (s *Server) DeleteInstance(zone, name string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := zone + "/" + name
	in := s.st.instances[key]
	if in == nil {
		return
	}
	in.status, in.hung, in.deleteWhenOperationsDone = StatusStopping, true, true
	s.faults.deletions[key] = s.now().Add(d)
	s.settle()
}

// fault returns the error a request meets before it is served: an injected one, or a rate quota. The
// caller holds s.mu.
func (s *Server) fault(method string) *APIError {
	if aerr, ok := s.faults.inject.Next(method); ok {
		return aerr
	}
	if b := s.faults.quotas[quotaGroup[method]]; b != nil && !b.Allow(s.now()) {
		return apiErr(http.StatusForbidden, ReasonRateLimitExceeded,
			"Quota exceeded for quota metric '%s requests' and limit '%s requests per minute' of service 'compute.googleapis.com'.", quotaGroup[method], quotaGroup[method])
	}
	return nil
}
