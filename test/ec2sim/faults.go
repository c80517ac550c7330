package ec2sim

import (
	"strings"
	"time"
)

// Bucket is a token bucket of EC2's request throttling: Capacity requests at once, refilled at
// RefillPerSecond. EC2 keeps one bucket per account, region and action.
type Bucket struct {
	Capacity        float64
	RefillPerSecond float64
}

// AWSBuckets are the bucket sizes EC2 documents for the actions the provider calls: Assign/Unassign 100
// refilled 5/s, the generic mutating bucket (AssociateAddress, DisassociateAddress) 50 refilled 5/s, and
// filtered non-mutating Describe calls 100 refilled 20/s, CreateTags 100 refilled 10/s. UnfilteredBucket is the separate bucket of
// Describe calls with neither IDs, filters nor pagination: 50 refilled 10/s.
var (
	AWSBuckets = map[string]Bucket{
		"AssignPrivateIpAddresses":   {100, 5},
		"UnassignPrivateIpAddresses": {100, 5},
		"AssociateAddress":           {50, 5},
		"DisassociateAddress":        {50, 5},
		// The interface lifecycle draws on the generic mutating bucket's size; CreateTags has its own.
		"CreateNetworkInterface":          {50, 5},
		"AttachNetworkInterface":          {50, 5},
		"ModifyNetworkInterfaceAttribute": {50, 5},
		"DetachNetworkInterface":          {50, 5},
		"DeleteNetworkInterface":          {50, 5},
		"CreateTags":                      {100, 10},
		"DescribeInstances":               {100, 20},
		"DescribeNetworkInterfaces":       {100, 20},
		"DescribeSubnets":                 {100, 20},
		"DescribeInstanceTypes":           {100, 20},
		"DescribeAddresses":               {100, 20},
	}
	UnfilteredBucket = Bucket{50, 10}
)

// unfilteredKey names the unfiltered Describe bucket among the per-action ones.
const unfilteredKey = "unfiltered Describe"

type tokenBucket struct {
	Bucket
	tokens float64
	last   time.Time
}

// take refills the bucket for the time since the last call and takes one token if there is one.
func (b *tokenBucket) take(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.Capacity, b.tokens+now.Sub(b.last).Seconds()*b.RefillPerSecond)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// faults are the injected misbehaviours of the simulated API. Guarded by Server.mu.
type faults struct {
	buckets    map[string]*tokenBucket
	inject     map[string][]injection // action ("" for any) -> errors for its next calls, in order
	latency    time.Duration
	visibility time.Duration
}

// SetBuckets throttles each named action with its own token bucket, full at first; use AWSBuckets (and
// UnfilteredBucket under the name "unfiltered Describe") for EC2's real sizes. Actions without a bucket
// are never throttled by rate. Replaces earlier buckets.
func (s *Server) SetBuckets(buckets map[string]Bucket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.buckets = map[string]*tokenBucket{}
	for action, b := range buckets {
		s.faults.buckets[action] = &tokenBucket{Bucket: b, tokens: b.Capacity}
	}
}

// UseAWSBuckets throttles like EC2 does, with AWSBuckets and UnfilteredBucket.
func (s *Server) UseAWSBuckets() {
	all := map[string]Bucket{unfilteredKey: UnfilteredBucket}
	for k, v := range AWSBuckets {
		all[k] = v
	}
	s.SetBuckets(all)
}

// injection is an error code for the next n calls.
type injection struct {
	code string
	n    int
}

// InjectError makes the next n calls of action (of every action when action is "") fail with EC2 error
// code, before they change anything; errors injected earlier fire first. The HTTP status follows the code
// (see APIError.Status): RequestLimitExceeded and Unavailable are 503, InternalError 500.
func (s *Server) InjectError(action, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.inject[action] = append(s.faults.inject[action], injection{code: code, n: n})
}

// Throttle makes the next n calls of action (every action when "") fail with RequestLimitExceeded.
func (s *Server) Throttle(action string, n int) {
	s.InjectError(action, CodeRequestLimitExceeded, n)
}

// ClearFaults removes injected errors that have not fired yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.inject = map[string][]injection{}
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// SetVisibilityDelay makes Describe answers show the state as it was d ago (EC2's eventual consistency):
// writes take effect at once (later writes see them) but Describe shows them only after d.
func (s *Server) SetVisibilityDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.visibility = d
	s.history = []snapshot{{st: s.st.clone()}}
}

// fault returns the error a request meets before it is served, if any: an injected one, or throttling by
// its bucket. The caller holds s.mu.
func (s *Server) fault(r request) *APIError {
	for _, key := range []string{r.action, ""} {
		if q := s.faults.inject[key]; len(q) > 0 {
			if q[0].n--; q[0].n <= 0 {
				s.faults.inject[key] = q[1:]
			}
			return injected(q[0].code)
		}
	}
	key := r.action
	if strings.HasPrefix(r.action, "Describe") && !filtered(r) {
		key = unfilteredKey
	}
	if b := s.faults.buckets[key]; b != nil && !b.take(s.now()) {
		return apiErr(CodeRequestLimitExceeded, defaultMessageForThrottling)
	}
	return nil
}

func injected(code string) *APIError {
	if code == CodeRequestLimitExceeded {
		return apiErr(code, defaultMessageForThrottling)
	}
	return apiErr(code, "Injected by the simulator: %s.", code)
}
