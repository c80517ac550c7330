package azuresim

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/ec2sim"
)

func TestNICWriteNeedsTheCurrentETag(t *testing.T) {
	e := start(t, Options{})
	nic := e.getNIC(t, gw0NIC)
	old := *nic.Etag
	if err := e.putNIC(context.Background(), withSecondary(nic, "egressgw-10-224-0-50", "10.224.0.50", ""), old); err != nil {
		t.Fatal(err)
	}
	if h, ok := e.sim.Where(netip.MustParseAddr("10.224.0.50")); !ok || !strings.HasSuffix(h.Interface, gw0NIC) {
		t.Fatalf("the write did not land: %+v", h)
	}
	err := e.putNIC(context.Background(), withSecondary(e.getNIC(t, gw0NIC), "x", "10.224.0.51", ""), old)
	wantCode(t, err, http.StatusPreconditionFailed, CodePreconditionFailed)
	if _, ok := e.sim.Where(netip.MustParseAddr("10.224.0.51")); ok {
		t.Fatal("a write with a stale ETag changed the NIC")
	}
}

func TestRulesOfTheNetworkProvider(t *testing.T) {
	e := start(t, Options{})
	cases := []struct {
		name, ip, pip string
		code          string
	}{
		{"address of another NIC", "10.224.0.5", "", CodeIPInUse},
		{"outside the subnet", "10.225.0.50", "", CodeIPNotInSubnet},
		{"reserved by Azure", "10.224.0.3", "", CodeIPInReservedRange},
		{"public IP of another ip configuration", "10.224.0.50", nodePIP, CodePublicIPInUse},
		{"unknown public IP", "10.224.0.50", pip1ID + "-missing", CodeInvalidReference},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nic := e.getNIC(t, gw0NIC)
			err := e.putNIC(context.Background(), withSecondary(nic, "egressgw-test", c.ip, c.pip), *nic.Etag)
			wantCode(t, err, http.StatusBadRequest, c.code)
		})
	}
}

func TestIPConfigurationLimit(t *testing.T) {
	e := start(t, Options{})
	nic := e.getNIC(t, gw0NIC)
	for i := 1; i < MaxIPConfigsPerNIC; i++ {
		nic = withSecondary(nic, fmt.Sprintf("c%d", i), fmt.Sprintf("10.224.1.%d", i), "")
	}
	if err := e.putNIC(context.Background(), nic, *nic.Etag); err != nil {
		t.Fatalf("256 ip configurations must fit: %v", err)
	}
	nic = e.getNIC(t, gw0NIC)
	err := e.putNIC(context.Background(), withSecondary(nic, "one-more", "10.224.2.1", ""), *nic.Etag)
	wantCode(t, err, http.StatusBadRequest, CodeIPConfigLimitReached)
}

// TestSlowOperationKeepsTheReleasedAddress: a removal frees its address only when the operation
// completes, and the status resource says InProgress (with the Network provider's Retry-After) until then.
func TestSlowOperationKeepsTheReleasedAddress(t *testing.T) {
	clock := ec2sim.NewManualClock(time.Now())
	e := start(t, Options{Clock: clock.Now})
	nic := e.getNIC(t, gw0NIC)
	must(t, e.putNIC(context.Background(), withSecondary(nic, "egressgw-10-224-0-50", "10.224.0.50", pip1ID), *nic.Etag))
	e.sim.SetOperationLatency(5 * time.Second)
	nic = e.getNIC(t, gw0NIC)
	nic.Properties.IPConfigurations = nic.Properties.IPConfigurations[:1]
	poller, err := e.nics.BeginCreateOrUpdate(context.Background(), testRG, gw0NIC, nic, nil)
	must(t, err)
	resp, err := poller.Poll(context.Background())
	must(t, err)
	if poller.Done() || resp.Header.Get("Retry-After") != "10" {
		t.Fatalf("want the operation in progress with Retry-After 10, got done=%v Retry-After %q", poller.Done(), resp.Header.Get("Retry-After"))
	}
	other := e.getNIC(t, gw1NIC)
	wantCode(t, e.putNIC(context.Background(), withSecondary(other, "egressgw-10-224-0-50", "10.224.0.50", ""), *other.Etag), http.StatusBadRequest, CodeIPInUse)
	busy := e.getNIC(t, gw0NIC)
	wantCode(t, e.putNIC(context.Background(), busy, *busy.Etag), http.StatusTooManyRequests, CodeRetryableAnotherOp)
	clock.Step(5 * time.Second)
	for !poller.Done() {
		_, err := poller.Poll(context.Background())
		must(t, err)
	}
	e.sim.SetOperationLatency(0)
	must(t, e.putNIC(context.Background(), withSecondary(e.getNIC(t, gw1NIC), "egressgw-10-224-0-50", "10.224.0.50", pip1ID), ""))
	if h := e.sim.HoldersOf(netip.MustParseAddr("10.224.0.50")); len(h) != 1 || !strings.HasSuffix(h[0].Interface, gw1NIC) || h[0].PublicIP != pip1ID {
		t.Fatalf("want the address and its public IP on %s alone, got %+v", gw1NIC, h)
	}
}

