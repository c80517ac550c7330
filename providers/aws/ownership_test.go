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

// TestWhatTheProviderSawNeverTakesAPodsAddress: what the provider last saw stands in for a read only when
// it shows an IP free or on an egressgw interface. A pod's address seen on the CNI's interface is read
// again and refused; an egress IP released (seen free) and then given to a pod by the CNI goes without
// AllowReassignment, EC2 refuses it, and the read that follows refuses it too. The pod keeps its address.
func TestWhatTheProviderSawNeverTakesAPodsAddress(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	ctx := t.Context()
	cni := e.provider(t, Options{}) // stands in for the CNI: it puts pods' addresses on the primary ENI
	must(t, cni.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.70")}))
	p := e.provider(t, dedicated())
	_, err := p.EnsureAttachment(ctx, gwA1)
	must(t, err)
	_, err = p.EnsureAttachment(ctx, gwA2)
	must(t, err)
	_, err = p.Locate(ctx, []netip.Addr{ip("10.0.1.70")}) // seen on the CNI's interface
	must(t, err)
	before := e.sim.Actions()
	if err := p.Move(ctx, gwA2, []netip.Addr{ip("10.0.1.70")}); !errors.Is(err, providers.ErrIPInUse) {
		t.Fatalf("Move of a pod's address seen on the CNI's interface: want ErrIPInUse, got %v", err)
	}
	wantCalls(t, "refusing a pod's address", e.sim.Actions(), before, map[string]int{"DescribeNetworkInterfaces": 1})
	e.wantOn(t, "10.0.1.70", eniA1)

	must(t, p.Move(ctx, gwA1, []netip.Addr{ip("10.0.1.50")}))
	must(t, p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")}))  // seen free
	must(t, cni.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")})) // a pod gets it
	before = e.sim.Actions()
	if err := p.Move(ctx, gwA2, []netip.Addr{ip("10.0.1.50")}); !errors.Is(err, providers.ErrIPInUse) {
		t.Fatalf("Move of an address seen free and since given to a pod: want ErrIPInUse, got %v", err)
	}
	wantCalls(t, "refusing it", e.sim.Actions(), before, map[string]int{"AssignPrivateIpAddresses": 1, "DescribeNetworkInterfaces": 1})
	e.wantOn(t, "10.0.1.50", eniA1)
}
