package ec2sim

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// state is the simulated VPC. It is copied whole for delayed visibility, so it holds values, not pointers
// shared with other copies.
type state struct {
	region, account string
	subnets         map[string]subnet
	subnetOrder     []string
	types           map[string]InstanceTypeSpec
	instances       map[string]instance
	instanceOrder   []string
	enis            map[string]eni
	eniOrder        []string
	eips            map[string]eip
	eipOrder        []string
	owner           map[vpcAddr]string   // private IP -> ENI holding it
	prefixOwner     map[vpcPrefix]string // delegated /28 prefix -> ENI holding it
	groups          map[string]string    // security group ID -> its VPC
	tokens          map[string]tokenUse  // ClientToken of CreateNetworkInterface -> what it created
	nextID          int
	detachDelay     time.Duration // how long a detaching interface stays "detaching"
	now             time.Time     // the time of the request being served, set by the server
}

// tokenUse remembers an idempotent create: the request's parameters and the interface it made.
type tokenUse struct {
	params string
	eni    eni
}

type subnet struct {
	id, vpc, zone string
	cidr          netip.Prefix
	tags          map[string]string
}

type instance struct {
	id, typ, state    string
	zone, subnet, vpc string // of the primary interface, kept after termination
	tags              map[string]string
	enis              []string // by device index
}

type eni struct {
	id, subnet, vpc, zone, instance, mac string
	device, card                         int
	ips                                  []netip.Addr   // primary first
	prefixes                             []netip.Prefix // delegated /28 prefixes; each takes one address slot
	description                          string
	groups                               []string
	tags                                 map[string]string
	attachment                           string    // attachment ID while attached
	detachedAt                           time.Time // until this the interface is still detaching
	deleteOnTermination                  bool
}

// slots is how many of the interface's address slots are used: every address and every prefix.
func (e eni) slots() int { return len(e.ips) + len(e.prefixes) }

// status is the interface's state as EC2 reports it at now: EC2 detaches asynchronously.
func (e eni) status(now time.Time) string {
	switch {
	case e.attachment != "":
		return "in-use"
	case now.Before(e.detachedAt):
		return "detaching"
	}
	return "available"
}

type eip struct {
	alloc, assoc, eni string
	public, private   netip.Addr
	tags              map[string]string
}

type vpcAddr struct {
	vpc string
	ip  netip.Addr
}

type vpcPrefix struct {
	vpc    string
	prefix netip.Prefix
}

func (s *state) clone() *state {
	c := *s
	c.subnets = maps.Clone(s.subnets)
	c.instances = maps.Clone(s.instances)
	c.enis = maps.Clone(s.enis)
	for id, e := range c.enis {
		e.ips, e.prefixes, e.tags = slices.Clone(e.ips), slices.Clone(e.prefixes), maps.Clone(e.tags)
		c.enis[id] = e
	}
	for id, in := range c.instances {
		in.enis, in.tags = slices.Clone(in.enis), maps.Clone(in.tags)
		c.instances[id] = in
	}
	c.eips = maps.Clone(s.eips)
	c.owner = maps.Clone(s.owner)
	c.prefixOwner = maps.Clone(s.prefixOwner)
	c.tokens = maps.Clone(s.tokens)
	c.eniOrder = slices.Clone(s.eniOrder)
	return &c
}

// newID returns a fresh ID with the given prefix, in AWS's 17 hex digit form, skipping IDs the model gave.
func (s *state) newID(prefix string) string {
	for {
		s.nextID++
		id := fmt.Sprintf("%s-%017x", prefix, s.nextID)
		_, eni := s.enis[id]
		_, inst := s.instances[id]
		_, addr := s.eips[id]
		if !eni && !inst && !addr {
			return id
		}
	}
}

// eipOf returns the allocation ID of the Elastic IP associated with ip on eni, if any.
func (s *state) eipOf(eniID string, ip netip.Addr) (string, bool) {
	for _, id := range s.eipOrder {
		if e := s.eips[id]; e.eni == eniID && e.private == ip {
			return id, true
		}
	}
	return "", false
}

// limit is how many IPv4 addresses (prefixes included) an interface may hold: the instance type's limit
// while attached. A detached interface is bounded by the largest type, as EC2 checks it again on attach.
func (s *state) limit(e eni) int {
	if e.instance != "" {
		return s.types[s.instances[e.instance].typ].IPv4PerInterface
	}
	most := 0
	for _, t := range s.types {
		most = max(most, t.IPv4PerInterface)
	}
	return most
}

