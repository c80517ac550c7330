package aws

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// workerENI is the worker's primary interface, untagged: its secondary address 10.0.1.140 is another
// tool's (a pod's, with the VPC CNI).
const workerENI = "eni-0c000000000000004"

// TestAnotherToolsAddressIsInUseAndNeverTaken: an address on an interface that is not egressgw's is
// located as in use, and neither Move (AllowReassignment) nor Assign takes it; the batch it is in does not
// move either, and the refusal names it.
func TestAnotherToolsAddressIsInUseAndNeverTaken(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	where, err := p.Locate(ctx, []netip.Addr{ip("10.0.1.140")})
	must(t, err)
	if got := where[ip("10.0.1.140")]; got.Instance != "i-0c000000000000004" || !strings.Contains(got.InUse, workerENI) {
		t.Fatalf("want the worker's address located as in use, naming its interface: %+v", got)
	}
	err = p.Move(ctx, gwA1, []netip.Addr{ip("10.0.1.60"), ip("10.0.1.140")})
	if !errors.Is(err, providers.ErrIPInUse) || !strings.Contains(err.Error(), "10.0.1.140") {
		t.Fatalf("Move of another tool's address: want ErrIPInUse naming it, got %v", err)
	}
	e.wantOn(t, "10.0.1.140", workerENI)
	e.wantOn(t, "10.0.1.60", "")
	if err := p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.140")}); !errors.Is(err, providers.ErrIPInUse) {
		t.Fatalf("Assign of another tool's address: want ErrIPInUse, got %v", err)
	}
	e.wantOn(t, "10.0.1.140", workerENI)
}

// TestAPodsAddressOnAGatewaysPrimaryInterfaceIsNotTaken: in the dedicated mode the VPC CNI manages the
// gateway's primary interface and gives its secondary addresses to pods; such an address is not
// egressgw's, even on a gateway and even though the interface carries egressgw's cluster tag.
func TestAPodsAddressOnAGatewaysPrimaryInterfaceIsNotTaken(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	ctx := t.Context()
	cni := e.provider(t, Options{}) // stands in for the CNI: it puts a pod's address on the primary ENI
	must(t, cni.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.70")}))
	p := e.provider(t, dedicated())
	_, err := p.EnsureAttachment(ctx, gwA1)
	must(t, err)
	a2, err := p.EnsureAttachment(ctx, gwA2)
	must(t, err)
	must(t, p.Move(ctx, gwA1, []netip.Addr{ip("10.0.1.50")})) // an egress IP on gw-a1's egress interface
	err = p.Move(ctx, gwA2, []netip.Addr{ip("10.0.1.70")})
	if !errors.Is(err, providers.ErrIPInUse) || !strings.Contains(err.Error(), "not an egress interface") {
		t.Fatalf("Move of a pod's address: want ErrIPInUse, got %v", err)
	}
	e.wantOn(t, "10.0.1.70", eniA1)
	must(t, p.Move(ctx, gwA2, []netip.Addr{ip("10.0.1.50")})) // the egress IP moves
	e.wantOn(t, "10.0.1.50", a2.Interface)
}

// TestAnAddressTakenAfterTheReadIsNotTaken: Describe lags, showing an address free that another tool has
// taken since. A Move of IPs that the read shows free does not reassign, so EC2 itself refuses.
func TestAnAddressTakenAfterTheReadIsNotTaken(t *testing.T) {
	clock := ec2sim.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, ec2sim.Options{Clock: clock.Now, AllowedActions: []string{"DescribeInstances", "DescribeNetworkInterfaces",
		"DescribeSubnets", "DescribeInstanceTypes", "AssignPrivateIpAddresses"}})
	p := e.provider(t, Options{})
	e.sim.SetVisibilityDelay(time.Minute)
	_, err := p.ec2.AssignPrivateIpAddresses(t.Context(), &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: sdkaws.String(workerENI), PrivateIpAddresses: []string{"10.0.1.80"}})
	must(t, err) // the CNI takes it for a pod; Describe will not show it for a minute
	if err := p.Move(t.Context(), gwA1, []netip.Addr{ip("10.0.1.80")}); err == nil {
		t.Fatal("a Move took an address another tool holds")
	}
	e.wantOn(t, "10.0.1.80", workerENI)
}
