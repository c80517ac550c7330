package ec2sim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestTokenBucketsHaveAWSSizes drains each bucket on a frozen clock, so the counts are exact.
func TestTokenBucketsHaveAWSSizes(t *testing.T) {
	clock := NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	sim, c, _ := startSim(t, Options{Clock: clock.Now})
	sim.UseAWSBuckets()
	drain := func(call func() error) int {
		for n := 0; ; n++ {
			if err := call(); err != nil {
				wantCode(t, err, CodeRequestLimitExceeded, http.StatusServiceUnavailable)
				return n
			}
		}
	}
	assignAgain := func() error { return assign(c, eniA1, true, "10.0.1.50") }
	if n := drain(assignAgain); n != 100 {
		t.Fatalf("Assign bucket held %d, want 100", n)
	}
	clock.Step(time.Second)
	if n := drain(assignAgain); n != 5 {
		t.Fatalf("Assign bucket refilled %d in 1s, want 5", n)
	}
	associateAgain := func() error { _, err := associate(c, eip1, eniA1, "10.0.1.50"); return err }
	if n := drain(associateAgain); n != 50 {
		t.Fatalf("AssociateAddress bucket held %d, want 50", n)
	}
	ctx := context.Background()
	unfiltered := func() error { _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); return err }
	if n := drain(unfiltered); n != 50 {
		t.Fatalf("unfiltered Describe bucket held %d, want 50", n)
	}
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{gwA1}}}})
	must(t, err) // filtered calls have their own, larger bucket
}

func TestInjectedErrorsUseEC2Statuses(t *testing.T) {
	sim, c, _ := startSim(t, Options{})
	sim.InjectError("AssignPrivateIpAddresses", CodeInternalError, 1)
	sim.InjectError("AssignPrivateIpAddresses", CodeUnavailable, 1)
	sim.InjectError("AssignPrivateIpAddresses", CodeRequestLimitExceeded, 1)
	wantCode(t, assign(c, eniA1, false, "10.0.1.50"), CodeInternalError, http.StatusInternalServerError)
	wantCode(t, assign(c, eniA1, false, "10.0.1.50"), CodeUnavailable, http.StatusServiceUnavailable)
	wantCode(t, assign(c, eniA1, false, "10.0.1.50"), CodeRequestLimitExceeded, http.StatusServiceUnavailable)
	wantHolder(t, sim, "10.0.1.50", "") // a failed call changed nothing
	must(t, assign(c, eniA1, false, "10.0.1.50"))
	sim.Throttle("", 1)
	_, err := c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0a000000000000001"}})
	wantCode(t, err, CodeRequestLimitExceeded, http.StatusServiceUnavailable)
}

func TestDelayedVisibility(t *testing.T) {
	clock := NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	sim, c, _ := startSim(t, Options{Clock: clock.Now})
	sim.SetVisibilityDelay(2 * time.Second)
	visibleOn := func() string {
		out, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
			{Name: aws.String("addresses.private-ip-address"), Values: []string{"10.0.1.50"}}}})
		must(t, err)
		if len(out.NetworkInterfaces) == 0 {
			return ""
		}
		return *out.NetworkInterfaces[0].NetworkInterfaceId
	}
	must(t, assign(c, eniA1, false, "10.0.1.50"))
	wantHolder(t, sim, "10.0.1.50", eniA1)
	if on := visibleOn(); on != "" {
		t.Fatalf("a write was visible at once, on %s", on)
	}
	wantCode(t, assign(c, eniA2, false, "10.0.1.50"), CodeInvalidParameterValue, http.StatusBadRequest) // writes see the truth
	clock.Step(2 * time.Second)
	if on := visibleOn(); on != eniA1 {
		t.Fatalf("after the delay Describe shows %q", on)
	}
}

func TestLatencyEndsWithTheClientsDeadline(t *testing.T) {
	sim, c, _ := startSim(t, Options{})
	sim.SetLatency(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := func() error {
		_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA1), PrivateIpAddresses: []string{"10.0.1.50"}})
		return err
	}()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the client's deadline, got %v", err)
	}
	wantHolder(t, sim, "10.0.1.50", "")
}

func TestUnfilteredDescribeIsRecordedAndCanBeRefused(t *testing.T) {
	sim, c, _ := startSim(t, Options{RefuseUnfiltered: true})
	ctx := context.Background()
	_, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	wantCode(t, err, codeUnfilteredNotPermitted, http.StatusBadRequest)
	_, err = c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniA1}})
	must(t, err)
	if got := sim.Unfiltered(); len(got) != 1 || got[0] != "DescribeNetworkInterfaces" {
		t.Fatalf("unfiltered calls recorded: %v", got)
	}
	if got := sim.Actions()["DescribeNetworkInterfaces"]; got != 2 {
		t.Fatalf("recorded %d DescribeNetworkInterfaces, want 2", got)
	}
}

func TestAllowedActionsEmulateAnIAMPolicy(t *testing.T) {
	_, c, _ := startSim(t, Options{AllowedActions: []string{"DescribeInstances"}})
	wantCode(t, assign(c, eniA1, false, "10.0.1.50"), CodeUnauthorizedOperation, http.StatusForbidden)
	_, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{gwA1}})
	must(t, err)
}
