package aws

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// egressENIs are the interfaces the simulator has with egressgw's node tag for instance, attached or not.
func (e *env) egressENIs(t testing.TB, p *Provider, instance string) []types.NetworkInterface {
	t.Helper()
	out, err := p.ec2.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		filter("tag:"+TagNode, instance)}})
	must(t, err)
	return out.NetworkInterfaces
}

func tagsOf(n types.NetworkInterface) map[string]string {
	out := map[string]string{}
	for _, t := range n.TagSet {
		out[*t.Key] = *t.Value
	}
	return out
}

func TestEnsureCreatesOneTaggedInterfaceAndARestartFindsIt(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	p := e.provider(t, dedicated())
	info, err := p.EnsureAttachment(t.Context(), gwA1)
	must(t, err)
	created := e.sim.Actions()
	wantCalls(t, "creating the interface", created, nil, map[string]int{"DescribeInstances": 1, "DescribeNetworkInterfaces": 2,
		"DescribeSubnets": 1, "DescribeInstanceTypes": 1, "CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1})
	enis := e.egressENIs(t, p, "i-0a000000000000001")
	if len(enis) != 1 || *enis[0].NetworkInterfaceId != info.Interface {
		t.Fatalf("want one egress interface, the one EnsureAttachment returned (%s): %+v", info.Interface, enis)
	}
	n := enis[0]
	wantTags := map[string]string{TagNoManage: "true", TagCluster: testCluster, TagNode: "i-0a000000000000001", TagRole: RoleEgress, "Name": "egressgw-i-0a000000000000001"}
	if got := tagsOf(n); !equalMaps(got, wantTags) {
		t.Fatalf("tags\n got %v\nwant %v", got, wantTags)
	}
	if a := n.Attachment; a == nil || *a.DeviceIndex != 1 || !*a.DeleteOnTermination || *a.InstanceId != "i-0a000000000000001" || *n.SubnetId != "subnet-0a000000000000001" {
		t.Fatalf("attachment: %+v in %s", n.Attachment, *n.SubnetId)
	}
	want := providers.NodeInfo{Instance: "i-0a000000000000001", Interface: info.Interface, Zone: "us-east-1a", SubnetID: "subnet-0a000000000000001",
		Subnet: netip.MustParsePrefix("10.0.1.0/24"), Capacity: 10, Addresses: []netip.Addr{ip(*n.PrivateIpAddress)}}
	if !equalInfo(info, want) || !info.Dedicated || info.MAC != *n.MacAddress || info.PrimaryIP != ip(*n.PrivateIpAddress) || info.Gateway != ip("10.0.1.1") || info.Free() != 9 {
		t.Fatalf("node info\n got %+v\nwant %+v with the ENI's MAC, primary IP and the subnet's router", info, want)
	}
	// A restarted manager (a fresh provider) finds the interface by its tags and creates nothing.
	restarted := e.provider(t, dedicated())
	before := e.sim.Actions()
	_, err = restarted.EnsureAttachment(t.Context(), gwA1)
	must(t, err)
	wantCalls(t, "finding it after a restart", e.sim.Actions(), before, map[string]int{"DescribeInstances": 1, "DescribeNetworkInterfaces": 1,
		"DescribeSubnets": 1, "DescribeInstanceTypes": 1})
	for _, f := range []func(context.Context, providers.Node) (providers.NodeInfo, error){restarted.DescribeNode, restarted.EnsureAttachment} {
		again, err := f(t.Context(), gwA1)
		must(t, err)
		if again.Interface != info.Interface {
			t.Fatalf("after a restart: %s, before: %s", again.Interface, info.Interface)
		}
	}
	if c, a, m := e.calls("CreateNetworkInterface"), e.calls("AttachNetworkInterface"), e.calls("ModifyNetworkInterfaceAttribute"); c != 1 || a != 1 || m != 1 {
		t.Fatalf("one create, attach and DeleteOnTermination change in all, got %d, %d, %d", c, a, m)
	}
}

func TestDescribeNodeCreatesNothing(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	p := e.provider(t, dedicated())
	if _, err := p.DescribeNode(t.Context(), gwA2); !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "no egress interface yet") {
		t.Fatalf("want ErrNotFound for a gateway without its interface, got %v", err)
	}
	if e.calls("CreateNetworkInterface") != 0 {
		t.Fatal("DescribeNode created an interface")
	}
}

// TestTwoManagersRacingMakeOneInterface: two replicas (two providers) ensure the same gateway's interface
// at once, several times each; EC2 ends with one interface, and both use it.
func TestTwoManagersRacingMakeOneInterface(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	e.sim.SetLatency(20 * time.Millisecond) // every call overlaps with the others' calls
	replicas := []*Provider{e.provider(t, dedicated()), e.provider(t, dedicated())}
	var mu sync.Mutex
	got := map[string]bool{}
	var wg sync.WaitGroup
	for _, p := range replicas {
		for range 4 {
			wg.Go(func() {
				info, err := p.EnsureAttachment(t.Context(), gwA1)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[info.Interface] = true
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if enis := e.egressENIs(t, replicas[0], "i-0a000000000000001"); len(enis) != 1 || len(got) != 1 || !got[*enis[0].NetworkInterfaceId] {
		t.Fatalf("want one interface used by both replicas; simulator has %d, replicas saw %v", len(enis), got)
	}
}

// TestCrashBetweenCreateAndAttachLeavesOneInterface: the first try creates the interface and then fails
// to attach it (as if the manager died in between); the next manager attaches that same interface.
func TestCrashBetweenCreateAndAttachLeavesOneInterface(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	e.sim.InjectError("AttachNetworkInterface", "InvalidParameterCombination", 1)
	if _, err := e.provider(t, dedicated()).EnsureAttachment(t.Context(), gwA1); err == nil {
		t.Fatal("the injected attach failure was not reported")
	}
	info, err := e.provider(t, dedicated()).EnsureAttachment(t.Context(), gwA1)
	must(t, err)
	enis := e.egressENIs(t, e.provider(t, dedicated()), "i-0a000000000000001")
	if len(enis) != 1 || *enis[0].NetworkInterfaceId != info.Interface || enis[0].Attachment == nil {
		t.Fatalf("want the one interface of the first try, attached: %+v", enis)
	}
	if e.calls("CreateNetworkInterface") != 1 {
		t.Fatalf("the leftover was not reused: %d creates", e.calls("CreateNetworkInterface"))
	}
}

// withPreProvisioned adds to the worker instance a second interface as a launch template would: tagged for
// egressgw but not with the node tag, and not deleted on termination.
func withPreProvisioned(t testing.TB, tags map[string]string) ec2sim.Model {
	m, err := ec2sim.LoadModel(modelFile)
	must(t, err)
	for i, in := range m.Instances {
		if in.ID == "i-0a000000000000002" {
			m.Instances[i].Interfaces = append(in.Interfaces, ec2sim.InterfaceSpec{ID: "eni-0a0000000000000f2", Subnet: "subnet-0a000000000000001",
				IPs: []string{"10.0.1.242"}, Tags: tags})
		}
	}
	return m
}

func TestPreProvisionedInterfaceIsAdoptedAndKept(t *testing.T) {
	e := newEnvFrom(t, withPreProvisioned(t, map[string]string{TagNoManage: "true", TagCluster: testCluster, TagRole: RoleEgress}), ec2sim.Options{})
	p := e.provider(t, dedicated())
	info, err := p.EnsureAttachment(t.Context(), gwA2)
	must(t, err)
	if info.Interface != "eni-0a0000000000000f2" || e.calls("CreateNetworkInterface") != 0 || e.calls("ModifyNetworkInterfaceAttribute") != 1 {
		t.Fatalf("want the operator's interface adopted (and made to go with the instance): %+v, %v", info, e.sim.Actions())
	}
	must(t, p.RemoveAttachment(t.Context(), gwA2))
	if h, ok := e.sim.Where(ip("10.0.1.242")); !ok || h.Instance != "i-0a000000000000002" {
		t.Fatalf("RemoveAttachment removed the operator's interface: %+v", h)
	}
}

func TestPreProvisionedInterfaceWithoutNoManageIsRefused(t *testing.T) {
	e := newEnvFrom(t, withPreProvisioned(t, map[string]string{TagCluster: testCluster, TagRole: RoleEgress}), ec2sim.Options{})
	_, err := e.provider(t, dedicated()).EnsureAttachment(t.Context(), gwA2)
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), TagNoManage+"=true") {
		t.Fatalf("want ErrPermanent naming the missing tag, got %v", err)
	}
}

func TestInterfaceLimitIsCapacityExhaustedNamingTheType(t *testing.T) {
	m, err := ec2sim.LoadModel(modelFile)
	must(t, err)
	m.Instances[2].Interfaces = append(m.Instances[2].Interfaces, ec2sim.InterfaceSpec{ID: "eni-0b0000000000000f3", Subnet: "subnet-0b000000000000002", IPs: []string{"10.0.2.243"}})
	e := newEnvFrom(t, m, ec2sim.Options{})
	_, err = e.provider(t, dedicated()).EnsureAttachment(t.Context(), gwB3) // t3.micro: two interfaces
	if !errors.Is(err, providers.ErrCapacityExhausted) || !strings.Contains(err.Error(), "t3.micro") || !strings.Contains(err.Error(), "all 2 network interfaces") {
		t.Fatalf("want ErrCapacityExhausted naming t3.micro and its limit of 2, got %v", err)
	}
	if e.calls("CreateNetworkInterface") != 0 {
		t.Fatal("an interface was created that could not be attached")
	}
}

func TestMissingPermissionIsPermanentAndNamesTheAction(t *testing.T) {
	allowed := slices.DeleteFunc(policyActions(t), func(a string) bool { return a == "CreateNetworkInterface" })
	e := newEnv(t, ec2sim.Options{AllowedActions: allowed})
	_, err := e.provider(t, dedicated()).EnsureAttachment(t.Context(), gwA1)
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "does not allow ec2:CreateNetworkInterface") {
		t.Fatalf("want ErrPermanent naming ec2:CreateNetworkInterface, got %v", err)
	}
}

// withEgressSubnet adds a public subnet in us-east-1a, tagged as the egress subnet.
func withEgressSubnet(t testing.TB) ec2sim.Model {
	m, err := ec2sim.LoadModel(modelFile)
	must(t, err)
	m.Subnets = append(m.Subnets, ec2sim.SubnetSpec{ID: "subnet-0a0000000000000e1", VPC: "vpc-0e000000000000001", CIDR: "10.0.101.0/24",
		Zone: "us-east-1a", Tags: map[string]string{"egressgw.io/egress-subnet": "true"}})
	return m
}

func TestEgressSubnetChosenByTagsOrByZone(t *testing.T) {
	e := newEnvFrom(t, withEgressSubnet(t), ec2sim.Options{})
	byTags := dedicated()
	byTags.EgressSubnetTags = map[string]string{"egressgw.io/egress-subnet": "true"}
	info, err := e.provider(t, byTags).EnsureAttachment(t.Context(), gwA1)
	must(t, err)
	if info.SubnetID != "subnet-0a0000000000000e1" || info.Subnet != netip.MustParsePrefix("10.0.101.0/24") || info.Gateway != ip("10.0.101.1") || !info.Subnet.Contains(info.PrimaryIP) {
		t.Fatalf("want the interface in the tagged subnet: %+v", info)
	}
	if _, err := e.provider(t, byTags).EnsureAttachment(t.Context(), gwB3); !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "zone us-east-1b") {
		t.Fatalf("a zone without a tagged subnet: want ErrPermanent naming the zone, got %v", err)
	}
	byZone := dedicated()
	byZone.EgressSubnets = map[string]string{"us-east-1a": "subnet-0a0000000000000e1", "us-east-1b": "subnet-0a0000000000000e1"}
	info, err = e.provider(t, byZone).EnsureAttachment(t.Context(), gwA2)
	must(t, err)
	if info.SubnetID != "subnet-0a0000000000000e1" {
		t.Fatalf("want the interface in the subnet named for the zone: %+v", info)
	}
	if _, err := e.provider(t, byZone).EnsureAttachment(t.Context(), gwB3); !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "named for zone us-east-1b is in zone us-east-1a") {
		t.Fatalf("a subnet of another zone: want ErrPermanent, got %v", err)
	}
}

