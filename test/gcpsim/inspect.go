package gcpsim

import (
	"fmt"
	"maps"
	"net/netip"
)

// Holder is where the simulator has an address.
type Holder struct {
	Instance, Zone, Interface string
	// Primary is true for the NIC's primary IP; Range is the alias range holding the address otherwise.
	Primary bool
	Range   netip.Prefix
}

// Where returns the NIC holding ip (as primary IP or inside an alias range), operations due by now
// applied.
func (s *Server) Where(ip netip.Addr) (Holder, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	for _, h := range s.holders(ip) {
		return h, true
	}
	return Holder{}, false
}

// HoldersOf returns every NIC holding ip: never more than one while the simulator keeps Compute Engine's
// rule that an address of a network belongs to one NIC. Tests check that rule with it.
func (s *Server) HoldersOf(ip netip.Addr) []Holder {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	return s.holders(ip)
}

func (s *Server) holders(ip netip.Addr) []Holder {
	var out []Holder
	for _, key := range s.st.order {
		in := s.st.instances[key]
		for _, n := range in.nics {
			if n.ip == ip {
				out = append(out, Holder{Instance: in.name, Zone: in.zone, Interface: n.name, Primary: true})
			}
			for _, a := range n.aliases {
				if a.prefix.Contains(ip) {
					out = append(out, Holder{Instance: in.name, Zone: in.zone, Interface: n.name, Range: a.prefix})
				}
			}
		}
	}
	return out
}

// Aliases returns the alias ranges of an instance's NIC as the API would show them.
func (s *Server) Aliases(zone, name, nicName string) []AliasSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	var out []AliasSpec
	if n := s.nicOf(zone, name, nicName); n != nil {
		for _, a := range n.aliases {
			out = append(out, AliasSpec{IPCIDRRange: a.prefix.String(), SubnetworkRangeName: a.rangeName})
		}
	}
	return out
}

// SetAliases replaces a NIC's alias ranges at once, as another tool of the project would (with the
// API's checks, a new fingerprint and OnChange events).
func (s *Server) SetAliases(zone, name, nicName string, specs []AliasSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nicOf(zone, name, nicName)
	if n == nil {
		return fmt.Errorf("no NIC %s on %s/%s", nicName, zone, name)
	}
	var in []aliasJSON
	for _, a := range specs {
		in = append(in, aliasJSON{IPCIDRRange: a.IPCIDRRange, SubnetworkRangeName: a.SubnetworkRangeName})
	}
	aliases, aerr := s.st.checkAliases(n, in)
	if aerr != nil {
		return aerr
	}
	if oerr := s.st.checkInUse(n, aliases); oerr != nil {
		return fmt.Errorf("%s: %s", oerr.Code, oerr.Message)
	}
	before := n.aliases
	n.aliases, n.fingerprint = aliases, s.st.fingerprint()
	s.report(s.st.instances[zone+"/"+name], n, before, aliases)
	return nil
}

func (s *Server) nicOf(zone, name, nicName string) *nic {
	in := s.st.instances[zone+"/"+name]
	if in == nil {
		return nil
	}
	for _, n := range in.nics {
		if n.name == nicName {
			return n
		}
	}
	return nil
}

// Settle completes the operations whose time has come; the lab calls it on a ticker so that OnChange
// fires without a client polling.
func (s *Server) Settle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
}

// Calls returns how many requests of each method the server has received, whatever their outcome.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// Permissions returns how many calls needed each IAM permission, whether the caller had it or not.
func (s *Server) Permissions() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.perms)
}

// Operations returns the status of every operation so far, by name.
func (s *Server) Operations() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	out := map[string]string{}
	for _, op := range s.ops {
		out[op.name] = op.status
	}
	return out
}
