package ec2sim

import (
	"encoding/xml"
	"net/netip"
)

// handler serves one action: read ones answer from the visible state, write ones change the true state and
// report where IPs moved.
type handler struct {
	read  func(*state, request) (any, *APIError)
	write func(*state, request) (any, []Event, *APIError)
}

// handlers are exactly the actions the egressgw AWS provider (and the emulated VPC CNI of test/vpccni)
// calls; anything else is InvalidAction.
var handlers = map[string]handler{
	"DescribeInstances":          {read: (*state).describeInstances},
	"DescribeNetworkInterfaces":  {read: (*state).describeENIs},
	"DescribeSubnets":            {read: (*state).describeSubnets},
	"DescribeInstanceTypes":      {read: (*state).describeTypes},
	"DescribeAddresses":          {read: (*state).describeAddresses},
	"AssignPrivateIpAddresses":   {write: (*state).handleAssign},
	"UnassignPrivateIpAddresses": {write: (*state).handleUnassign},
	"AssociateAddress":           {write: (*state).handleAssociate},
	"DisassociateAddress":        {write: (*state).handleDisassociate},
	// The lifecycle of egressgw's own gateway interfaces (eniactions.go).
	"CreateNetworkInterface":          {write: (*state).handleCreateENI},
	"AttachNetworkInterface":          {write: (*state).handleAttachENI},
	"ModifyNetworkInterfaceAttribute": {write: (*state).handleModifyENI},
	"DetachNetworkInterface":          {write: (*state).handleDetachENI},
	"DeleteNetworkInterface":          {write: (*state).handleDeleteENI},
	"CreateTags":                      {write: (*state).handleCreateTags},
}

// filtered reports whether a Describe request narrows its answer (IDs, filters or pagination); EC2 serves
// the others from a smaller token bucket.
func filtered(r request) bool {
	for _, key := range []string{"InstanceId", "NetworkInterfaceId", "SubnetId", "InstanceType", "AllocationId", "PublicIp", "Filter"} {
		if r.form.Has(key+".1") || r.form.Has(key+".1.Name") {
			return true
		}
	}
	return r.form.Get("MaxResults") != ""
}

// requestENI is the interface a request names in NetworkInterfaceId.
func (s *state) requestENI(r request) (eni, *APIError) {
	eniID, aerr := r.required("NetworkInterfaceId")
	if aerr != nil {
		return eni{}, aerr
	}
	n, ok := s.enis[eniID]
	if !ok {
		return eni{}, apiErr(CodeENINotFound, "The networkInterface ID '%s' does not exist", eniID)
	}
	return n, nil
}