// buildState turns a model into a state, refusing anything AWS would never have let exist.
func buildState(m Model) (*state, error) {
	s := &state{region: m.Region, account: m.AccountID, subnets: map[string]subnet{}, types: map[string]InstanceTypeSpec{},
		instances: map[string]instance{}, enis: map[string]eni{}, eips: map[string]eip{}, owner: map[vpcAddr]string{},
		prefixOwner: map[vpcPrefix]string{}, groups: map[string]string{}, tokens: map[string]tokenUse{}}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "123456789012"
	}
	for _, t := range append(slices.Clone(builtinTypes), m.InstanceTypes...) {
		s.types[t.Name] = t
	}
	steps := []func(Model) error{s.loadSubnets, s.loadInstances, s.loadEIPs}
	for _, step := range steps {
		if err := step(m); err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
	}
	return s, nil
}

func (s *state) loadSubnets(m Model) error {
	for _, sp := range m.Subnets {
		cidr, err := netip.ParsePrefix(sp.CIDR)
		if err != nil || !cidr.Addr().Is4() || cidr != cidr.Masked() {
			return fmt.Errorf("subnet %q: cidr %q is not an IPv4 network address", sp.ID, sp.CIDR)
		}
		if _, dup := s.subnets[sp.ID]; dup || sp.ID == "" || sp.VPC == "" || sp.Zone == "" {
			return fmt.Errorf("subnet %q: needs a unique id, a vpc and a zone", sp.ID)
		}
		s.subnets[sp.ID] = subnet{id: sp.ID, vpc: sp.VPC, zone: sp.Zone, cidr: cidr, tags: sp.Tags}
		s.subnetOrder = append(s.subnetOrder, sp.ID)
		s.groups[defaultGroupID(sp.VPC)] = sp.VPC
	}
	for _, g := range m.SecurityGroups {
		if g.ID == "" || g.VPC == "" {
			return fmt.Errorf("security group %q: needs an id and a vpc", g.ID)
		}
		s.groups[g.ID] = g.VPC
	}
	return nil
}

func (s *state) loadInstances(m Model) error {
	for _, is := range m.Instances {
		if err := s.loadInstance(is); err != nil {
			return fmt.Errorf("instance %q: %w", is.ID, err)
		}
	}
	return nil
}

func (s *state) loadInstance(is InstanceSpec) error {
	t, ok := s.types[is.Type]
	if !ok {
		return fmt.Errorf("unknown instance type %q (add it under instanceTypes)", is.Type)
	}
	if _, dup := s.instances[is.ID]; dup || is.ID == "" {
		return fmt.Errorf("needs a unique id")
	}
	if len(is.Interfaces) == 0 || len(is.Interfaces) > t.MaxInterfaces {
		return fmt.Errorf("has %d interfaces; %s allows 1 to %d", len(is.Interfaces), t.Name, t.MaxInterfaces)
	}
	in := instance{id: is.ID, typ: is.Type, state: is.State, tags: is.Tags}
	if in.state == "" {
		in.state = "running"
	}
	for i, spec := range is.Interfaces {
		if err := s.loadENI(spec, is.ID, i, t); err != nil {
			return fmt.Errorf("interface %q: %w", spec.ID, err)
		}
		in.enis = append(in.enis, spec.ID)
	}
	primary := s.enis[in.enis[0]]
	in.zone, in.subnet, in.vpc = primary.zone, primary.subnet, primary.vpc
	s.instances[in.id] = in
	s.instanceOrder = append(s.instanceOrder, in.id)
	return nil
}

func (s *state) loadENI(spec InterfaceSpec, instanceID string, device int, t InstanceTypeSpec) error {
	sn, ok := s.subnets[spec.Subnet]
	if !ok {
		return fmt.Errorf("unknown subnet %q", spec.Subnet)
	}
	if _, dup := s.enis[spec.ID]; dup || spec.ID == "" {
		return fmt.Errorf("needs a unique id")
	}
	if len(spec.IPs) == 0 || len(spec.IPs) > t.IPv4PerInterface {
		return fmt.Errorf("has %d IPs; %s allows 1 to %d per interface", len(spec.IPs), t.Name, t.IPv4PerInterface)
	}
	e := eni{id: spec.ID, subnet: sn.id, vpc: sn.vpc, zone: sn.zone, instance: instanceID, device: device, mac: macAddress(len(s.eniOrder) + 1),
		groups: []string{defaultGroupID(sn.vpc)}, tags: spec.Tags, description: spec.Description,
		attachment: "eni-attach-" + idSuffix(spec.ID), deleteOnTermination: device == 0 || spec.DeleteOnTermination}
	if device == 0 {
		e.description = "Primary network interface"
	}
	for _, raw := range spec.IPs {
		ip, err := s.usableIP(raw, sn)
		if err != nil {
			return err
		}
		e.ips = append(e.ips, ip)
		s.owner[vpcAddr{sn.vpc, ip}] = e.id
	}
	for _, raw := range spec.Prefixes {
		if err := s.modelPrefix(&e, raw); err != nil {
			return err
		}
	}
	if e.slots() > t.IPv4PerInterface {
		return fmt.Errorf("has %d addresses and prefixes; %s allows %d per interface", e.slots(), t.Name, t.IPv4PerInterface)
	}
	s.enis[e.id] = e
	s.eniOrder = append(s.eniOrder, e.id)
	return nil
}

