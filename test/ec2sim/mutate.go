package ec2sim

import (
	"net/netip"
	"slices"
)

// Event tells where a private IP lives after a change: on Interface of Instance, or nowhere (both empty).
// The lab re-points its fabric route to the new holder with it: NextHop is the holder's primary address.
type Event struct {
	IP                          netip.Addr
	VPC                         string
	Instance, Interface         string
	NextHop                     netip.Addr
	PrevInstance, PrevInterface string
	// MAC is Interface's MAC address, when Interface is set.
	MAC string
	// Attached says the event comes from attaching Interface to Instance (one event per address of the
	// interface), not from moving an address: a lab plugs the interface into the instance then.
	Attached bool
}

// assignPrivate puts ips on eniID, taking them from other interfaces only when allowReassign is set. It
// checks everything before it changes anything, as EC2 does: a refused call changes nothing.
func (s *state) assignPrivate(eniID string, ips []netip.Addr, allowReassign bool) ([]Event, *APIError) {
	n, ok := s.enis[eniID]
	if !ok {
		return nil, apiErr(CodeENINotFound, "The networkInterface ID '%s' does not exist", eniID)
	}
	fresh, aerr := s.checkAssign(n, ips, allowReassign)
	if aerr != nil {
		return nil, aerr
	}
	if n.slots()+len(fresh) > s.limit(n) {
		return nil, apiErr(CodeIPLimitExceeded, "Number of private addresses will exceed limit.")
	}
	var events []Event
	for _, ip := range fresh {
		events = append(events, s.moveIP(ip, n.id))
	}
	return events, nil
}

// checkAssign returns the IPs that are not on n yet, or why the assignment cannot be made.
func (s *state) checkAssign(n eni, ips []netip.Addr, allowReassign bool) ([]netip.Addr, *APIError) {
	if len(ips) == 0 {
		return nil, apiErr(CodeMissingParameter, "Either PrivateIpAddress or SecondaryPrivateIpAddressCount must be specified.")
	}
	cidr := s.subnets[n.subnet].cidr
	var fresh []netip.Addr
	for _, ip := range ips {
		if why := reservedReason(ip, cidr); why != "" {
			return nil, apiErr(CodeInvalidParameterValue, "Address %s: %s", ip, why)
		}
		if holder, ok := s.prefixHolder(n.vpc, ip); ok {
			return nil, apiErr(CodeInvalidParameterValue, "Address %s is inside a prefix delegated to %s.", ip, holder)
		}
		holder, held := s.owner[vpcAddr{n.vpc, ip}]
		if held && holder == n.id || slices.Contains(fresh, ip) {
			continue
		}
		if held && s.enis[holder].ips[0] == ip {
			return nil, apiErr(CodeInvalidParameterValue, "Address %s is the primary private IP address of %s and cannot be reassigned.", ip, holder)
		}
		if held && !allowReassign {
			return nil, apiErr(CodeInvalidParameterValue, "Address %s is in use.", ip)
		}
		fresh = append(fresh, ip)
	}
	return fresh, nil
}

// moveIP takes ip from its holder (if any) to eniID; an Elastic IP associated with it follows it.
func (s *state) moveIP(ip netip.Addr, eniID string) Event {
	to := s.enis[eniID]
	ev := Event{IP: ip, VPC: to.vpc, Instance: to.instance, Interface: to.id, NextHop: to.ips[0], MAC: to.mac}
	if holder, ok := s.owner[vpcAddr{to.vpc, ip}]; ok {
		ev.PrevInterface, ev.PrevInstance = holder, s.enis[holder].instance
		s.dropIP(holder, ip)
		if alloc, ok := s.eipOf(holder, ip); ok {
			e := s.eips[alloc]
			e.eni = eniID
			s.eips[alloc] = e
		}
	}
	to.ips = append(to.ips, ip)
	s.enis[eniID] = to
	s.owner[vpcAddr{to.vpc, ip}] = eniID
	return ev
}

func (s *state) dropIP(eniID string, ip netip.Addr) {
	n := s.enis[eniID]
	n.ips = slices.DeleteFunc(slices.Clone(n.ips), func(a netip.Addr) bool { return a == ip })
	s.enis[eniID] = n
	delete(s.owner, vpcAddr{n.vpc, ip})
}

