package ec2sim

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func assign(c *ec2.Client, eniID string, reassign bool, ips ...string) error {
	_, err := c.AssignPrivateIpAddresses(context.Background(), &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(eniID), PrivateIpAddresses: ips, AllowReassignment: aws.Bool(reassign)})
	return err
}

func associate(c *ec2.Client, alloc, eniID, ip string) (string, error) {
	out, err := c.AssociateAddress(context.Background(), &ec2.AssociateAddressInput{
		AllocationId: aws.String(alloc), NetworkInterfaceId: aws.String(eniID), PrivateIpAddress: aws.String(ip), AllowReassociation: aws.Bool(true)})
	if err != nil {
		return "", err
	}
	return *out.AssociationId, nil
}

func address(t *testing.T, c *ec2.Client, alloc string) types.Address {
	out, err := c.DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{AllocationIds: []string{alloc}})
	must(t, err)
	return out.Addresses[0]
}

func TestAssignRefusesWhatEC2Refuses(t *testing.T) {
	sim, c, _ := startSim(t, Options{})
	wantCode(t, assign(c, eniA1, false, "10.0.2.50"), CodeInvalidParameterValue, http.StatusBadRequest)
	for _, reserved := range []string{"10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.255"} { // AWS's five per subnet
		wantCode(t, assign(c, eniA1, false, reserved), CodeInvalidParameterValue, http.StatusBadRequest)
		wantCode(t, assign(c, eniA1, true, reserved), CodeInvalidParameterValue, http.StatusBadRequest)
	}
	wantCode(t, assign(c, eniA1, false, "10.0.1.60", "10.0.2.60"), CodeInvalidParameterValue, http.StatusBadRequest)
	wantHolder(t, sim, "10.0.1.60", "") // a refused call changes nothing, even for its valid addresses
	must(t, assign(c, eniB3, false, "10.0.2.50"))
	wantCode(t, assign(c, eniB3, false, "10.0.2.51"), CodeIPLimitExceeded, http.StatusBadRequest)
	wantHolder(t, sim, "10.0.2.51", "")
	must(t, assign(c, eniB3, false, "10.0.2.50")) // already there: no capacity needed, no error
}

func TestReassignmentMovesTheIPAndItsElasticIP(t *testing.T) {
	var mu sync.Mutex
	var events []Event
	sim, c, _ := startSim(t, Options{OnChange: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	must(t, assign(c, eniA1, false, "10.0.1.50"))
	_, err := associate(c, eip1, eniA1, "10.0.1.50")
	must(t, err)
	wantCode(t, assign(c, eniA2, false, "10.0.1.50"), CodeInvalidParameterValue, http.StatusBadRequest)
	wantHolder(t, sim, "10.0.1.50", eniA1)
	must(t, assign(c, eniA2, true, "10.0.1.50"))
	if h := wantHolder(t, sim, "10.0.1.50", eniA2); h.ElasticIP != eip1 {
		t.Fatalf("the Elastic IP did not follow its private IP: %+v", h)
	}
	if a := address(t, c, eip1); *a.NetworkInterfaceId != eniA2 || *a.InstanceId != gwA2 || *a.PrivateIpAddress != "10.0.1.50" {
		t.Fatalf("DescribeAddresses after the move: %+v", a)
	}
	must(t, assign(c, eniA2, true, "10.0.1.50"))
	wantCode(t, assign(c, eniA2, true, "10.0.1.11"), CodeInvalidParameterValue, http.StatusBadRequest)
	wantHolder(t, sim, "10.0.1.11", eniA1)
	mu.Lock()
	defer mu.Unlock()
	want := []Event{
		{IP: netip.MustParseAddr("10.0.1.50"), VPC: "vpc-0e000000000000001", Instance: gwA1, Interface: eniA1, NextHop: netip.MustParseAddr("10.0.1.11")},
		{IP: netip.MustParseAddr("10.0.1.50"), VPC: "vpc-0e000000000000001", Instance: gwA2, Interface: eniA2, NextHop: netip.MustParseAddr("10.0.1.12"),
			PrevInstance: gwA1, PrevInterface: eniA1},
	}
	for i := range events {
		if events[i].MAC == "" {
			t.Errorf("event %d names interface %s without its MAC", i, events[i].Interface)
		}
		events[i].MAC = ""
	}
	if !slices.Equal(events, want) {
		t.Fatalf("events\n got %+v\nwant %+v", events, want)
	}
}

func TestUnassignAndDisassociate(t *testing.T) {
	sim, c, _ := startSim(t, Options{})
	ctx := context.Background()
	must(t, assign(c, eniA1, false, "10.0.1.50"))
	_, err := associate(c, eip1, eniA1, "10.0.1.50")
	must(t, err)
	unassign := func(eniID, ip string) error {
		_, err := c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID), PrivateIpAddresses: []string{ip}})
		return err
	}
	wantCode(t, unassign(eniA2, "10.0.1.50"), CodeInvalidParameterValue, http.StatusBadRequest)
	wantCode(t, unassign(eniA1, "10.0.1.11"), CodeInvalidParameterValue, http.StatusBadRequest)
	must(t, unassign(eniA1, "10.0.1.50"))
	wantHolder(t, sim, "10.0.1.50", "")
	if a := address(t, c, eip1); a.AssociationId != nil {
		t.Fatalf("the Elastic IP stayed associated with an unassigned address: %+v", a)
	}
	assoc, err := associate(c, eip2, eniA1, "10.0.1.11")
	must(t, err)
	_, err = c.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(assoc)})
	must(t, err)
	_, err = c.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(assoc)})
	wantCode(t, err, CodeAssociationNotFound, http.StatusBadRequest)
}

