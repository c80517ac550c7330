package gcp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
)

// assignAll assigns ips to node at once, one goroutine each, and returns their errors in order.
func assignAll(t *testing.T, p *Provider, node providers.Node, ips ...string) []error {
	var as []providers.Assignment
	for _, a := range ips {
		as = append(as, providers.Assignment{IP: ip(a)})
	}
	return concurrently(timeout(t, 30*time.Second), p.Assign, node, as)
}

// TestConcurrentWritesToOneNodeShareAnOperation: ten IPs failing over to one gateway at once take one
// PATCH, not ten operations or a storm of 412s; the pod range stays.
func TestConcurrentWritesToOneNodeShareAnOperation(t *testing.T) {
	e, p := start(t)
	e.sim.SetOperationLatency(300 * time.Millisecond)
	var ips []string
	for i := range 10 {
		ips = append(ips, fmt.Sprintf("10.0.1.%d", 50+i))
	}
	for i, err := range assignAll(t, p, gwA2, ips...) {
		if err != nil {
			t.Fatalf("assign %s: %v", ips[i], err)
		}
	}
	for _, a := range ips {
		e.wantOn(t, a, "gw-a2")
	}
	if got := e.calls(updateNIC); got != 1 {
		t.Fatalf("want 1 PATCH for 10 concurrent assignments, got %d", got)
	}
	if got := e.aliases(zoneA2, "gw-a2"); !strings.HasPrefix(got, "10.4.2.0/24@pods,") {
		t.Fatalf("the pod range did not stay first: %s", got)
	}
}

// TestOneBadIPDoesNotFailItsBatch: in a batch with an IP another NIC holds, the operation fails; each
// edit is then tried alone, so the others land and only that one is refused.
func TestOneBadIPDoesNotFailItsBatch(t *testing.T) {
	e, p := start(t)
	e.sim.SetOperationLatency(200 * time.Millisecond)
	errs := assignAll(t, p, gwA1, "10.0.1.50", "10.0.1.140", "10.0.1.51")
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], providers.ErrAssignedElsewhere) {
		t.Fatalf("want only 10.0.1.140 refused as assigned elsewhere: %v", errs)
	}
	e.wantOn(t, "10.0.1.50", "gw-a1")
	e.wantOn(t, "10.0.1.51", "gw-a1")
	e.wantOn(t, "10.0.1.140", "worker-a4")
}