// unassignPrivate removes secondary ips from eniID; an Elastic IP associated with one is disassociated.
func (s *state) unassignPrivate(eniID string, ips []netip.Addr) ([]Event, *APIError) {
	n, ok := s.enis[eniID]
	if !ok {
		return nil, apiErr(CodeENINotFound, "The networkInterface ID '%s' does not exist", eniID)
	}
	if len(ips) == 0 {
		return nil, apiErr(CodeMissingParameter, "The request must contain the parameter PrivateIpAddress")
	}
	for _, ip := range ips {
		if !slices.Contains(n.ips, ip) {
			return nil, apiErr(CodeInvalidParameterValue, "Some of the specified addresses are not assigned to interface %s", eniID)
		}
		if n.ips[0] == ip {
			return nil, apiErr(CodeInvalidParameterValue, "The primary private IP address %s of %s cannot be unassigned.", ip, eniID)
		}
	}
	var events []Event
	for _, ip := range uniqueAddrs(ips) {
		if alloc, ok := s.eipOf(eniID, ip); ok {
			s.disassociate(alloc)
		}
		s.dropIP(eniID, ip)
		events = append(events, Event{IP: ip, VPC: n.vpc, PrevInstance: n.instance, PrevInterface: n.id})
	}
	return events, nil
}

// associate points Elastic IP alloc at private ip of eniID (its primary when ip is not valid) and returns the
// association ID. An Elastic IP associated elsewhere moves unless allowReassoc is explicitly false; an
// Elastic IP already on that private IP is replaced.
func (s *state) associate(alloc, eniID string, ip netip.Addr, allowReassoc *bool) (string, *APIError) {
	e, ok := s.eips[alloc]
	if !ok {
		return "", apiErr(CodeAllocationNotFound, "The allocation ID '%s' does not exist", alloc)
	}
	n, ok := s.enis[eniID]
	if !ok {
		return "", apiErr(CodeENINotFound, "The networkInterface ID '%s' does not exist", eniID)
	}
	if !ip.IsValid() {
		ip = n.ips[0]
	}
	if !slices.Contains(n.ips, ip) {
		return "", apiErr(CodeInvalidParameterValue, "The private IP address %s is not assigned to %s", ip, eniID)
	}
	if e.eni == eniID && e.private == ip {
		return e.assoc, nil
	}
	if e.assoc != "" && allowReassoc != nil && !*allowReassoc {
		return "", apiErr(CodeAlreadyAssociated, "resource %s is already associated with associate-id %s", alloc, e.assoc)
	}
	if other, ok := s.eipOf(eniID, ip); ok {
		s.disassociate(other)
	}
	e.eni, e.private, e.assoc = eniID, ip, s.newID("eipassoc")
	s.eips[alloc] = e
	return e.assoc, nil
}

// disassociateByID removes the association assoc.
func (s *state) disassociateByID(assoc string) *APIError {
	for _, id := range s.eipOrder {
		if s.eips[id].assoc == assoc && assoc != "" {
			s.disassociate(id)
			return nil
		}
	}
	return apiErr(CodeAssociationNotFound, "The association ID '%s' does not exist", assoc)
}

func (s *state) disassociate(alloc string) {
	e := s.eips[alloc]
	e.eni, e.assoc, e.private = "", "", netip.Addr{}
	s.eips[alloc] = e
}

// uniqueAddrs returns ips sorted, without repeats.
func uniqueAddrs(ips []netip.Addr) []netip.Addr {
	out := slices.Clone(ips)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// terminate ends an instance: the interfaces marked DeleteOnTermination go, with their addresses and
// Elastic IP associations; the others are detached and stay, available, with their addresses.
func (s *state) terminate(id string) ([]Event, *APIError) {
	in, ok := s.instances[id]
	if !ok {
		return nil, apiErr(CodeInstanceNotFound, "The instance ID '%s' does not exist", id)
	}
	var events []Event
	for _, eniID := range in.enis {
		n := s.enis[eniID]
		if !n.deleteOnTermination {
			n.instance, n.attachment, n.device, n.card = "", "", 0, 0
			s.enis[eniID] = n
			for _, ip := range n.ips {
				events = append(events, Event{IP: ip, VPC: n.vpc, Interface: n.id, PrevInstance: id, PrevInterface: eniID})
			}
			continue
		}
		events = append(events, s.deleteENI(n, id)...)
	}
	in.enis, in.state = nil, "terminated"
	s.instances[id] = in
	return events, nil
}

// deleteENI removes an interface with its addresses, prefixes and Elastic IP associations.
func (s *state) deleteENI(n eni, instanceID string) []Event {
	var events []Event
	for _, ip := range n.ips {
		if alloc, ok := s.eipOf(n.id, ip); ok {
			s.disassociate(alloc)
		}
		delete(s.owner, vpcAddr{n.vpc, ip})
		events = append(events, Event{IP: ip, VPC: n.vpc, PrevInstance: instanceID, PrevInterface: n.id})
	}
	for _, p := range n.prefixes {
		delete(s.prefixOwner, vpcPrefix{n.vpc, p})
	}
	delete(s.enis, n.id)
	s.eniOrder = slices.DeleteFunc(slices.Clone(s.eniOrder), func(e string) bool { return e == n.id })
	return events
}