func TestUnknownIDsGetEC2Codes(t *testing.T) {
	_, c, endpoint := startSim(t, Options{})
	ctx := context.Background()
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0dead0000000000001"}})
	wantCode(t, err, CodeInstanceNotFound, http.StatusBadRequest)
	wantCode(t, assign(c, "eni-0dead0000000000001", true, "10.0.1.50"), CodeENINotFound, http.StatusBadRequest)
	_, err = associate(c, "eipalloc-0dead0000000000001", eniA1, "10.0.1.11")
	wantCode(t, err, CodeAllocationNotFound, http.StatusBadRequest)
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0dead0000000000001"}})
	wantCode(t, err, CodeSubnetNotFound, http.StatusBadRequest)
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"x9.huge"}})
	wantCode(t, err, CodeInvalidInstanceType, http.StatusBadRequest)
	_, err = c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"blue"}}}})
	wantCode(t, err, CodeInvalidParameterValue, http.StatusBadRequest)
	if status, body := rawCall(t, endpoint, url.Values{"Action": {"TerminateInstances"}}); status != http.StatusBadRequest || !contains(body, CodeInvalidAction) {
		t.Fatalf("unknown action: %d %s", status, body)
	}
}

func TestDescribeFiltersAndPages(t *testing.T) {
	_, c, _ := startSim(t, Options{})
	ctx := context.Background()
	out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("addresses.private-ip-address"), Values: []string{"10.0.1.140", "10.9.9.9"}}}})
	must(t, err)
	if len(out.NetworkInterfaces) != 1 || *out.NetworkInterfaces[0].NetworkInterfaceId != "eni-0c000000000000004" {
		t.Fatalf("filter by secondary address: %+v", out.NetworkInterfaces)
	}
	pages := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)})
	var seen, calls int
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		must(t, err)
		seen, calls = seen+len(page.InstanceTypes), calls+1
	}
	if seen != len(builtinTypes) || calls != (len(builtinTypes)+4)/5 {
		t.Fatalf("%d instance types in pages of 5 expected, got %d in %d pages", len(builtinTypes), seen, calls)
	}
	inst, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{"i-0a*"}}}})
	must(t, err)
	if len(inst.Reservations) != 2 || inst.Reservations[1].Instances[0].NetworkInterfaces[0].Attachment.DeviceIndex == nil {
		t.Fatalf("wildcard filter: %+v", inst.Reservations)
	}
}

func TestTerminateInstanceFreesItsAddresses(t *testing.T) {
	sim, c, _ := startSim(t, Options{})
	must(t, assign(c, eniA1, false, "10.0.1.50"))
	_, err := associate(c, eip1, eniA1, "10.0.1.50")
	must(t, err)
	must(t, sim.TerminateInstance(gwA1))
	wantHolder(t, sim, "10.0.1.50", "")
	if a := address(t, c, eip1); a.AssociationId != nil {
		t.Fatalf("Elastic IP still associated after termination: %+v", a)
	}
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{gwA1}})
	must(t, err)
	if in := out.Reservations[0].Instances[0]; in.State.Name != types.InstanceStateNameTerminated || len(in.NetworkInterfaces) != 0 {
		t.Fatalf("terminated instance: %+v", in)
	}
	must(t, assign(c, eniA2, false, "10.0.1.50")) // the freed address can be taken without reassignment
}

func contains(body []byte, s string) bool { return bytes.Contains(body, []byte(s)) }
