package ec2sim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// fixtureServer answers every request with the fixture named after its Action (Error.xml with status 400
// for the action "DescribeSubnets" when errorFor says so).
func fixtureServer(t *testing.T, errorAction string) *ec2.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		action, status, name := r.Form.Get("Action"), http.StatusOK, r.Form.Get("Action")+".xml"
		if action == errorAction {
			status, name = http.StatusBadRequest, "Error.xml"
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		_, _ = w.Write(readFixture(t, name))
	}))
	t.Cleanup(srv.Close)
	return sdkClient(srv.URL)
}

// TestSDKParsesReferenceExamples proves the shapes in testdata/aws-examples (those of the EC2 API
// reference's examples) are what the SDK expects: it parses each with the fields egressgw reads populated.
func TestSDKParsesReferenceExamples(t *testing.T) {
	ctx := context.Background()
	c := fixtureServer(t, "DescribeVpcs")
	assign, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: ptr("eni-x")})
	must(t, err)
	check(t, "assign", *assign.NetworkInterfaceId == "eni-0f1e2d3c4b5a69788" && *assign.AssignedPrivateIpAddresses[1].PrivateIpAddress == "10.20.3.41")
	_, err = c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: ptr("eni-x")})
	must(t, err)
	assoc, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: ptr("eipalloc-x")})
	must(t, err)
	check(t, "associate", *assoc.AssociationId == "eipassoc-0aa11bb22cc33dd44")
	_, err = c.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: ptr("eipassoc-x")})
	must(t, err)
	addrs, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	must(t, err)
	a := addrs.Addresses[0]
	check(t, "address", *a.AllocationId == "eipalloc-0123abcd4567ef890" && *a.AssociationId != "" && *a.NetworkInterfaceId == "eni-0aa0bb0cc0dd0ee0f" &&
		*a.PrivateIpAddress == "10.20.3.40" && *a.PublicIp == "192.0.2.77" && a.Domain == types.DomainTypeVpc)
	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	must(t, err)
	sn := subnets.Subnets[0]
	check(t, "subnet", *sn.CidrBlock == "10.20.3.0/24" && *sn.AvailabilityZone == "eu-west-1c" && *sn.VpcId != "" && *sn.AvailableIpAddressCount == 249)
	enis, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	must(t, err)
	n := enis.NetworkInterfaces[0]
	check(t, "network interface", *n.Attachment.DeviceIndex == 0 && *n.Attachment.InstanceId == "i-0fedcba9876543210" &&
		len(n.PrivateIpAddresses) == 2 && *n.PrivateIpAddresses[0].Primary && *n.PrivateIpAddresses[1].PrivateIpAddress == "10.20.3.40")
	created, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: ptr("subnet-x")})
	must(t, err)
	check(t, "created interface", *created.NetworkInterface.NetworkInterfaceId == "eni-0bb1cc2dd3ee4ff50" && created.NetworkInterface.Status == types.NetworkInterfaceStatusAvailable &&
		*created.NetworkInterface.MacAddress == "0a:1b:2c:3d:4e:60" && *created.NetworkInterface.PrivateIpAddress == "10.20.3.61")
	attached, err := c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: ptr("eni-x"), InstanceId: ptr("i-x"), DeviceIndex: ptr(int32(1))})
	must(t, err)
	check(t, "attachment", *attached.AttachmentId == "eni-attach-0cc1dd2ee3ff40516")
	inst, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	must(t, err)
	in := inst.Reservations[0].Instances[0]
	check(t, "instance", in.InstanceType == "m5.large" && *in.Placement.AvailabilityZone == "eu-west-1c" && in.State.Name == types.InstanceStateNameRunning &&
		*in.NetworkInterfaces[0].Attachment.DeviceIndex == 0 && *in.NetworkInterfaces[0].PrivateIpAddresses[1].Association.PublicIp == "192.0.2.77")
}

func TestSDKParsesReferenceErrorExample(t *testing.T) {
	c := fixtureServer(t, "DescribeNetworkInterfaces")
	_, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound", http.StatusBadRequest)
	var re *awshttp.ResponseError
	check(t, "request ID of an error", errors.As(err, &re) && re.ServiceRequestID() == "8c7b6a59-4837-4261-9504-a3b2c1d0e9f8")
	check(t, "message", strings.Contains(err.Error(), "eni-0aa0bb0cc0dd0ee0f' does not exist"))
}

