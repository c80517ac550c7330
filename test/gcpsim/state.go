package gcpsim

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// AliasRangesPerInterface is Compute Engine's published limit of alias IP ranges on one network interface
// (VPC quotas, "per instance" limits: 100, whatever the machine type).
const AliasRangesPerInterface = 100

// Instance statuses the simulator uses (the API's names).
const (
	StatusRunning  = "RUNNING"
	StatusStopping = "STOPPING"
)

// state is the simulated project. Guarded by Server.mu.
type state struct {
	project   string
	limit     int
	subnets   map[string]*subnet // by region/name
	instances map[string]*instance
	order     []string // instance keys (zone/name) in model order
	nextID    uint64
}

type subnet struct {
	id                    uint64
	name, region, network string
	primary               netip.Prefix
	secondary             []SecondaryRange
}

type instance struct {
	id                       uint64
	name, zone, machineType  string
	status                   string
	nics                     []*nic
	hung                     bool   // its operations never finish
	busy                     string // name of the operation in flight on it, if any
	deleteWhenOperationsDone bool
}

type nic struct {
	name        string
	subnet      *subnet
	ip          netip.Addr
	aliases     []alias
	fingerprint string
}

type alias struct {
	prefix    netip.Prefix
	rangeName string
}

func (s *state) newID() uint64 {
	s.nextID++
	return 1_000_000_000_000 + s.nextID
}

// fingerprint is a new opaque value for a NIC that just changed.
func (s *state) fingerprint() string {
	return fmt.Sprintf("fp%012x", s.newID())
}

func regionOf(zone string) string {
	if i := strings.LastIndex(zone, "-"); i > 0 {
		return zone[:i]
	}
	return zone
}

func buildState(m Model) (*state, error) {
	s := &state{project: m.Project, limit: m.AliasRangesPerInterface, subnets: map[string]*subnet{}, instances: map[string]*instance{}}
	if s.project == "" {
		return nil, fmt.Errorf("model: project is required")
	}
	if s.limit <= 0 {
		s.limit = AliasRangesPerInterface
	}
	for _, sp := range m.Subnetworks {
		if err := s.loadSubnet(sp); err != nil {
			return nil, fmt.Errorf("model: subnetwork %q: %w", sp.Name, err)
		}
	}
	for _, is := range m.Instances {
		if err := s.loadInstance(is); err != nil {
			return nil, fmt.Errorf("model: instance %q: %w", is.Name, err)
		}
	}
	return s, nil
}

func (s *state) loadSubnet(sp SubnetworkSpec) error {
	primary, err := netip.ParsePrefix(sp.IPCIDRRange)
	if err != nil || !primary.Addr().Is4() || primary != primary.Masked() {
		return fmt.Errorf("ipCidrRange %q is not an IPv4 network address", sp.IPCIDRRange)
	}
	key := sp.Region + "/" + sp.Name
	if _, dup := s.subnets[key]; dup || sp.Name == "" || sp.Region == "" || sp.Network == "" {
		return fmt.Errorf("needs a unique name, a region and a network")
	}
	for _, r := range sp.SecondaryIPRanges {
		if p, err := netip.ParsePrefix(r.IPCIDRRange); err != nil || p != p.Masked() || r.RangeName == "" {
			return fmt.Errorf("secondary range %q: %q is not a network address", r.RangeName, r.IPCIDRRange)
		}
	}
	s.subnets[key] = &subnet{id: s.newID(), name: sp.Name, region: sp.Region, network: sp.Network, primary: primary,
		secondary: slices.Clone(sp.SecondaryIPRanges)}
	return nil
}

func (s *state) loadInstance(is InstanceSpec) error {
	key := is.Zone + "/" + is.Name
	if _, dup := s.instances[key]; dup || is.Name == "" || is.Zone == "" || len(is.NetworkInterfaces) == 0 {
		return fmt.Errorf("needs a unique name in its zone and a network interface")
	}
	in := &instance{id: s.newID(), name: is.Name, zone: is.Zone, machineType: is.MachineType, status: is.Status}
	if in.machineType == "" {
		in.machineType = "e2-standard-4"
	}
	if in.status == "" {
		in.status = StatusRunning
	}
	s.instances[key] = in // visible to the conflict checks of its own later interfaces
	s.order = append(s.order, key)
	for i, spec := range is.NetworkInterfaces {
		if err := s.loadNIC(in, i, spec); err != nil {
			delete(s.instances, key)
			s.order = s.order[:len(s.order)-1]
			return fmt.Errorf("nic%d: %w", i, err)
		}
	}
	return nil
}

func (s *state) loadNIC(in *instance, i int, spec InterfaceSpec) error {
	sn, ok := s.subnets[regionOf(in.zone)+"/"+spec.Subnetwork]
	if !ok {
		return fmt.Errorf("no subnetwork %q in region %s", spec.Subnetwork, regionOf(in.zone))
	}
	ip, err := netip.ParseAddr(spec.NetworkIP)
	if err != nil || reservedReason(ip, sn.primary) != "" {
		return fmt.Errorf("networkIP %q is not a usable address of %s", spec.NetworkIP, sn.primary)
	}
	n := &nic{name: fmt.Sprintf("nic%d", i), subnet: sn, ip: ip, fingerprint: s.fingerprint()}
	if holder := s.holderOf(sn.network, netip.PrefixFrom(ip, 32), nil); holder != "" {
		return fmt.Errorf("networkIP %s is already used by %s", ip, holder)
	}
	var specs []aliasJSON
	for _, a := range spec.AliasIPRanges {
		specs = append(specs, aliasJSON{IPCIDRRange: a.IPCIDRRange, SubnetworkRangeName: a.SubnetworkRangeName})
	}
	aliases, aerr := s.checkAliases(n, specs)
	if aerr != nil {
		return fmt.Errorf("%s", aerr.Message)
	}
	if aerr := s.checkInUse(n, aliases); aerr != nil {
		return fmt.Errorf("%s", aerr.Message)
	}
	n.aliases = aliases
	in.nics = append(in.nics, n)
	return nil
}

// holderOf names the NIC ("zone/instance/nicN") in network whose primary IP or alias ranges overlap p,
// skipping except; "" when none does.
func (s *state) holderOf(network string, p netip.Prefix, except *nic) string {
	for _, key := range s.order {
		in := s.instances[key]
		for _, n := range in.nics {
			if n == except || n.subnet.network != network {
				continue
			}
			if p.Contains(n.ip) || slices.ContainsFunc(n.aliases, func(a alias) bool { return a.prefix.Overlaps(p) }) {
				return in.zone + "/" + in.name + "/" + n.name
			}
		}
	}
	return ""
}

// reservedReason says why Compute Engine would not hand out ip from primary range cidr ("" when it
// would): it must be inside, and not the network, gateway, second-to-last or broadcast address.
func reservedReason(ip netip.Addr, cidr netip.Prefix) string {
	if !ip.Is4() || !cidr.Contains(ip) {
		return fmt.Sprintf("%s is outside the subnetwork's primary range %s", ip, cidr)
	}
	first := cidr.Masked().Addr()
	last := lastAddr(cidr)
	if ip == first || ip == first.Next() || ip == last || ip == last.Prev() {
		return fmt.Sprintf("%s is reserved in the subnetwork's primary range %s", ip, cidr)
	}
	return ""
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | (uint32(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
