package ec2sim

import (
	"github.com/egressgw/egressgw/test/simkit"
	"strings"
	"time"
)

// Bucket is a token bucket of EC2's request throttling: Capacity requests at once, refilled at
// RefillPerSecond. EC2 keeps one bucket per account, region and action.
type Bucket = simkit.Bucket

// AWSBuckets are the bucket sizes EC2 documents for the actions the provider calls: Assign/Unassign 100
// refilled 5/s, the generic mutating bucket (AssociateAddress, DisassociateAddress) 50 refilled 5/s, and
// filtered non-mutating Describe calls 100 refilled 20/s, CreateTags 100 refilled 10/s. UnfilteredBucket is the separate bucket of
// Describe calls with neither IDs, filters nor pagination: 50 refilled 10/s.
var (
	AWSBuckets = map[string]Bucket{
		"AssignPrivateIpAddresses":   {Capacity: 100, RefillPerSecond: 5},
		"UnassignPrivateIpAddresses": {Capacity: 100, RefillPerSecond: 5},
		"AssociateAddress":           {Capacity: 50, RefillPerSecond: 5},
		"DisassociateAddress":        {Capacity: 50, RefillPerSecond: 5},
		// The interface lifecycle draws on the generic mutating bucket's size; CreateTags has its own.
		"CreateNetworkInterface":          {Capacity: 50, RefillPerSecond: 5},
		"AttachNetworkInterface":          {Capacity: 50, RefillPerSecond: 5},
		"ModifyNetworkInterfaceAttribute": {Capacity: 50, RefillPerSecond: 5},
		"DetachNetworkInterface":          {Capacity: 50, RefillPerSecond: 5},
		"DeleteNetworkInterface":          {Capacity: 50, RefillPerSecond: 5},
		"CreateTags":                      {Capacity: 100, RefillPerSecond: 10},
		"DescribeInstances":               {Capacity: 100, RefillPerSecond: 20},
		"DescribeNetworkInterfaces":       {Capacity: 100, RefillPerSecond: 20},
		"DescribeSubnets":                 {Capacity: 100, RefillPerSecond: 20},
		"DescribeInstanceTypes":           {Capacity: 100, RefillPerSecond: 20},
		"DescribeAddresses":               {Capacity: 100, RefillPerSecond: 20},
	}
	UnfilteredBucket = Bucket{Capacity: 50, RefillPerSecond: 10}
)

// unfilteredKey names the unfiltered Describe bucket among the per-action ones.
const unfilteredKey = "unfiltered Describe"

// faults are the injected misbehaviours of the simulated API. Guarded by Server.mu.
type faults struct {
	buckets    map[string]*simkit.TokenBucket
	inject     simkit.Injections[string] // by action: EC2 error codes for its next calls
	visibility time.Duration
}

// SetBuckets throttles each named action with its own token bucket, full at first; use AWSBuckets (and
// UnfilteredBucket under the name "unfiltered Describe") for EC2's real sizes. Actions without a bucket
// are never throttled by rate. Replaces earlier buckets.
func (s *Server) SetBuckets(buckets map[string]Bucket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.buckets = map[string]*simkit.TokenBucket{}
	for action, b := range buckets {
		s.faults.buckets[action] = simkit.NewTokenBucket(b)
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

// InjectError makes the next n calls of action (of every action when action is "") fail with EC2 error
// code, before they change anything; errors injected earlier fire first. The HTTP status follows the code
// (see APIError.Status): RequestLimitExceeded and Unavailable are 503, InternalError 500.
func (s *Server) InjectError(action, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.inject.Add(action, code, n)
}

// Throttle makes the next n calls of action (every action when "") fail with RequestLimitExceeded.
func (s *Server) Throttle(action string, n int) {
	s.InjectError(action, CodeRequestLimitExceeded, n)
}

// ClearFaults removes injected errors that have not fired yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.inject.Clear()
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.latency.Set(d)
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
	if code, ok := s.faults.inject.Next(r.action); ok {
		return injected(code)
	}
	key := r.action
	if strings.HasPrefix(r.action, "Describe") && !filtered(r) {
		key = unfilteredKey
	}
	if b := s.faults.buckets[key]; b != nil && !b.Allow(s.now()) {
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