// TestSimulatorSpeaksReferenceShapes drives the simulator through the actions of the fixtures and checks
// that each answer has exactly the element paths of the matching reference example, apart from optional
// elements the reference documents for that response.
func TestSimulatorSpeaksReferenceShapes(t *testing.T) {
	_, _, endpoint := startSim(t, Options{})
	steps := []struct {
		fixture  string
		form     url.Values
		optional []string
	}{
		{"AssignPrivateIpAddresses.xml", form("AssignPrivateIpAddresses", "NetworkInterfaceId", eniA1, "PrivateIpAddress.1", "10.0.1.50", "PrivateIpAddress.2", "10.0.1.51"), []string{"assignedIpv4PrefixSet"}},
		{"UnassignPrivateIpAddresses.xml", form("UnassignPrivateIpAddresses", "NetworkInterfaceId", eniA1, "PrivateIpAddress.1", "10.0.1.51"), nil},
		{"AssociateAddress.xml", form("AssociateAddress", "AllocationId", eip1, "NetworkInterfaceId", eniA1, "PrivateIpAddress", "10.0.1.50"), nil},
		{"AssociateAddress.xml", form("AssociateAddress", "AllocationId", eip2, "NetworkInterfaceId", eniA1), nil},
		{"DescribeAddresses.xml", form("DescribeAddresses", "AllocationId.1", eip1), nil},
		{"DescribeSubnets.xml", form("DescribeSubnets", "SubnetId.1", "subnet-0a000000000000001"), nil},
		{"DescribeNetworkInterfaces.xml", form("DescribeNetworkInterfaces", "NetworkInterfaceId.1", eniA1), append(newerENIPaths("networkInterfaceSet/item/"), associationPaths...)},
		{"DescribeInstances.xml", form("DescribeInstances", "InstanceId.1", gwA1), newerENIPaths("reservationSet/item/instancesSet/item/networkInterfaceSet/item/")},
		{"CreateNetworkInterface.xml", form("CreateNetworkInterface", "SubnetId", "subnet-0a000000000000001", "Description", "x"), newerENIPaths("networkInterface/")},
		// IDs count on from the two associations above: the interface is the third new ID.
		{"AttachNetworkInterface.xml", form("AttachNetworkInterface", "NetworkInterfaceId", "eni-00000000000000003", "InstanceId", gwA1, "DeviceIndex", "1"), []string{"networkCardIndex"}},
		{"ModifyNetworkInterfaceAttribute.xml", form("ModifyNetworkInterfaceAttribute", "NetworkInterfaceId", "eni-00000000000000003", "Description.Value", "y"), nil},
		{"CreateTags.xml", form("CreateTags", "ResourceId.1", "eni-00000000000000003", "Tag.1.Key", "k", "Tag.1.Value", "v"), nil},
		{"DetachNetworkInterface.xml", form("DetachNetworkInterface", "AttachmentId", "eni-attach-00000000000000004"), nil},
		{"DeleteNetworkInterface.xml", form("DeleteNetworkInterface", "NetworkInterfaceId", "eni-00000000000000003"), nil},
		{"Error.xml", form("DisassociateAddress", "AssociationId", "eipassoc-0000000000000dead"), nil},
	}
	for _, step := range steps {
		status, body := rawCall(t, endpoint, step.form)
		if step.fixture != "Error.xml" && status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", step.form.Get("Action"), status, body)
		}
		want, got := elementPaths(t, readFixture(t, step.fixture)), elementPaths(t, body)
		if missing := diff(want, got, nil); len(missing) > 0 {
			t.Errorf("%s: simulator lacks %v", step.fixture, missing)
		}
		if extra := diff(got, want, step.optional); len(extra) > 0 {
			t.Errorf("%s: simulator invents %v", step.fixture, extra)
		}
	}
}

// associationPaths are the Elastic IP elements of a network interface and of each of its private addresses
// (types NetworkInterfaceAssociation in the reference); the DescribeNetworkInterfaces example has none.
var associationPaths = []string{
	"networkInterfaceSet/item/association", "networkInterfaceSet/item/privateIpAddressesSet/item/association",
}

// newerENIPaths are elements of a network interface that the reference documents but its examples, written
// before prefix delegation and multi-card instances, do not show.
func newerENIPaths(at string) []string {
	return []string{at + "interfaceType", at + "ipv4PrefixSet", at + "attachment/networkCardIndex", at + "tagSet/item"}
}

func form(action string, kv ...string) url.Values {
	v := url.Values{"Action": {action}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// elementPaths returns the set of element paths of a document below its root, with the namespace ignored.
func elementPaths(t *testing.T, doc []byte) []string {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var stack, out []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, doc)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			stack = append(stack, el.Name.Local)
			if p := strings.Join(stack[1:], "/"); p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	return out
}

// diff returns the paths of a that are neither in b nor below one of the allowed prefixes.
func diff(a, b, allowed []string) []string {
	var out []string
	for _, p := range a {
		ok := slices.Contains(b, p) || slices.ContainsFunc(allowed, func(prefix string) bool { return strings.HasPrefix(p, prefix) })
		if !ok {
			out = append(out, p)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func check(t *testing.T, what string, ok bool) {
	t.Helper()
	if !ok {
		t.Errorf("%s: fields not as in the example", what)
	}
}
