package azuresim

import (
	"github.com/egressgw/egressgw/test/simkit"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Bucket is a token bucket of ARM throttling: Capacity requests at once, refilled at RefillPerSecond.
type Bucket = simkit.Bucket

// ARM's limits per principal and region (Azure Resource Manager request limits, token bucket model):
// reads 250 refilled 25/s, writes 200 refilled 10/s; and the Network resource provider's own: 1000
// writes and 10000 reads per five minutes.
var (
	ARMReads     = Bucket{Capacity: 250, RefillPerSecond: 25}
	ARMWrites    = Bucket{Capacity: 200, RefillPerSecond: 10}
	NetworkWrite = Bucket{Capacity: 1000, RefillPerSecond: 1000.0 / 300}
	NetworkRead  = Bucket{Capacity: 10000, RefillPerSecond: 10000.0 / 300}
)

// Fault is an error answer to inject.
type Fault struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

// faults are the injected misbehaviours. Guarded by Server.mu.
type faults struct {
	inject         simkit.Injections[Fault] // by action: errors for its next calls
	buckets        map[string]*simkit.TokenBucket
	bucketSpecs    map[string]Bucket        // "read"/"write" (ARM, per principal), "network-read"/"network-write"
	etagRaces      map[string]int           // lower-cased NIC name -> writes that find another writer was first
	lostAnswers    simkit.Countdown         // action -> requests whose answer is lost after they were served
	opFailures     simkit.Injections[Fault] // under "": how the next accepted writes end
	opLatency      time.Duration
	opJitter       time.Duration // extra latency, uniform in [0, opJitter), drawn per operation
	pollRetryAfter time.Duration
	busyRetryAfter time.Duration
}

func newFaults() faults {
	return faults{buckets: map[string]*simkit.TokenBucket{}, etagRaces: map[string]int{}, lostAnswers: simkit.Countdown{},
		pollRetryAfter: 10 * time.Second, busyRetryAfter: time.Second}
}

// Inject makes the next n requests needing action (every request when action is "") fail with f, before
// they change anything. Actions are RBAC names, e.g. Microsoft.Network/networkInterfaces/write.
func (s *Server) Inject(action string, f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.inject.Add(action, f, n)
}

// Throttle makes the next n requests needing action fail with 429 TooManyRequests and Retry-After.
func (s *Server) Throttle(action string, n int, retryAfter time.Duration) {
	s.Inject(action, Fault{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests, RetryAfter: retryAfter,
		Message: "The request is being throttled as the limit has been reached for operation type. Please retry after the time in the Retry-After header."}, n)
}

// AnotherOperation makes the next n requests needing action fail as when another operation holds the
// resource: 409 AnotherOperationInProgress, or 429 RetryableErrorDueToAnotherOperation (both are seen).
func (s *Server) AnotherOperation(action string, n, status int, retryAfter time.Duration) {
	code := CodeAnotherOpInProgress
	if status == http.StatusTooManyRequests {
		code = CodeRetryableAnotherOp
	}
	s.Inject(action, Fault{Status: status, Code: code, RetryAfter: retryAfter,
		Message: "Operation PutNetworkInterfaceOperation on resource is in progress; retry the request after the operation completes."}, n)
}

// RaceETag makes the next n writes of the NIC named nic find that another writer changed it since they
// read it: the NIC gets a new ETag just before the write's If-Match is checked.
func (s *Server) RaceETag(nic string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.etagRaces[strings.ToLower(nic)] += n
}

// LoseAnswers makes the next n requests needing action take effect, after which the connection is cut
// before the answer: the client cannot tell it from a request that never arrived.
func (s *Server) LoseAnswers(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.lostAnswers[action] += n
}

// loseAnswer reports whether this request's answer is to be lost. The caller holds s.mu.
func (s *Server) loseAnswer(action string) bool {
	return s.faults.lostAnswers.Take(action)
}

// FailOperations makes the next n accepted NIC writes end as failed operations with code (their change
// is rolled back, as the Network resource provider does).
func (s *Server) FailOperations(code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.opFailures.Add("", Fault{Status: http.StatusInternalServerError, Code: code,
		Message: "Injected by the simulator: the operation failed."}, n)
}

// ClearFaults removes injected errors, ETag races and operation failures that have not fired yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.inject.Clear()
	s.faults.opFailures.Clear()
	s.faults.etagRaces, s.faults.lostAnswers = map[string]int{}, simkit.Countdown{}
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.latency.Set(d)
}

// SetOperationLatency makes every accepted NIC write take d to complete (0: done when accepted).
func (s *Server) SetOperationLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.opLatency = d
}

// SetOperationLatencyRange makes every accepted NIC write take a latency drawn uniformly from [lo, hi).
func (s *Server) SetOperationLatencyRange(lo, hi time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.opLatency, s.faults.opJitter = lo, max(0, hi-lo)
}

// operationLatency draws the latency of the next operation. The caller holds s.mu.
func (s *Server) operationLatency() time.Duration {
	if s.faults.opJitter <= 0 {
		return s.faults.opLatency
	}
	return s.faults.opLatency + rand.N(s.faults.opJitter)
}

// SetPollRetryAfter sets the Retry-After header of answers about operations in progress; the Network
// resource provider sends 10 seconds, the default. Zero sends none.
func (s *Server) SetPollRetryAfter(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.pollRetryAfter = d
}

// SetBuckets throttles per principal with token buckets, full at first: "read" and "write" are ARM's
// per-principal buckets, "network-read" and "network-write" the Network resource provider's. Missing
// ones do not throttle. Replaces earlier buckets.
func (s *Server) SetBuckets(b map[string]Bucket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.bucketSpecs, s.faults.buckets = b, map[string]*simkit.TokenBucket{}
}

// UseAzureBuckets throttles with ARM's and the Network resource provider's documented limits.
func (s *Server) UseAzureBuckets() {
	s.SetBuckets(map[string]Bucket{"read": ARMReads, "write": ARMWrites, "network-read": NetworkRead, "network-write": NetworkWrite})
}

// fault returns the error a request meets before it is served: an injected one, or throttling. The
// caller holds s.mu.
func (s *Server) fault(who, action, method string) *APIError {
	if f, ok := s.faults.inject.Next(action); ok {
		return &APIError{Status: f.Status, Code: f.Code, Message: f.Message, RetryAfter: f.RetryAfter}
	}
	class := "read"
	if method != http.MethodGet {
		class = "write"
	}
	names := []string{class}
	if strings.HasPrefix(action, "Microsoft.Network/") {
		names = append(names, "network-"+class)
	}
	for _, name := range names {
		if wait, ok := s.takeToken(who, name); !ok {
			return &APIError{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests, RetryAfter: wait,
				Message: "The request is being throttled as the limit has been reached for operation type - " + name + "."}
		}
	}
	return nil
}

func (s *Server) takeToken(who, name string) (time.Duration, bool) {
	spec, ok := s.faults.bucketSpecs[name]
	if !ok {
		return 0, true
	}
	k := who + "/" + name
	b := s.faults.buckets[k]
	if b == nil {
		b = simkit.NewTokenBucket(spec)
		s.faults.buckets[k] = b
	}
	ok, wait := b.Take(s.now())
	return wait, ok
}

// nextOpFailure returns the failure the next accepted write is to end with, if any. The caller holds s.mu.
func (s *Server) nextOpFailure() *APIError {
	f, ok := s.faults.opFailures.Next("")
	if !ok {
		return nil
	}
	return &APIError{Status: f.Status, Code: f.Code, Message: f.Message}
}
