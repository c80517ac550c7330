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
	return list[groupXML]{Items: []groupXML{{GroupID: defaultGroupID(vpc), GroupName: "default"}}}
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
	out.Tags = tagsXML(in.tags)
	for _, id := range in.enis {
		out.Interfaces.Items = append(out.Interfaces.Items, s.instanceENIXML(s.enis[id]))
	}
	return out
}

func (s *state) instanceENIXML(n eni) instanceENIXML {
	out := instanceENIXML{
		NetworkInterfaceID: n.id, SubnetID: n.subnet, VpcID: n.vpc, OwnerID: s.account, Status: n.status(s.now),
		MacAddress: n.mac, PrivateIPAddress: n.ips[0].String(), SourceDestCheck: true, Groups: groupsXML(n.vpc, n.groups),
		Description: n.description, InterfaceType: "interface", Prefixes: prefixesXML(n.prefixes),
		Attachment: instanceAttachmentXML{AttachmentID: n.attachment, DeviceIndex: n.device, NetworkCardIndex: n.card,
			Status: "attached", AttachTime: attachTime, DeleteOnTermination: n.deleteOnTermination},
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
		Status: n.status(s.now), MacAddress: n.mac, PrivateIPAddress: n.ips[0].String(), SourceDestCheck: true,
		Groups: groupsXML(n.vpc, n.groups), Description: n.description, InterfaceType: "interface", Tags: tagsXML(n.tags),
		Prefixes: prefixesXML(n.prefixes),
	}
	if n.attachment != "" {
		out.Attachment = &eniAttachmentXML{AttachmentID: n.attachment, InstanceID: n.instance,
			InstanceOwnerID: s.account, DeviceIndex: n.device, NetworkCardIndex: n.card, Status: "attached", AttachTime: attachTime,
			DeleteOnTermination: n.deleteOnTermination}
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

func groupsXML(vpc string, ids []string) list[groupXML] {
	var out list[groupXML]
	for _, id := range ids {
		name := id
		if id == defaultGroupID(vpc) {
			name = "default"
		}
		out.Items = append(out.Items, groupXML{GroupID: id, GroupName: name})
	}
	return out
}

func tagsXML(tags map[string]string) list[tagXML] {
	var out list[tagXML]
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out.Items = append(out.Items, tagXML{Key: k, Value: tags[k]})
	}
	return out
}

func prefixesXML(ps []netip.Prefix) list[prefixXML] {
	var out list[prefixXML]
	for _, p := range ps {
		out.Items = append(out.Items, prefixXML{IPv4Prefix: p.String()})
	}
	return out
}

// tagFields adds tag-key and tag:<key> filter values for a resource's tags.
func tagFields(f fields, tags map[string]string) fields {
	f["tag-key"] = slices.Collect(maps.Keys(tags))
	for k, v := range tags {
		f["tag:"+k] = []string{v}
	}
	return f
}

func (s *state) subnetXML(sn subnet) subnetXML {
	used := 0
	for _, id := range s.eniOrder {
		if n := s.enis[id]; n.subnet == sn.id {
			used += len(n.ips) + 16*len(n.prefixes)
		}
	}
	size := 1 << (32 - sn.cidr.Bits())
	return subnetXML{SubnetID: sn.id, State: "available", VpcID: sn.vpc, CidrBlock: sn.cidr.String(),
		AvailableIPAddressCount: max(0, size-5-used), AvailabilityZone: sn.zone, Tags: tagsXML(sn.tags)}
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
		"private-ip-address":                     nil,
		"network-interface.network-interface-id": nil, "network-interface.addresses.private-ip-address": nil,
	}
	if len(in.enis) > 0 {
		f["private-ip-address"] = []string{s.enis[in.enis[0]].ips[0].String()}
	}
	for _, id := range in.enis {
		f["network-interface.network-interface-id"] = append(f["network-interface.network-interface-id"], id)
		f["network-interface.addresses.private-ip-address"] = append(f["network-interface.addresses.private-ip-address"], addrStrings(s.enis[id].ips)...)
	}
	return tagFields(f, in.tags)
}

// eniFields are the DescribeNetworkInterfaces filters the simulator understands.
func (s *state) eniFields(n eni) fields {
	ips := addrStrings(n.ips)
	f := fields{
		"network-interface-id": {n.id}, "subnet-id": {n.subnet}, "vpc-id": {n.vpc}, "availability-zone": {n.zone},
		"addresses.private-ip-address": ips, "private-ip-address": ips, "addresses.primary": {"true", "false"},
		"status": {n.status(s.now)}, "description": {n.description}, "group-id": n.groups, "mac-address": {n.mac},
		"interface-type": {"interface"}, "ipv4-prefix.ipv4-prefix": nil, "owner-id": {s.account},
		"attachment.instance-id": nil, "attachment.device-index": nil, "attachment.network-card-index": nil,
		"attachment.attachment-id": nil, "attachment.status": nil, "attachment.delete-on-termination": nil,
		"association.allocation-id": nil, "association.public-ip": nil, "association.association-id": nil,
	}
	for _, p := range n.prefixes {
		f["ipv4-prefix.ipv4-prefix"] = append(f["ipv4-prefix.ipv4-prefix"], p.String())
	}
	if n.attachment != "" {
		f["attachment.instance-id"], f["attachment.device-index"] = []string{n.instance}, []string{strconv.Itoa(n.device)}
		f["attachment.network-card-index"], f["attachment.attachment-id"] = []string{strconv.Itoa(n.card)}, []string{n.attachment}
		f["attachment.status"], f["attachment.delete-on-termination"] = []string{"attached"}, []string{strconv.FormatBool(n.deleteOnTermination)}
	}
	for _, ip := range n.ips {
		if alloc, ok := s.eipOf(n.id, ip); ok {
			e := s.eips[alloc]
			f["association.allocation-id"] = append(f["association.allocation-id"], e.alloc)
			f["association.public-ip"] = append(f["association.public-ip"], e.public.String())
			f["association.association-id"] = append(f["association.association-id"], e.assoc)
		}
	}
	return tagFields(f, n.tags)
}

func subnetFields(sn subnet) fields {
	return tagFields(fields{"subnet-id": {sn.id}, "vpc-id": {sn.vpc}, "availability-zone": {sn.zone},
		"cidr-block": {sn.cidr.String()}, "state": {"available"}}, sn.tags)
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
