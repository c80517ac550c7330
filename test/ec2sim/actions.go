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

// handlers are exactly the actions the egressgw AWS provider calls; anything else is InvalidAction.
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

func (s *state) handleAssign(r request) (any, []Event, *APIError) {
	eniID, aerr := r.required("NetworkInterfaceId")
	if aerr != nil {
		return nil, nil, aerr
	}
	if r.form.Has("SecondaryPrivateIpAddressCount") || r.form.Has("Ipv4PrefixCount") || r.form.Has("Ipv4Prefix.1") {
		return nil, nil, apiErr(CodeInvalidParameterValue, "This simulator assigns only specific addresses (PrivateIpAddress.N)")
	}
	ips, aerr := r.addrs("PrivateIpAddress")
	if aerr != nil {
		return nil, nil, aerr
	}
	allow, aerr := r.optBool("AllowReassignment")
	if aerr != nil {
		return nil, nil, aerr
	}
	events, aerr := s.assignPrivate(eniID, ips, allow != nil && *allow)
	if aerr != nil {
		return nil, nil, aerr
	}
	out := &assignResponse{NetworkInterfaceID: eniID, Return: true}
	for _, ip := range uniqueAddrs(ips) {
		out.Assigned.Items = append(out.Assigned.Items, privateAddrXML{PrivateIPAddress: ip.String()})
	}
	return out, events, nil
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
