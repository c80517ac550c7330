package aws

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// TestLocateAfterACrash: one provider places IPs and "crashes" (is dropped with its caches); a new one
// finds every IP where the cloud has it, and repairs from there.
func TestLocateAfterACrash(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	ctx := context.Background()
	before := e.provider(t, Options{})
	must(t, before.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	must(t, before.Assign(ctx, gwA2, providers.Assignment{IP: ip("10.0.1.51")}))
	must(t, before.Move(ctx, gwB3, []netip.Addr{ip("10.0.2.52")}))

	after := e.provider(t, Options{VPCID: "vpc-0e000000000000001"})
	where, err := after.Locate(ctx, []netip.Addr{ip("10.0.1.50"), ip("10.0.1.51"), ip("10.0.2.52"), ip("10.0.1.99"), ip("10.0.1.11")})
	must(t, err)
	info, err := after.DescribeNode(ctx, gwA1)
	must(t, err)
	want := map[netip.Addr]providers.Location{
		ip("10.0.1.50"): {IP: ip("10.0.1.50"), Instance: info.Instance, Interface: eniA1, PublicIP: ip("198.51.100.10"), PublicIPID: eip1},
		ip("10.0.1.51"): {IP: ip("10.0.1.51"), Instance: "i-0a000000000000002", Interface: eniA2},
		ip("10.0.2.52"): {IP: ip("10.0.2.52"), Instance: "i-0b000000000000003", Interface: eniB3},
		ip("10.0.1.11"): {IP: ip("10.0.1.11"), Instance: info.Instance, Interface: eniA1, Primary: true,
			InUse: "10.0.1.11 is the primary address of " + eniA1 + " (instance " + info.Instance + "), not an egress IP"},
	}
	if len(where) != len(want) {
		t.Fatalf("located %v, want %v", where, want)
	}
	for addr, loc := range want {
		if where[addr] != loc {
			t.Errorf("%s: got %+v, want %+v", addr, where[addr], loc)
		}
	}
	must(t, after.Move(ctx, gwA1, []netip.Addr{ip("10.0.1.51")})) // the new leader's decision
	e.wantOn(t, "10.0.1.51", eniA1)
}

// TestEventualConsistency: Describe answers lag writes by a minute here. Assign and Release still do the
// right thing, because EC2's answers to the writes themselves are the truth, and an IP never lands on two
// nodes.
func TestEventualConsistency(t *testing.T) {
	clock := ec2sim.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, ec2sim.Options{Clock: clock.Now})
	p := e.provider(t, Options{})
	ctx := context.Background()
	e.sim.SetVisibilityDelay(time.Minute)
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")})) // Describe still says nowhere
	if err := p.Assign(ctx, gwA2, providers.Assignment{IP: ip("10.0.1.50")}); err == nil {
		t.Fatal("assigning an IP that another node holds (though Describe lags) succeeded")
	}
	e.wantOn(t, "10.0.1.50", eniA1)
	where, err := p.Locate(ctx, []netip.Addr{ip("10.0.1.50")})
	must(t, err)
	if len(where) != 0 {
		t.Fatalf("Describe was expected to lag, located %v", where)
	}
	must(t, p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	e.wantOn(t, "10.0.1.50", "") // released although Describe never showed it
	clock.Step(2 * time.Minute)
	where, err = p.Locate(ctx, []netip.Addr{ip("10.0.1.50")})
	must(t, err)
	if len(where) != 0 {
		t.Fatalf("after the delay Describe shows %v", where)
	}
}

// TestLocateReportsAnIPOfTwoVPCsAlone: two VPCs reuse 10.0.1.0/24 and --aws-vpc-id is unset. Before any
// node is known, the IP found in both is reported alone as in use, with advice, and the others are
// answered; once the provider has resolved a node, Locate searches the cluster's VPC and answers for it.
func TestLocateReportsAnIPOfTwoVPCsAlone(t *testing.T) {
	m, err := ec2sim.ParseModel([]byte(`
subnets:
- {id: subnet-0a1, vpc: vpc-0a1, cidr: 10.0.1.0/24, zone: us-east-1a}
- {id: subnet-0b1, vpc: vpc-0b1, cidr: 10.0.1.0/24, zone: us-east-1a}
instances:
- {id: i-0a000000000000001, type: m5.large, interfaces: [{id: eni-0a1, subnet: subnet-0a1, ips: [10.0.1.10, 10.0.1.50], tags: {egressgw.io/cluster: other}}]}
- {id: i-0b000000000000001, type: m5.large, interfaces: [{id: eni-0b1, subnet: subnet-0b1, ips: [10.0.1.11, 10.0.1.50, 10.0.1.60], tags: {egressgw.io/cluster: my-cluster}}]}
`))
	must(t, err)
	e := newEnvFrom(t, m, ec2sim.Options{AllowedActions: []string{"DescribeInstances", "DescribeNetworkInterfaces", "DescribeSubnets", "DescribeInstanceTypes"}})
	ips := []netip.Addr{ip("10.0.1.50"), ip("10.0.1.60")}
	p := e.provider(t, Options{})
	where, err := p.Locate(t.Context(), ips)
	must(t, err)
	if got := where[ip("10.0.1.50")]; !strings.Contains(got.InUse, "--aws-vpc-id") || got.Interface != "" {
		t.Errorf("the IP in two VPCs: want it reported alone as in use, with advice, got %+v", got)
	}
	if got := where[ip("10.0.1.60")]; got.Interface != "eni-0b1" || got.InUse != "" {
		t.Errorf("the IP in one VPC: want it answered, got %+v", got)
	}
	_, err = p.DescribeNode(t.Context(), providers.Node{Name: "gw", ProviderID: "aws:///us-east-1a/i-0b000000000000001"})
	must(t, err)
	where, err = p.Locate(t.Context(), ips)
	must(t, err)
	if got := where[ip("10.0.1.50")]; got.Interface != "eni-0b1" || got.InUse != "" {
		t.Fatalf("with the cluster's VPC known from its node: want eni-0b1, got %+v", got)
	}
	where, err = e.provider(t, Options{VPCID: "vpc-0a1"}).Locate(t.Context(), ips)
	must(t, err)
	if where[ip("10.0.1.50")].Interface != "eni-0a1" || len(where) != 1 {
		t.Fatalf("scoped to vpc-0a1: %v", where)
	}
}
