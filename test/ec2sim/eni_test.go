package ec2sim

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func createENI(c *ec2.Client, subnet, token string, tags map[string]string) (*types.NetworkInterface, error) {
	in := &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet), Description: aws.String("egress"), ClientToken: aws.String(token)}
	if len(tags) > 0 {
		spec := types.TagSpecification{ResourceType: types.ResourceTypeNetworkInterface}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = []types.TagSpecification{spec}
	}
	out, err := c.CreateNetworkInterface(context.Background(), in)
	if err != nil {
		return nil, err
	}
	return out.NetworkInterface, nil
}

func attachENI(c *ec2.Client, eniID, instance string, device int32) (string, error) {
	out, err := c.AttachNetworkInterface(context.Background(), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(eniID), InstanceId: aws.String(instance), DeviceIndex: aws.Int32(device)})
	if err != nil {
		return "", err
	}
	return *out.AttachmentId, nil
}

func describeENI(t *testing.T, c *ec2.Client, eniID string) types.NetworkInterface {
	t.Helper()
	out, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniID}})
	must(t, err)
	return out.NetworkInterfaces[0]
}

func TestCreateNetworkInterfaceIsIdempotentByClientToken(t *testing.T) {
	_, c, _ := startSim(t, Options{})
	tags := map[string]string{"egressgw.io/node": gwA1}
	first, err := createENI(c, "subnet-0a000000000000001", "token-1", tags)
	must(t, err)
	again, err := createENI(c, "subnet-0a000000000000001", "token-1", tags)
	must(t, err)
	if *again.NetworkInterfaceId != *first.NetworkInterfaceId {
		t.Fatalf("the same client token made a second interface: %s and %s", *first.NetworkInterfaceId, *again.NetworkInterfaceId)
	}
	_, err = createENI(c, "subnet-0b000000000000002", "token-1", tags)
	wantCode(t, err, CodeIdempotentMismatch, http.StatusBadRequest)
	other, err := createENI(c, "subnet-0a000000000000001", "token-2", tags)
	must(t, err)
	if *other.NetworkInterfaceId == *first.NetworkInterfaceId || *other.PrivateIpAddress == *first.PrivateIpAddress {
		t.Fatalf("another token must make another interface with another address: %+v %+v", first, other)
	}
	n := describeENI(t, c, *first.NetworkInterfaceId)
	if n.Status != types.NetworkInterfaceStatusAvailable || n.Attachment != nil || len(n.TagSet) != 1 || *n.PrivateIpAddress != "10.0.1.4" {
		t.Fatalf("a new interface is available, untouched, tagged and has the subnet's lowest free address: %+v", n)
	}
	_, err = createENI(c, "subnet-0dead000000000001", "token-3", nil)
	wantCode(t, err, CodeSubnetNotFound, http.StatusBadRequest)
	_, err = c.CreateNetworkInterface(context.Background(), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String("subnet-0a000000000000001"), Groups: []string{"sg-0dead"}})
	wantCode(t, err, CodeGroupNotFound, http.StatusBadRequest)
}

func TestAttachDetachDeleteFollowEC2Rules(t *testing.T) {
	sim, c, _ := startSim(t, Options{})
	ctx := context.Background()
	n, err := createENI(c, "subnet-0b000000000000002", "", nil)
	must(t, err)
	id := *n.NetworkInterfaceId
	_, err = attachENI(c, id, gwB3, 0)
	wantCode(t, err, CodeInvalidParameterValue, http.StatusBadRequest) // device index 0 is the primary's
	_, err = attachENI(c, id, gwA1, 1)
	wantCode(t, err, CodeInvalidParameterValue, http.StatusBadRequest) // another zone
	att, err := attachENI(c, id, gwB3, 1)
	must(t, err)
	_, err = attachENI(c, id, gwB3, 2)
	wantCode(t, err, CodeENIInUse, http.StatusBadRequest)
	second, err := createENI(c, "subnet-0b000000000000002", "", nil)
	must(t, err)
	_, err = attachENI(c, *second.NetworkInterfaceId, gwB3, 2) // t3.micro takes two interfaces
	wantCode(t, err, CodeAttachmentLimitExceeded, http.StatusBadRequest)
	got := describeENI(t, c, id)
	if got.Status != types.NetworkInterfaceStatusInUse || *got.Attachment.DeviceIndex != 1 || *got.Attachment.DeleteOnTermination {
		t.Fatalf("an attached interface: %+v", got.Attachment)
	}
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(id),
		Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String("eni-attach-0dead"), DeleteOnTermination: aws.Bool(true)}})
	wantCode(t, err, CodeAttachmentNotFound, http.StatusBadRequest)
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(id),
		Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(att), DeleteOnTermination: aws.Bool(true)}})
	must(t, err)
	if got := describeENI(t, c, id); !*got.Attachment.DeleteOnTermination {
		t.Fatalf("DeleteOnTermination not set: %+v", got.Attachment)
	}
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
	wantCode(t, err, CodeENIInUse, http.StatusBadRequest)
	_, err = c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String("eni-attach-" + idSuffix(eniB3))})
	wantCode(t, err, CodeOperationNotPermitted, http.StatusBadRequest)
	_, err = c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(att)})
	must(t, err)
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
	must(t, err)
	if h := sim.HoldersOf(netip.MustParseAddr(*n.PrivateIpAddress)); len(h) != 0 {
		t.Fatalf("a deleted interface's address is still held by %v", h)
	}
}