func (s *state) modelPrefix(e *eni, raw string) error {
	p, err := netip.ParsePrefix(raw)
	if err != nil || p.Bits() != 28 || p != p.Masked() {
		return fmt.Errorf("prefix %q is not a /28 network address", raw)
	}
	if why := s.prefixUnusable(p, s.subnets[e.subnet]); why != "" {
		return fmt.Errorf("prefix %s: %s", p, why)
	}
	e.prefixes = append(e.prefixes, p)
	s.prefixOwner[vpcPrefix{e.vpc, p}] = e.id
	return nil
}

// usableIP parses raw and checks that the subnet could hand it out and nobody holds it yet.
func (s *state) usableIP(raw string, sn subnet) (netip.Addr, error) {
	ip, err := netip.ParseAddr(raw)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", raw)
	}
	if why := reservedReason(ip, sn.cidr); why != "" {
		return netip.Addr{}, fmt.Errorf("%s: %s", ip, why)
	}
	if holder, ok := s.owner[vpcAddr{sn.vpc, ip}]; ok {
		return netip.Addr{}, fmt.Errorf("%s is already on %s", ip, holder)
	}
	if holder, ok := s.prefixHolder(sn.vpc, ip); ok {
		return netip.Addr{}, fmt.Errorf("%s is inside a prefix delegated to %s", ip, holder)
	}
	return ip, nil
}

func (s *state) loadEIPs(m Model) error {
	for _, sp := range m.ElasticIPs {
		pub, err := netip.ParseAddr(sp.PublicIP)
		if _, dup := s.eips[sp.AllocationID]; err != nil || dup || sp.AllocationID == "" {
			return fmt.Errorf("elastic IP %q: needs a unique allocationID and a publicIP", sp.AllocationID)
		}
		e := eip{alloc: sp.AllocationID, public: pub, tags: sp.Tags}
		if sp.Interface != "" {
			if e, err = s.modelAssociation(e, sp); err != nil {
				return fmt.Errorf("elastic IP %q: %w", sp.AllocationID, err)
			}
		}
		s.eips[e.alloc] = e
		s.eipOrder = append(s.eipOrder, e.alloc)
	}
	return nil
}

func (s *state) modelAssociation(e eip, sp ElasticIPSpec) (eip, error) {
	n, ok := s.enis[sp.Interface]
	if !ok {
		return e, fmt.Errorf("unknown interface %q", sp.Interface)
	}
	e.private = n.ips[0]
	if sp.PrivateIP != "" {
		e.private, _ = netip.ParseAddr(sp.PrivateIP)
	}
	if !slices.Contains(n.ips, e.private) {
		return e, fmt.Errorf("%s is not an address of %s", sp.PrivateIP, n.id)
	}
	e.eni, e.assoc = n.id, s.newID("eipassoc")
	return e, nil
}

// reservedReason says why AWS would not hand out ip in cidr ("" when it would): it must be inside the subnet
// and not one of the five addresses AWS reserves (network, router, DNS, future use, broadcast).
func reservedReason(ip netip.Addr, cidr netip.Prefix) string {
	if !cidr.Contains(ip) {
		return fmt.Sprintf("address does not fall within the subnet's address range %s", cidr)
	}
	first := cidr.Masked().Addr()
	for i := 0; i < 4; i++ {
		if ip == first {
			return fmt.Sprintf("address is reserved by AWS in subnet %s", cidr)
		}
		first = first.Next()
	}
	if lastAddr(cidr) == ip {
		return fmt.Sprintf("address is reserved by AWS in subnet %s", cidr)
	}
	return ""
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func macAddress(i int) string {
	return fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
}
