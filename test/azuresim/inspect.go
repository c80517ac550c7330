package azuresim

import (
	"fmt"
	"net/netip"
	"strings"
)

// Holder is where the simulator has a private IP.
type Holder struct {
	// Interface and Instance are the IDs of the NIC and of the VM (or scale set VM) it is attached to.
	Interface, Instance string
	IPConfig            string
	Primary             bool
	// PublicIP is the ID of the public IP address associated with the ip configuration, if any.
	PublicIP string
}

// Where returns the holder of ip as the NICs' configurations show it now (a write in progress counts).
func (s *Server) Where(ip netip.Addr) (Holder, bool) {
	out := s.HoldersOf(ip)
	if len(out) == 0 {
		return Holder{}, false
	}
	return out[0], true
}

// HoldersOf returns every ip configuration with ip, in every virtual network: never more than one per
// virtual network while the simulator keeps Azure's rules. Tests check those rules with it.
func (s *Server) HoldersOf(ip netip.Addr) []Holder {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Holder
	for _, k := range s.st.nicOrder {
		n := s.st.nics[k]
		for _, c := range n.ipconfigs {
			if c.ip == ip {
				out = append(out, Holder{Interface: n.id, Instance: n.attachedTo, IPConfig: c.name, Primary: c.primary, PublicIP: c.pip})
			}
		}
	}
	return out
}

// IPConfigs returns the names of the ip configurations of the NIC named name, in order.
func (s *Server) IPConfigs(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range s.st.nicOrder {
		if n := s.st.nics[k]; strings.EqualFold(n.name, name) {
			for _, c := range n.ipconfigs {
				out = append(out, c.name)
			}
		}
	}
	return out
}

// DeleteVM deletes a virtual machine and its NICs, as deleting an AKS node does: its addresses are freed
// (OnChange reports each) and later reads of the VM answer 404.
func (s *Server) DeleteVM(name string) error {
	s.fireMu.Lock()
	defer s.fireMu.Unlock()
	s.mu.Lock()
	var v *vm
	for _, cand := range s.st.vms {
		if strings.EqualFold(cand.name, name) {
			v = cand
		}
	}
	if v == nil {
		s.mu.Unlock()
		return fmt.Errorf("no virtual machine %q", name)
	}
	var events []Event
	for _, id := range v.nics {
		n := s.st.nics[key(id)]
		events = append(events, s.st.changes(n, n.ipconfigs, nil)...)
		delete(s.st.nics, key(id))
		s.st.nicOrder = remove(s.st.nicOrder, key(id))
	}
	delete(s.st.vms, key(v.id))
	s.mu.Unlock()
	s.notify(events)
	return nil
}

func remove(list []string, v string) []string {
	out := list[:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// AddIPConfigs adds secondary ip configurations with static addresses to the NIC named nicName at once, as
// another writer would (one per address, named prefix plus a number), bypassing the API. It refuses what
// the Network resource provider would refuse.
func (s *Server) AddIPConfigs(nicName, prefix string, ips []netip.Addr) error {
	s.fireMu.Lock()
	defer s.fireMu.Unlock()
	s.mu.Lock()
	var n *nic
	for _, k := range s.st.nicOrder {
		if strings.EqualFold(s.st.nics[k].name, nicName) {
			n = s.st.nics[k]
		}
	}
	if n == nil {
		s.mu.Unlock()
		return fmt.Errorf("no NIC %q", nicName)
	}
	next := cloneConfigs(n.ipconfigs)
	for i, ip := range ips {
		next = append(next, ipConfig{name: fmt.Sprintf("%s%d", prefix, i+1), ip: ip, static: true, subnet: n.ipconfigs[0].subnet})
	}
	if aerr := s.st.validate(n, next); aerr != nil {
		s.mu.Unlock()
		return aerr
	}
	events := s.st.changes(n, n.ipconfigs, next)
	n.ipconfigs, n.etag = next, s.st.newETag()
	s.mu.Unlock()
	s.notify(events)
	return nil
}