// TestFailoverBetweenDedicatedInterfacesIsOneCall: with both gateways' interfaces ensured (as the manager
// does for every gateway candidate) and the IP seen on the first one within the TTL (the provider's own
// write, or the manager's steady-state Locate), a failover is one AssignPrivateIpAddresses call, and the
// Elastic IP follows. A provider that knows nothing of the IP (a new leader's) reads first: two calls.
func TestFailoverBetweenDedicatedInterfacesIsOneCall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ttl   time.Duration
		calls map[string]int
	}{
		{"seen", 0, map[string]int{"AssignPrivateIpAddresses": 1}},
		{"not seen", -1, map[string]int{"DescribeNetworkInterfaces": 1, "AssignPrivateIpAddresses": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ec2sim.Options{})
			opts := dedicated()
			opts.LastSeenTTL = tc.ttl
			p := e.provider(t, opts)
			a1, err := p.EnsureAttachment(t.Context(), gwA1)
			must(t, err)
			a2, err := p.EnsureAttachment(t.Context(), gwA2)
			must(t, err)
			must(t, p.Move(t.Context(), gwA1, []netip.Addr{ip("10.0.1.50")}))
			must(t, p.Assign(t.Context(), gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
			_, err = p.Locate(t.Context(), []netip.Addr{ip("10.0.1.50")}) // the manager's steady state
			must(t, err)
			before := e.sim.Actions()
			must(t, p.Move(t.Context(), gwA2, []netip.Addr{ip("10.0.1.50")}))
			wantCalls(t, "the failover", e.sim.Actions(), before, tc.calls)
			if h := e.wantOn(t, "10.0.1.50", a2.Interface); h.ElasticIP != eip1 || a1.Interface == a2.Interface {
				t.Fatalf("the Elastic IP did not follow to the second gateway's interface: %+v", h)
			}
		})
	}
}

