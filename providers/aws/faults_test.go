package aws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// TestThrottlingStormOutlastsTheSDKRetryQuota throttles 150 Assign calls while ten moves run at once. The
// SDK's standard retryer would give up after 100 throttled retries (a 500-token quota, 5 per retry), and
// every later call would then fail at once; the provider's own retries have no such quota.
func TestThrottlingStormOutlastsTheSDKRetryQuota(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	p := e.provider(t, Options{Limits: map[string]Limit{}}) // EC2's throttling alone; the client-side limit has its own test
	e.sim.Throttle("AssignPrivateIpAddresses", 150)
	ctx := timeout(t, time.Minute)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := []providers.Node{gwA1, gwA2}[i%2]
			errs[i] = p.Move(ctx, node, []netip.Addr{ip(fmt.Sprintf("10.0.1.%d", 50+i))})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("move %d failed in the storm: %v", i, err)
		}
		e.wantOn(t, fmt.Sprintf("10.0.1.%d", 50+i), []string{eniA1, eniA2}[i%2])
	}
	if got := e.calls("AssignPrivateIpAddresses"); got != 160 {
		t.Fatalf("want 150 throttled and 10 successful Assign calls, simulator saw %d", got)
	}
}

func TestThrottledUntilTheDeadline(t *testing.T) {
	e, p := start(t)
	e.sim.Throttle("AssignPrivateIpAddresses", 1_000_000)
	err := p.Move(timeout(t, 300*time.Millisecond), gwA1, []netip.Addr{ip("10.0.1.50")})
	if !errors.Is(err, providers.ErrThrottled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want ErrThrottled and the deadline, got %v", err)
	}
	if e.calls("AssignPrivateIpAddresses") < 2 {
		t.Fatalf("gave up without retrying: %v", e.sim.Actions())
	}
	e.wantOn(t, "10.0.1.50", "")
}

func TestServerErrorsAreRetriedThenReported(t *testing.T) {
	e, p := start(t)
	e.sim.InjectError("AssignPrivateIpAddresses", ec2sim.CodeInternalError, 2)
	e.sim.InjectError("AssignPrivateIpAddresses", ec2sim.CodeUnavailable, 1)
	must(t, p.Move(timeout(t, time.Minute), gwA1, []netip.Addr{ip("10.0.1.50")}))
	e.wantOn(t, "10.0.1.50", eniA1)
	e.sim.InjectError("DescribeNetworkInterfaces", ec2sim.CodeUnavailable, 1_000_000)
	_, err := p.Locate(timeout(t, 200*time.Millisecond), []netip.Addr{ip("10.0.1.50")})
	if !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
}

func TestClientSideLimiterStopsBeforeEC2(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	p := e.provider(t, Options{Limits: map[string]Limit{"AssignPrivateIpAddresses": {Burst: 1, PerSecond: 0.01}}})
	must(t, p.Move(context.Background(), gwA1, []netip.Addr{ip("10.0.1.50")}))
	err := p.Move(timeout(t, 200*time.Millisecond), gwA1, []netip.Addr{ip("10.0.1.51")})
	if !errors.Is(err, providers.ErrThrottled) {
		t.Fatalf("want ErrThrottled from the client-side limit, got %v", err)
	}
	if got := e.calls("AssignPrivateIpAddresses"); got != 1 {
		t.Fatalf("the limited call reached EC2: %d calls", got)
	}
}

func TestPermanentRefusalsAreNotRetried(t *testing.T) {
	e := newEnv(t, ec2sim.Options{AllowedActions: []string{"DescribeInstances", "DescribeSubnets", "DescribeInstanceTypes", "DescribeNetworkInterfaces"}})
	p := e.provider(t, Options{})
	err := p.Move(timeout(t, time.Minute), gwA1, []netip.Addr{ip("10.0.1.50")})
	if !errors.Is(err, providers.ErrPermanent) || providers.Retryable(err) {
		t.Fatalf("an IAM refusal must be permanent: %v", err)
	}
	if got := e.calls("AssignPrivateIpAddresses"); got != 1 {
		t.Fatalf("a permanent refusal was retried: %d calls", got)
	}
}
