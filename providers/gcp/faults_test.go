package gcp

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/gcpsim"
)

const updateNIC = "instances.updateNetworkInterface"

// TestFingerprintConflictReadsAgain: another writer changes nic0 twice between the provider's read and
// its PATCH; each 412 makes it read again, and the third PATCH goes through.
func TestFingerprintConflictReadsAgain(t *testing.T) {
	e, p := start(t)
	gets := e.calls("instances.get")
	e.sim.StaleFingerprints(2)
	must(t, p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	e.wantOn(t, "10.0.1.50", "gw-a1")
	if got := e.calls(updateNIC); got != 3 {
		t.Fatalf("want 3 PATCHes (two refused), got %d", got)
	}
	if got := e.calls("instances.get") - gets; got < 3 {
		t.Fatalf("want a fresh read before each PATCH, got %d reads", got)
	}
}

// TestLostAnswerIsNotAppliedTwice: the PATCH takes effect but its answer is lost (503); the retry carries
// the same requestId, so the simulator returns the first operation instead of starting another.
func TestLostAnswerIsNotAppliedTwice(t *testing.T) {
	e, p := start(t)
	e.sim.LoseAnswers(updateNIC, 1)
	must(t, p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	e.wantOn(t, "10.0.1.50", "gw-a1")
	if got, ops := e.calls(updateNIC), len(e.sim.Operations()); got != 2 || ops != 1 {
		t.Fatalf("want 2 PATCHes and 1 operation, got %d and %d", got, ops)
	}
}

// TestRateLimitsAreRetried: 429 and 403 rateLimitExceeded, on reads, writes and operation polls.
func TestRateLimitsAreRetried(t *testing.T) {
	e, p := start(t)
	e.sim.SetOperationLatency(50 * time.Millisecond)
	e.sim.Throttle("instances.get", 3)
	e.sim.InjectError(updateNIC, http.StatusForbidden, gcpsim.ReasonRateLimitExceeded, 2)
	e.sim.Throttle("zoneOperations.get", 2)
	must(t, p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	e.wantOn(t, "10.0.1.50", "gw-a1")
	if got := e.calls(updateNIC); got != 3 {
		t.Fatalf("want 2 throttled PATCHes and 1 accepted, got %d", got)
	}
}

func TestQuotaThrottlingUntilTheDeadline(t *testing.T) {
	e, p := start(t)
	e.sim.SetRateQuota(gcpsim.QuotaWrite, 1)
	must(t, p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	err := p.Assign(timeout(t, 300*time.Millisecond), gwA1, providers.Assignment{IP: ip("10.0.1.51")})
	if !errors.Is(err, providers.ErrThrottled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want ErrThrottled and the deadline, got %v", err)
	}
	if e.calls(updateNIC) < 3 {
		t.Fatalf("gave up without retrying: %v", e.sim.Calls())
	}
	e.wantOn(t, "10.0.1.51", "")
}

func TestServerErrorsAreRetriedThenReported(t *testing.T) {
	e, p := start(t)
	e.sim.InjectError("instances.get", http.StatusServiceUnavailable, gcpsim.ReasonBackendError, 2)
	e.sim.InjectError(updateNIC, http.StatusInternalServerError, gcpsim.ReasonBackendError, 1)
	must(t, p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	e.wantOn(t, "10.0.1.50", "gw-a1")
	e.sim.InjectError("instances.aggregatedList", http.StatusServiceUnavailable, gcpsim.ReasonBackendError, 1_000_000)
	if _, err := p.Locate(timeout(t, 200*time.Millisecond), []netip.Addr{ip("10.0.1.50")}); !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
}

// TestOperationErrorsSurfaceTheirCode: a transient operation error is retried from a fresh read; a
// permanent one is reported with its code and not retried.
func TestOperationErrorsSurfaceTheirCode(t *testing.T) {
	e, p := start(t)
	e.sim.FailOperations("INTERNAL_ERROR")
	must(t, p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	e.wantOn(t, "10.0.1.50", "gw-a1")
	e.sim.FailOperations("UNSUPPORTED_OPERATION")
	before := e.calls(updateNIC)
	err := p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.51")})
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "UNSUPPORTED_OPERATION") {
		t.Fatalf("want ErrPermanent with the code, got %v", err)
	}
	if got := e.calls(updateNIC) - before; got != 1 {
		t.Fatalf("a permanent operation error was retried: %d PATCHes", got)
	}
}

// TestOperationsArePolledAtAFixedInterval: a 1s operation is seen DONE within a poll interval of its end,
// not after the SDK Wait's growing pauses.
func TestOperationsArePolledAtAFixedInterval(t *testing.T) {
	e := newEnv(t, gcpsim.Options{})
	p := e.provider(t, Options{PollInterval: 100 * time.Millisecond})
	e.sim.SetOperationLatency(time.Second)
	must(t, p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	if got := e.calls("zoneOperations.get"); got < 8 || got > 12 {
		t.Fatalf("want about 10 polls of a 1s operation at 100ms, got %d", got)
	}
	e.wantOn(t, "10.0.1.50", "gw-a1")
}

// TestReleaseFromAHungVMIsBounded: the release's operation never finishes; the provider stops waiting
// after OperationTimeout and says so. When the VM is then deleted, the IP is free and Release of the gone
// node is ErrNotFound.
func TestReleaseFromAHungVMIsBounded(t *testing.T) {
	e := newEnv(t, gcpsim.Options{})
	p := e.provider(t, Options{OperationTimeout: 300 * time.Millisecond})
	must(t, p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	e.sim.SetHung(zoneA1, "gw-a1", true)
	start := time.Now()
	err := p.Release(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")})
	if !errors.Is(err, providers.ErrUnavailable) || !strings.Contains(err.Error(), "still RUNNING") {
		t.Fatalf("want ErrUnavailable naming the running operation, got %v", err)
	}
	t.Logf("release from a hung VM reported after %s", time.Since(start).Round(time.Millisecond))
	e.wantOn(t, "10.0.1.50", "gw-a1")
	e.sim.DeleteInstance(zoneA1, "gw-a1", 0)
	if err := p.Release(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("Release on a deleted VM: want ErrNotFound, got %v", err)
	}
	where, err := p.Locate(timeout(t, 10*time.Second), []netip.Addr{ip("10.0.1.50")})
	if err != nil || len(where) != 0 {
		t.Fatalf("after the deletion the IP must be nowhere: %v %v", where, err)
	}
	must(t, p.Assign(timeout(t, 10*time.Second), gwA2, providers.Assignment{IP: ip("10.0.1.50")}))
	e.wantOn(t, "10.0.1.50", "gw-a2")
}

func TestPermissionDeniedIsPermanent(t *testing.T) {
	e := newEnv(t, gcpsim.Options{AllowedPermissions: []string{"compute.instances.get", "compute.subnetworks.get"}})
	p := e.provider(t, Options{})
	err := p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")})
	if !errors.Is(err, providers.ErrPermanent) || providers.Retryable(err) || !strings.Contains(err.Error(), "compute.instances.updateNetworkInterface") {
		t.Fatalf("an IAM refusal must be permanent and name the permission: %v", err)
	}
	if got := e.calls(updateNIC); got != 1 {
		t.Fatalf("a permanent refusal was retried: %d calls", got)
	}
}

func TestClientSideLimiterStopsBeforeTheCloud(t *testing.T) {
	e := newEnv(t, gcpsim.Options{})
	p := e.provider(t, Options{Limits: map[string]Limit{groupWrite: {Burst: 1, PerSecond: 0.01}}})
	must(t, p.Assign(timeout(t, 10*time.Second), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	err := p.Assign(timeout(t, 200*time.Millisecond), gwA1, providers.Assignment{IP: ip("10.0.1.51")})
	if !errors.Is(err, providers.ErrThrottled) {
		t.Fatalf("want ErrThrottled from the client-side limit, got %v", err)
	}
	if got := e.calls(updateNIC); got != 1 {
		t.Fatalf("the limited call reached the cloud: %d calls", got)
	}
}
