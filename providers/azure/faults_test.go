package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/azuresim"
)

var egress = providers.Assignment{IP: ip("10.224.0.50"), PublicIP: pip1}

// TestThrottlingHonoursRetryAfter: ARM's 429 says when to come back; the provider waits that long (not
// its own shorter backoff) and then succeeds.
func TestThrottlingHonoursRetryAfter(t *testing.T) {
	e, p := start(t)
	e.sim.Throttle(nicWrite, 2, time.Second)
	began := time.Now()
	must(t, p.Assign(timeout(t, time.Minute), gw0, egress))
	if waited := time.Since(began); waited < 2*time.Second {
		t.Fatalf("two 429s with Retry-After 1 s were retried after %s", waited)
	}
	e.wantOn(t, "10.224.0.50", gw0NIC)
	if got := e.count(nicWrite); got != 3 {
		t.Fatalf("want 2 throttled and 1 accepted write, simulator saw %d", got)
	}
}

// TestRetryAfterBeyondTheDeadline: a Retry-After the caller's deadline cannot meet ends the call at once
// with ErrThrottled (and the deadline), instead of sleeping into it.
func TestRetryAfterBeyondTheDeadline(t *testing.T) {
	e, p := start(t)
	e.sim.Throttle(nicRead, 1_000_000, 30*time.Second)
	began := time.Now()
	_, err := p.DescribeNode(timeout(t, 2*time.Second), gw0)
	if !errors.Is(err, providers.ErrThrottled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want ErrThrottled and the deadline, got %v", err)
	}
	if e.count(nicRead) != 1 || time.Since(began) > time.Second {
		t.Fatalf("want one try and an answer at once, got %d tries after %s", e.count(nicRead), time.Since(began))
	}
}

func TestAnotherOperationIsWaitedFor(t *testing.T) {
	for _, status := range []int{http.StatusConflict, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			e, p := start(t)
			e.sim.AnotherOperation(nicWrite, 2, status, 0)
			must(t, p.Assign(timeout(t, time.Minute), gw0, egress))
			e.wantOn(t, "10.224.0.50", gw0NIC)
			if got := e.count(nicWrite); got != 3 {
				t.Fatalf("want 2 refused and 1 accepted write, simulator saw %d", got)
			}
		})
	}
}

// TestETagConflictRereads: another writer changes the NIC between the provider's read and its write; the
// 412 makes it read again and redo the edit on the new state.
func TestETagConflictRereads(t *testing.T) {
	e, p := start(t)
	e.sim.RaceETag(gw0NIC, 2)
	must(t, p.Assign(timeout(t, time.Minute), gw0, egress))
	e.wantOn(t, "10.224.0.50", gw0NIC)
	if w, r := e.count(nicWrite), e.count(nicRead); w != 3 || r < 4 {
		t.Fatalf("want 3 writes and a fresh read before each (plus the first resolution), got %d writes, %d reads", w, r)
	}
}

// TestSlowOperationsArePolledAtTheInterval: a NIC write of 600 ms, whose answers carry the Network
// provider's Retry-After of 10 s, is polled every PollInterval (20 ms here) and done long before 10 s.
func TestSlowOperationsArePolledAtTheInterval(t *testing.T) {
	e, p := start(t)
	e.sim.SetOperationLatency(600 * time.Millisecond)
	must(t, p.Assign(timeout(t, time.Minute), gw0, egress))
	e.wantOn(t, "10.224.0.50", gw0NIC)
	if polls := e.count(opRead); polls < 5 {
		t.Fatalf("a 600 ms operation was polled %d times at a 20 ms interval: Retry-After 10 s was obeyed", polls)
	}
	must(t, p.Release(timeout(t, time.Minute), gw0, egress))
	e.wantOn(t, "10.224.0.50", "")
}

// TestSlowOperationBoundedByTheDeadline: the caller's deadline bounds the wait for a write.
func TestSlowOperationBoundedByTheDeadline(t *testing.T) {
	e, p := start(t)
	_, err := p.DescribeNode(context.Background(), gw0) // resolve first, so the deadline meets the write
	must(t, err)
	e.sim.SetOperationLatency(time.Hour)
	err = p.Assign(timeout(t, 500*time.Millisecond), gw0, egress)
	if !errors.Is(err, providers.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want ErrUnavailable and the deadline, got %v", err)
	}
}