func TestRemoveAttachmentDeletesOnlyAnEmptyInterface(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	p := e.provider(t, dedicated())
	info, err := p.EnsureAttachment(t.Context(), gwA1)
	must(t, err)
	must(t, p.Move(t.Context(), gwA1, []netip.Addr{ip("10.0.1.50")}))
	if err := p.RemoveAttachment(t.Context(), gwA1); !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "10.0.1.50") {
		t.Fatalf("an interface holding an egress IP must stay: %v", err)
	}
	must(t, p.Release(t.Context(), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	before := e.sim.Actions()
	must(t, p.RemoveAttachment(t.Context(), gwA1))
	wantCalls(t, "removing the interface", e.sim.Actions(), before, map[string]int{"DescribeNetworkInterfaces": 1, "DetachNetworkInterface": 1, "DeleteNetworkInterface": 1})
	if enis := e.egressENIs(t, p, "i-0a000000000000001"); len(enis) != 0 {
		t.Fatalf("the interface is still there: %+v", enis)
	}
	if _, ok := e.sim.Where(info.PrimaryIP); ok || e.calls("DetachNetworkInterface") != 1 || e.calls("DeleteNetworkInterface") != 1 {
		t.Fatalf("want one detach and one delete: %v", e.sim.Actions())
	}
	// A later ensure (the node is a gateway again) makes a new one.
	again, err := p.EnsureAttachment(t.Context(), gwA1)
	must(t, err)
	if again.Interface == info.Interface || len(e.egressENIs(t, p, "i-0a000000000000001")) != 1 {
		t.Fatalf("a gateway again: %+v", again)
	}
}

// TestRemovalWaitsForTheDetach: EC2 detaches asynchronously; the delete that comes too early is a
// retryable refusal, and the next try finishes the job.
func TestRemovalWaitsForTheDetach(t *testing.T) {
	clock := ec2sim.NewManualClock(time.Now())
	e := newEnv(t, ec2sim.Options{Clock: clock.Now})
	e.sim.SetDetachDelay(5 * time.Second)
	p := e.provider(t, dedicated())
	_, err := p.EnsureAttachment(t.Context(), gwA1)
	must(t, err)
	if err := p.RemoveAttachment(t.Context(), gwA1); !providers.Retryable(err) || !strings.Contains(err.Error(), "still detaching") {
		t.Fatalf("a delete during the detach: want a retryable error, got %v", err)
	}
	clock.Step(6 * time.Second)
	must(t, p.RemoveAttachment(t.Context(), gwA1))
	if enis := e.egressENIs(t, p, "i-0a000000000000001"); len(enis) != 0 || e.calls("DetachNetworkInterface") != 1 {
		t.Fatalf("after the detach: %d interfaces, %d detaches", len(enis), e.calls("DetachNetworkInterface"))
	}
}

// TestDeviceIndexTakenMeanwhileIsRetried: another tool (the VPC CNI) attaches its own interface at the
// index the provider chose, and Describe does not show it yet; the next free index is used.
func TestDeviceIndexTakenMeanwhileIsRetried(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	p := e.provider(t, dedicated())
	cni, err := p.ec2.CreateNetworkInterface(t.Context(), &ec2.CreateNetworkInterfaceInput{SubnetId: sdkaws.String("subnet-0a000000000000001"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{
			{Key: sdkaws.String(TagCluster), Value: sdkaws.String(testCluster)}, {Key: sdkaws.String(TagNoManage), Value: sdkaws.String("true")}}}}})
	must(t, err)
	e.sim.SetVisibilityDelay(time.Hour)
	_, err = p.ec2.AttachNetworkInterface(t.Context(), &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: cni.NetworkInterface.NetworkInterfaceId,
		InstanceId: sdkaws.String("i-0a000000000000001"), DeviceIndex: sdkaws.Int32(1)})
	must(t, err)
	info, err := p.EnsureAttachment(t.Context(), gwA1)
	must(t, err)
	e.sim.SetVisibilityDelay(0)
	out, err := p.ec2.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{info.Interface}})
	must(t, err)
	if a := out.NetworkInterfaces[0].Attachment; a == nil || *a.DeviceIndex != 2 || e.calls("AttachNetworkInterface") != 3 {
		t.Fatalf("want the egress interface at device index 2 after one refused try (3 attach calls with the other tool's): %+v, %d", a, e.calls("AttachNetworkInterface"))
	}
}

