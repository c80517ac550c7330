package ec2sim

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Rendering of the state into response shapes, and the values each resource offers to Describe filters.

const attachTime = "2024-01-01T00:00:00.000Z"

func defaultGroup(vpc string) list[groupXML] {
	return list[groupXML]{Items: []groupXML{{GroupID: "sg-" + strings.TrimPrefix(vpc, "vpc-"), GroupName: "default"}}}
}

func (s *state) privateDNS(ip netip.Addr) string {
	domain := s.region + ".compute.internal"
	if s.region == "us-east-1" {
		domain = "ec2.internal"
	}
	return "ip-" + strings.ReplaceAll(ip.String(), ".", "-") + "." + domain
}

func idSuffix(id string) string {
	_, rest, _ := strings.Cut(id, "-")
	return rest
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func (s *state) instanceXML(in instance) instanceXML {
	out := instanceXML{
		InstanceID: in.id, ImageID: "ami-0" + idSuffix(in.id), InstanceType: in.typ,
		State:     stateXML{Code: stateCodes[in.state], Name: in.state},
		Placement: placementXML{AvailabilityZone: in.zone, Tenancy: "default"},
		SubnetID:  in.subnet, VpcID: in.vpc, SourceDestCheck: true, Groups: defaultGroup(in.vpc), Architecture: "x86_64",
	}
	if len(in.enis) > 0 {
		primary := s.enis[in.enis[0]].ips[0]
		out.PrivateDNSName, out.PrivateIPAddress = s.privateDNS(primary), primary.String()
	}
	for _, k := range slices.Sorted(maps.Keys(in.tags)) {
		out.Tags.Items = append(out.Tags.Items, tagXML{Key: k, Value: in.tags[k]})
	}
	for _, id := range in.enis {
		out.Interfaces.Items = append(out.Interfaces.Items, s.instanceENIXML(s.enis[id]))
	}
	return out
}

func (s *state) instanceENIXML(n eni) instanceENIXML {
	out := instanceENIXML{
		NetworkInterfaceID: n.id, SubnetID: n.subnet, VpcID: n.vpc, OwnerID: s.account, Status: "in-use",
		MacAddress: n.mac, PrivateIPAddress: n.ips[0].String(), SourceDestCheck: true, Groups: defaultGroup(n.vpc),
		Attachment: instanceAttachmentXML{AttachmentID: "eni-attach-" + idSuffix(n.id), DeviceIndex: n.device,
			Status: "attached", AttachTime: attachTime, DeleteOnTermination: n.device == 0},
	}
	if n.device == 0 {
		out.Description = "Primary network interface"
	}
	for i, ip := range n.ips {
		item := instancePrivateXML{PrivateIPAddress: ip.String(), Primary: i == 0}
		if alloc, ok := s.eipOf(n.id, ip); ok {
			item.Association = &instanceAssocXML{PublicIP: s.eips[alloc].public.String(), IPOwnerID: s.account}
		}
		if i == 0 {
			out.Association = item.Association
		}
		out.PrivateIPs.Items = append(out.PrivateIPs.Items, item)
	}
	return out
}

func (s *state) eniXML(n eni) eniXML {
	out := eniXML{
		NetworkInterfaceID: n.id, SubnetID: n.subnet, VpcID: n.vpc, AvailabilityZone: n.zone, OwnerID: s.account,
		Status: "in-use", MacAddress: n.mac, PrivateIPAddress: n.ips[0].String(), SourceDestCheck: true,
		Groups: defaultGroup(n.vpc),
		Attachment: eniAttachmentXML{AttachmentID: "eni-attach-" + idSuffix(n.id), InstanceID: n.instance,
			InstanceOwnerID: s.account, DeviceIndex: n.device, Status: "attached", AttachTime: attachTime,
			DeleteOnTermination: n.device == 0},
	}
	if n.device == 0 {
		out.Description = "Primary network interface"
	}
	for i, ip := range n.ips {
		item := eniPrivateXML{PrivateIPAddress: ip.String(), Primary: i == 0}
		if alloc, ok := s.eipOf(n.id, ip); ok {
			e := s.eips[alloc]
			item.Association = &eniAssocXML{PublicIP: e.public.String(), AllocationID: e.alloc, AssociationID: e.assoc, IPOwnerID: s.account}
		}
		if i == 0 {
			out.Association = item.Association
		}
		out.PrivateIPs.Items = append(out.PrivateIPs.Items, item)
	}
	return out
}

func (s *state) subnetXML(sn subnet) subnetXML {
	used := 0
	for _, id := range s.eniOrder {
		if n := s.enis[id]; n.subnet == sn.id {
			used += len(n.ips)
		}
	}
	size := 1 << (32 - sn.cidr.Bits())
	return subnetXML{SubnetID: sn.id, State: "available", VpcID: sn.vpc, CidrBlock: sn.cidr.String(),
		AvailableIPAddressCount: max(0, size-5-used), AvailabilityZone: sn.zone}
}

func typeXMLOf(t InstanceTypeSpec) typeXML {
	return typeXML{InstanceType: t.Name, CurrentGeneration: true, NetworkInfo: networkInfoXML{
		MaximumNetworkInterfaces: t.MaxInterfaces, IPv4AddressesPerInterface: t.IPv4PerInterface,
		IPv6AddressesPerInterface: t.IPv4PerInterface, IPv6Supported: true}}
}

func (s *state) addressXML(e eip) addressXML {
	out := addressXML{PublicIP: e.public.String(), AllocationID: e.alloc, Domain: "vpc"}
	if e.assoc != "" {
		out.AssociationID, out.NetworkInterfaceID, out.NetworkInterfaceOwnerID = e.assoc, e.eni, s.account
		out.InstanceID, out.PrivateIPAddress = s.enis[e.eni].instance, e.private.String()
	}
	return out
}

// instanceFields are the DescribeInstances filters the simulator understands.
func (s *state) instanceFields(in instance) fields {
	f := fields{
		"instance-id": {in.id}, "instance-state-name": {in.state}, "instance-type": {in.typ},
		"availability-zone": {in.zone}, "subnet-id": {in.subnet}, "vpc-id": {in.vpc},
		"tag-key": slices.Collect(maps.Keys(in.tags)), "private-ip-address": nil,
		"network-interface.network-interface-id": nil, "network-interface.addresses.private-ip-address": nil,
	}
	if len(in.enis) > 0 {
		f["private-ip-address"] = []string{s.enis[in.enis[0]].ips[0].String()}
	}
	for _, id := range in.enis {
		f["network-interface.network-interface-id"] = append(f["network-interface.network-interface-id"], id)
		f["network-interface.addresses.private-ip-address"] = append(f["network-interface.addresses.private-ip-address"], addrStrings(s.enis[id].ips)...)
	}
	for k, v := range in.tags {
		f["tag:"+k] = []string{v}
	}
	return f
}

// eniFields are the DescribeNetworkInterfaces filters the simulator understands.
func (s *state) eniFields(n eni) fields {
	ips := addrStrings(n.ips)
	f := fields{
		"network-interface-id": {n.id}, "subnet-id": {n.subnet}, "vpc-id": {n.vpc}, "availability-zone": {n.zone},
		"addresses.private-ip-address": ips, "private-ip-address": ips, "addresses.primary": {"true", "false"},
		"attachment.instance-id": {n.instance}, "attachment.device-index": {strconv.Itoa(n.device)}, "status": {"in-use"},
		"association.allocation-id": nil, "association.public-ip": nil, "association.association-id": nil,
	}
	for _, ip := range n.ips {
		if alloc, ok := s.eipOf(n.id, ip); ok {
			e := s.eips[alloc]
			f["association.allocation-id"] = append(f["association.allocation-id"], e.alloc)
			f["association.public-ip"] = append(f["association.public-ip"], e.public.String())
			f["association.association-id"] = append(f["association.association-id"], e.assoc)
		}
	}
	return f
}

func subnetFields(sn subnet) fields {
	return fields{"subnet-id": {sn.id}, "vpc-id": {sn.vpc}, "availability-zone": {sn.zone},
		"cidr-block": {sn.cidr.String()}, "state": {"available"}}
}

func (s *state) addressFields(e eip) fields {
	f := fields{"allocation-id": {e.alloc}, "public-ip": {e.public.String()}, "domain": {"vpc"},
		"association-id": nil, "network-interface-id": nil, "private-ip-address": nil, "instance-id": nil}
	if e.assoc != "" {
		f["association-id"], f["network-interface-id"] = []string{e.assoc}, []string{e.eni}
		f["private-ip-address"], f["instance-id"] = []string{e.private.String()}, []string{s.enis[e.eni].instance}
	}
	return f
}

func addrStrings(ips []netip.Addr) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