func TestUniformInstanceNICIsReadOnly(t *testing.T) {
	e := start(t, Options{})
	resp, err := e.nics.GetVirtualMachineScaleSetNetworkInterface(context.Background(), testRG, "aks-nodepool1-12345678-vmss", "0", "aks-nodepool1-12345678-vmss", nil)
	must(t, err)
	req, _ := http.NewRequest(http.MethodPut, e.url+*resp.ID+"?api-version=2025-05-01", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer tester")
	hr, err := (&http.Client{Transport: e.ca.Transport()}).Do(req)
	must(t, err)
	hr.Body.Close()
	if hr.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT of a Uniform instance's NIC: want 405, got %d", hr.StatusCode)
	}
	if _, err := e.nics.Get(context.Background(), testRG, "aks-nodepool1-12345678-vmss", nil); err == nil {
		t.Fatal("the Network provider must not serve a Uniform instance's NIC as its own")
	}
}

func TestRolesAndLinkedJoins(t *testing.T) {
	e := start(t, Options{Roles: map[string][]string{"tester": {"Microsoft.Network/networkInterfaces/read", "Microsoft.Network/networkInterfaces/write"}}})
	nic := e.getNIC(t, gw0NIC)
	err := e.putNIC(context.Background(), withSecondary(nic, "egressgw-10-224-0-50", "10.224.0.50", ""), *nic.Etag)
	re := wantCode(t, err, http.StatusForbidden, CodeLinkedAuthorization)
	if !strings.Contains(re.Error(), "backendAddressPools/join/action") && !strings.Contains(re.Error(), "subnets/join/action") {
		t.Fatalf("the refusal must name the join action: %v", re)
	}
	_, err = e.vms.Get(context.Background(), testRG, "aks-gw-12345678-vm0", nil)
	wantCode(t, err, http.StatusForbidden, CodeAuthorizationFailed)
	if e.sim.Callers()["tester"] == 0 || e.sim.Actions()["Microsoft.Compute/virtualMachines/read"] != 1 {
		t.Fatalf("caller or action not recorded: %v %v", e.sim.Callers(), e.sim.Actions())
	}
}

func TestInjectedThrottlingSendsRetryAfter(t *testing.T) {
	e := start(t, Options{})
	e.sim.Throttle("Microsoft.Network/networkInterfaces/read", 1, 3*time.Second)
	_, err := e.nics.Get(context.Background(), testRG, gw0NIC, nil)
	re := wantCode(t, err, http.StatusTooManyRequests, CodeTooManyRequests)
	if re.RawResponse.Header.Get("Retry-After") != "3" {
		t.Fatalf("want Retry-After 3, got %q", re.RawResponse.Header.Get("Retry-After"))
	}
	e.sim.AnotherOperation("Microsoft.Network/networkInterfaces/write", 1, http.StatusConflict, time.Second)
	nic := e.getNIC(t, gw0NIC)
	wantCode(t, e.putNIC(context.Background(), nic, *nic.Etag), http.StatusConflict, CodeAnotherOpInProgress)
	e.sim.FailOperations(CodeInternalServerError, 1)
	err = e.putNIC(context.Background(), withSecondary(e.getNIC(t, gw0NIC), "egressgw-10-224-0-50", "10.224.0.50", ""), "")
	wantCode(t, err, http.StatusOK, CodeInternalServerError) // a failed operation's status resource answers 200
	if _, ok := e.sim.Where(netip.MustParseAddr("10.224.0.50")); ok {
		t.Fatal("a failed operation must be rolled back")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLocationPolling: the Location resource of a running write answers 202 until it completes, then the
// NIC.
func TestLocationPolling(t *testing.T) {
	clock := ec2sim.NewManualClock(time.Now())
	e := start(t, Options{Clock: clock.Now})
	e.sim.SetOperationLatency(time.Second)
	nic := e.getNIC(t, gw0NIC)
	_, err := e.nics.BeginCreateOrUpdate(context.Background(), testRG, gw0NIC, withSecondary(nic, "egressgw-10-224-0-50", "10.224.0.50", ""), nil)
	must(t, err)
	loc := e.lastLocation(t)
	if got := e.rawGet(t, loc); got != http.StatusAccepted {
		t.Fatalf("running operation: want 202, got %d", got)
	}
	clock.Step(time.Second)
	if got := e.rawGet(t, loc); got != http.StatusOK {
		t.Fatalf("completed operation: want 200, got %d", got)
	}
}

// TestTokenBuckets: ARM's buckets are per principal; an empty one answers 429 with the time until the
// next token as Retry-After.
func TestTokenBuckets(t *testing.T) {
	clock := ec2sim.NewManualClock(time.Now())
	e := start(t, Options{Clock: clock.Now})
	e.sim.SetBuckets(map[string]Bucket{"read": {Capacity: 2, RefillPerSecond: 0.5}})
	for range 2 {
		e.getNIC(t, gw0NIC)
	}
	_, err := e.nics.Get(context.Background(), testRG, gw0NIC, nil)
	re := wantCode(t, err, http.StatusTooManyRequests, CodeTooManyRequests)
	if got := re.RawResponse.Header.Get("Retry-After"); got != "2" {
		t.Fatalf("want Retry-After 2 (one token at 0.5/s), got %q", got)
	}
	clock.Step(2 * time.Second)
	e.getNIC(t, gw0NIC)
}