func TestTerminationDeletesOnlyDeleteOnTerminationInterfaces(t *testing.T) {
	sim, c, _ := startSim(t, Options{})
	ctx := context.Background()
	var ids []string
	for device, deleteIt := range []bool{false, true} {
		n, err := createENI(c, "subnet-0a000000000000001", "", nil)
		must(t, err)
		att, err := attachENI(c, *n.NetworkInterfaceId, gwA1, int32(device+1))
		must(t, err)
		_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: n.NetworkInterfaceId,
			Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(att), DeleteOnTermination: aws.Bool(deleteIt)}})
		must(t, err)
		ids = append(ids, *n.NetworkInterfaceId)
	}
	must(t, sim.TerminateInstance(gwA1))
	out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("subnet-id"), Values: []string{"subnet-0a000000000000001"}}, {Name: aws.String("status"), Values: []string{"available"}}}})
	must(t, err)
	if len(out.NetworkInterfaces) != 1 || *out.NetworkInterfaces[0].NetworkInterfaceId != ids[0] {
		t.Fatalf("after termination only the interface without DeleteOnTermination is left, available: %+v", out.NetworkInterfaces)
	}
}

func TestDescribeNetworkInterfacesByTagAndInstance(t *testing.T) {
	_, c, _ := startSim(t, Options{})
	ctx := context.Background()
	n, err := createENI(c, "subnet-0a000000000000001", "", map[string]string{"egressgw.io/cluster": "c1"})
	must(t, err)
	_, err = attachENI(c, *n.NetworkInterfaceId, gwA2, 1)
	must(t, err)
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{*n.NetworkInterfaceId}, Tags: []types.Tag{{Key: aws.String("egressgw.io/node"), Value: aws.String(gwA2)}}})
	must(t, err)
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"eni-0dead000000000001"}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantCode(t, err, CodeENINotFound, http.StatusBadRequest)
	out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("tag:egressgw.io/cluster"), Values: []string{"c1"}}, {Name: aws.String("attachment.instance-id"), Values: []string{gwA2}},
		{Name: aws.String("tag-key"), Values: []string{"egressgw.io/node"}}}})
	must(t, err)
	if len(out.NetworkInterfaces) != 1 || *out.NetworkInterfaces[0].Attachment.InstanceId != gwA2 {
		t.Fatalf("filter by tags and instance: %+v", out.NetworkInterfaces)
	}
	inst, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{gwA2}})
	must(t, err)
	if nics := inst.Reservations[0].Instances[0].NetworkInterfaces; len(nics) != 2 || *nics[1].Attachment.DeviceIndex != 1 || *nics[1].MacAddress == *nics[0].MacAddress {
		t.Fatalf("the instance shows both interfaces: %+v", nics)
	}
}

func TestPrefixDelegationUsesOneSlotPerPrefix(t *testing.T) {
	sim, c, _ := startSim(t, Options{})
	ctx := context.Background()
	out, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA1), Ipv4PrefixCount: aws.Int32(8)})
	must(t, err)
	if len(out.AssignedIpv4Prefixes) != 8 || *out.AssignedIpv4Prefixes[0].Ipv4Prefix != "10.0.1.16/28" {
		t.Fatalf("eight prefixes from the subnet's lowest free /28 (10.0.1.0/28 holds reserved addresses and 10.0.1.11): %+v", out.AssignedIpv4Prefixes)
	}
	// m5.large: 10 slots = the primary address + 8 prefixes + one more.
	must(t, assign(c, eniA1, false, "10.0.1.200"))
	wantCode(t, assign(c, eniA1, false, "10.0.1.201"), CodeIPLimitExceeded, http.StatusBadRequest)
	wantCode(t, assign(c, eniA2, false, "10.0.1.20"), CodeInvalidParameterValue, http.StatusBadRequest) // inside a delegated prefix
	n := describeENI(t, c, eniA1)
	if len(n.Ipv4Prefixes) != 8 || len(n.PrivateIpAddresses) != 2 {
		t.Fatalf("interface with prefixes: %d prefixes, %d addresses", len(n.Ipv4Prefixes), len(n.PrivateIpAddresses))
	}
	_, err = c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA1), Ipv4Prefixes: []string{"10.0.1.16/28"}})
	must(t, err)
	must(t, assign(c, eniA2, false, "10.0.1.20"))
	count, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA2), SecondaryPrivateIpAddressCount: aws.Int32(2)})
	must(t, err)
	got := []string{*count.AssignedPrivateIpAddresses[0].PrivateIpAddress, *count.AssignedPrivateIpAddresses[1].PrivateIpAddress}
	if !slices.Equal(got, []string{"10.0.1.4", "10.0.1.5"}) || sim.HoldersOf(netip.MustParseAddr("10.0.1.4"))[0] != eniA2 {
		t.Fatalf("a count takes the lowest free addresses: %v", got)
	}
}

func TestDetachIsAsynchronous(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	sim, c, _ := startSim(t, Options{Clock: clock.Now})
	sim.SetDetachDelay(2 * time.Second)
	ctx := context.Background()
	n, err := createENI(c, "subnet-0a000000000000001", "", nil)
	must(t, err)
	att, err := attachENI(c, *n.NetworkInterfaceId, gwA1, 1)
	must(t, err)
	_, err = c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(att)})
	must(t, err)
	if got := describeENI(t, c, *n.NetworkInterfaceId); got.Status != types.NetworkInterfaceStatusDetaching {
		t.Fatalf("status right after the detach: %s", got.Status)
	}
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: n.NetworkInterfaceId})
	wantCode(t, err, CodeENIInUse, http.StatusBadRequest)
	_, err = attachENI(c, *n.NetworkInterfaceId, gwA2, 1)
	wantCode(t, err, CodeENIInUse, http.StatusBadRequest)
	clock.Step(3 * time.Second)
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: n.NetworkInterfaceId})
	must(t, err)
}