func TestFailedOperationIsRedone(t *testing.T) {
	e, p := start(t)
	e.sim.FailOperations(azuresim.CodeInternalServerError, 1)
	must(t, p.Assign(timeout(t, time.Minute), gw0, egress))
	e.wantOn(t, "10.224.0.50", gw0NIC)
	if got := e.count(nicWrite); got != 2 {
		t.Fatalf("want the failed write and its redo, simulator saw %d", got)
	}
}

func TestServerErrorsAreRetriedThenReported(t *testing.T) {
	e, p := start(t)
	e.sim.Inject(nicRead, azuresim.Fault{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable"}, 2)
	must(t, p.Assign(timeout(t, time.Minute), gw0, egress))
	e.sim.Inject(nicRead, azuresim.Fault{Status: http.StatusInternalServerError, Code: azuresim.CodeInternalServerError}, 1_000_000)
	if _, err := p.Locate(timeout(t, 300*time.Millisecond), []netip.Addr{ip("10.224.0.50")}); !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
}

// TestMissingPermissionIsPermanent: a role without the subnet join fails the write with
// LinkedAuthorizationFailed, at once and for good.
func TestMissingPermissionIsPermanent(t *testing.T) {
	var actions []string
	for _, a := range roleActions(t) {
		if a != "Microsoft.Network/virtualNetworks/subnets/join/action" {
			actions = append(actions, a)
		}
	}
	e := newEnv(t, map[string][]string{principal: actions})
	err := e.provider(t, testOptions).Assign(timeout(t, time.Minute), gw0, egress)
	if !errors.Is(err, providers.ErrPermanent) || providers.Retryable(err) {
		t.Fatalf("a missing permission must be permanent: %v", err)
	}
	if got := e.count(nicWrite); got != 1 {
		t.Fatalf("a permanent refusal was retried: %d writes", got)
	}
}

// TestConcurrentEditsShareWrites: while a slow write runs, the edits queued behind it go out together.
func TestConcurrentEditsShareWrites(t *testing.T) {
	e, p := start(t)
	e.sim.SetOperationLatency(300 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Assign(timeout(t, time.Minute), gw0, providers.Assignment{IP: ip(fmt.Sprintf("10.224.0.%d", 50+i))})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		must(t, err)
		e.wantOn(t, fmt.Sprintf("10.224.0.%d", 50+i), gw0NIC)
	}
	w := e.count(nicWrite)
	t.Logf("8 concurrent edits during 300 ms writes took %d NIC writes", w)
	if w > 3 {
		t.Fatalf("8 concurrent edits of one NIC took %d writes", w)
	}
}

// TestLostAnswerOfAWrite: the NIC write takes effect but its answer is lost (the connection is cut). The
// provider tries again, meets the new ETag (412), reads the NIC, waits for the running write and finds its
// edit done: one configuration, no second write of it.
func TestLostAnswerOfAWrite(t *testing.T) {
	e, p := start(t)
	e.sim.SetOperationLatency(200 * time.Millisecond)
	e.sim.LoseAnswers(nicWrite, 1)
	must(t, p.Assign(timeout(t, time.Minute), gw0, egress))
	e.wantOn(t, "10.224.0.50", gw0NIC)
	if w := e.count(nicWrite); w != 2 {
		t.Fatalf("want the lost write and the refused retry (412), got %d writes", w)
	}
	must(t, p.Release(timeout(t, time.Minute), gw0, egress))
	e.wantOn(t, "10.224.0.50", "")
}

// TestDeletedGateway: a gateway VM deleted with its NIC frees its egress IPs; releasing there is
// ErrNotFound, and the IP can go to another gateway at once.
func TestDeletedGateway(t *testing.T) {
	e, p := start(t)
	ctx := timeout(t, time.Minute)
	must(t, p.Assign(ctx, gw0, egress))
	must(t, e.sim.DeleteVM("aks-gw-12345678-vm0"))
	if err := p.Release(ctx, gw0, egress); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	locs, err := p.Locate(ctx, []netip.Addr{egress.IP})
	must(t, err)
	if len(locs) != 0 {
		t.Fatalf("the deleted gateway's IP is still located: %v", locs)
	}
	must(t, p.Assign(ctx, gw1, egress))
	e.wantOn(t, "10.224.0.50", gw1NIC)
}