func (s *state) handleAssign(r request) (any, []Event, *APIError) {
	n, aerr := s.requestENI(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	eniID := n.id
	want, aerr := r.assignRequest()
	if aerr != nil {
		return nil, nil, aerr
	}
	if want.prefixes != nil || want.prefixCount > 0 {
		return s.assignPrefixRequest(n, want)
	}
	ips := want.ips
	if want.count > 0 {
		var enough bool
		if ips, enough = s.freeAddrs(s.subnets[n.subnet], want.count); !enough {
			return nil, nil, apiErr(CodeInsufficientFreeAddresses, "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", n.subnet)
		}
	}
	events, aerr := s.assignPrivate(eniID, ips, want.reassign)
	if aerr != nil {
		return nil, nil, aerr
	}
	out := &assignResponse{NetworkInterfaceID: eniID, Return: true}
	for _, ip := range uniqueAddrs(ips) {
		out.Assigned.Items = append(out.Assigned.Items, privateAddrXML{PrivateIPAddress: ip.String()})
	}
	return out, events, nil
}

// assignWant is what an AssignPrivateIpAddresses request asks for: named addresses, a count of any free
// ones, or prefixes (named or counted); EC2 accepts exactly one of these forms per request.
type assignWant struct {
	ips         []netip.Addr
	count       int
	prefixes    []netip.Prefix
	prefixCount int
	reassign    bool
}

func (r request) assignRequest() (assignWant, *APIError) {
	var w assignWant
	var aerr *APIError
	if w.ips, aerr = r.addrs("PrivateIpAddress"); aerr != nil {
		return w, aerr
	}
	if w.prefixes, aerr = r.prefixes("Ipv4Prefix"); aerr != nil {
		return w, aerr
	}
	if w.count, aerr = r.optInt("SecondaryPrivateIpAddressCount"); aerr != nil {
		return w, aerr
	}
	if w.prefixCount, aerr = r.optInt("Ipv4PrefixCount"); aerr != nil {
		return w, aerr
	}
	forms := 0
	for _, used := range []bool{len(w.ips) > 0, w.count > 0, len(w.prefixes) > 0, w.prefixCount > 0} {
		if used {
			forms++
		}
	}
	if forms > 1 {
		return w, apiErr(CodeInvalidParameterCombo, "Specify only one of PrivateIpAddress, SecondaryPrivateIpAddressCount, Ipv4Prefix or Ipv4PrefixCount.")
	}
	allow, aerr := r.optBool("AllowReassignment")
	w.reassign = allow != nil && *allow
	return w, aerr
}

func (s *state) assignPrefixRequest(n eni, want assignWant) (any, []Event, *APIError) {
	prefixes := want.prefixes
	if want.prefixCount > 0 {
		var enough bool
		if prefixes, enough = s.freePrefixes(s.subnets[n.subnet], want.prefixCount); !enough {
			return nil, nil, apiErr(CodeInsufficientCidrBlocks, "The specified subnet does not have enough free cidr blocks to satisfy the request.")
		}
	}
	if aerr := s.assignPrefixes(n, prefixes); aerr != nil {
		return nil, nil, aerr
	}
	out := &assignResponse{NetworkInterfaceID: n.id, Return: true}
	for _, p := range prefixes {
		out.Prefixes.Items = append(out.Prefixes.Items, prefixXML{IPv4Prefix: p.String()})
	}
	return out, nil, nil
}

func (s *state) handleUnassign(r request) (any, []Event, *APIError) {
	eniID, aerr := r.required("NetworkInterfaceId")
	if aerr != nil {
		return nil, nil, aerr
	}
	ips, aerr := r.addrs("PrivateIpAddress")
	if aerr != nil {
		return nil, nil, aerr
	}
	prefixes, aerr := r.prefixes("Ipv4Prefix")
	if aerr != nil {
		return nil, nil, aerr
	}
	if len(prefixes) > 0 && len(ips) == 0 {
		n, aerr := s.requestENI(r)
		if aerr != nil {
			return nil, nil, aerr
		}
		return okResponse("UnassignPrivateIpAddresses"), nil, s.unassignPrefixes(n, prefixes)
	}
	events, aerr := s.unassignPrivate(eniID, ips)
	if aerr != nil {
		return nil, nil, aerr
	}
	return okResponse("UnassignPrivateIpAddresses"), events, nil
}

func (s *state) handleAssociate(r request) (any, []Event, *APIError) {
	alloc, aerr := r.required("AllocationId")
	if aerr != nil {
		return nil, nil, aerr
	}
	eniID, aerr := r.required("NetworkInterfaceId")
	if aerr != nil {
		return nil, nil, apiErr(CodeMissingParameter, "This simulator associates Elastic IPs with a NetworkInterfaceId only")
	}
	var ip netip.Addr
	if raw := r.form.Get("PrivateIpAddress"); raw != "" {
		var err error
		if ip, err = netip.ParseAddr(raw); err != nil || !ip.Is4() {
			return nil, nil, apiErr(CodeInvalidParameterValue, "Invalid value '%s' for PrivateIpAddress", raw)
		}
	}
	allow, aerr := r.optBool("AllowReassociation")
	if aerr != nil {
		return nil, nil, aerr
	}
	assoc, aerr := s.associate(alloc, eniID, ip, allow)
	if aerr != nil {
		return nil, nil, aerr
	}
	return &associateResponse{Return: true, AssociationID: assoc}, nil, nil
}

func (s *state) handleDisassociate(r request) (any, []Event, *APIError) {
	assoc, aerr := r.required("AssociationId")
	if aerr != nil {
		return nil, nil, aerr
	}
	if aerr := s.disassociateByID(assoc); aerr != nil {
		return nil, nil, aerr
	}
	return okResponse("DisassociateAddress"), nil, nil
}

func okResponse(action string) *returnResponse {
	return &returnResponse{XMLName: xml.Name{Local: action + "Response"}, Return: true}
}