func TestAttachmentsListTheInstancesWithAnInterface(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	p := e.provider(t, dedicated())
	for _, n := range []providers.Node{gwA2, gwA1} {
		_, err := p.EnsureAttachment(t.Context(), n)
		must(t, err)
	}
	got, err := e.provider(t, dedicated()).Attachments(t.Context())
	must(t, err)
	if len(got) != 2 || got[0].Name != "i-0a000000000000001" || got[1].Name != "i-0a000000000000002" || got[0].ProviderID != "aws:///i-0a000000000000001" {
		t.Fatalf("attachments: %+v", got)
	}
}

func TestTerminationDeletesTheInterfaceWithTheInstance(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	p := e.provider(t, dedicated())
	info, err := p.EnsureAttachment(t.Context(), gwA2)
	must(t, err)
	must(t, e.sim.TerminateInstance("i-0a000000000000002"))
	if _, ok := e.sim.Where(info.PrimaryIP); ok || len(e.egressENIs(t, p, "i-0a000000000000002")) != 0 {
		t.Fatal("the egress interface outlived its instance (DeleteOnTermination not set)")
	}
	must(t, p.RemoveAttachment(t.Context(), gwA2)) // nothing left to do
}

// TestCapacityCountsPrefixes: a /28 prefix delegated to the interface (the VPC CNI's prefix mode does this
// to the primary ENI) takes one address slot.
func TestCapacityCountsPrefixes(t *testing.T) {
	e, p := start(t)
	_, err := p.ec2.AssignPrivateIpAddresses(t.Context(), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: sdkaws.String(eniA1), Ipv4PrefixCount: sdkaws.Int32(3)})
	must(t, err)
	info, err := p.DescribeNode(t.Context(), gwA1)
	must(t, err)
	if len(info.Prefixes) != 3 || info.Capacity != 10 || info.Free() != 6 {
		t.Fatalf("10 slots - primary - 3 prefixes = 6 free, got %d free of %+v", info.Free(), info)
	}
	six := []netip.Addr{ip("10.0.1.100"), ip("10.0.1.101"), ip("10.0.1.102"), ip("10.0.1.103"), ip("10.0.1.104"), ip("10.0.1.105")}
	must(t, p.Move(t.Context(), gwA1, six))
	if err := p.Move(t.Context(), gwA1, []netip.Addr{ip("10.0.1.106")}); !errors.Is(err, providers.ErrCapacityExhausted) {
		t.Fatalf("the seventh address: want ErrCapacityExhausted, got %v", err)
	}
	e.wantOn(t, "10.0.1.105", eniA1)
}

// wantCalls checks the calls the simulator received between two readings of its counters.
func wantCalls(t testing.TB, what string, after, before, want map[string]int) {
	t.Helper()
	for action, n := range after {
		if d := n - before[action]; d != want[action] {
			t.Errorf("%s: %d %s calls, want %d", what, d, action, want[action])
		}
	}
	for action, n := range want {
		if _, seen := after[action]; !seen && n != 0 {
			t.Errorf("%s: no %s call, want %d", what, action, n)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
