package azuresim

import (
	"fmt"
	"net/netip"
	"strings"
)

// buildState turns a model into a state, refusing what Azure would never have let exist.
func buildState(m Model) (*state, error) {
	s := &state{sub: m.Subscription, location: m.Location, rg: m.ResourceGroup, subnets: map[string]*subnet{},
		vms: map[string]*vm{}, scaleSets: map[string]*scaleSet{}, vmssVMs: map[string]*vmssVM{}, nics: map[string]*nic{},
		pips: map[string]*pip{}, ops: map[string]*operation{}}
	if s.sub == "" {
		s.sub = "00000000-0000-4000-8000-000000000001"
	}
	if s.location == "" {
		s.location = "westeurope"
	}
	if s.rg == "" {
		s.rg = "egressgw"
	}
	steps := []func(Model) error{s.loadVNets, s.loadPIPs, s.loadVMs, s.loadScaleSets, s.loadAssociations}
	for _, step := range steps {
		if err := step(m); err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
	}
	return s, nil
}

func (s *state) loadVNets(m Model) error {
	for _, v := range m.VirtualNetworks {
		vnetID := s.networkID(v.ResourceGroup, "virtualNetworks", v.Name)
		for _, sp := range v.Subnets {
			prefix, err := netip.ParsePrefix(sp.AddressPrefix)
			if err != nil || !prefix.Addr().Is4() || prefix != prefix.Masked() {
				return fmt.Errorf("subnet %s/%s: addressPrefix %q is not an IPv4 network address", v.Name, sp.Name, sp.AddressPrefix)
			}
			id := vnetID + "/subnets/" + sp.Name
			if _, dup := s.subnets[key(id)]; dup || sp.Name == "" {
				return fmt.Errorf("subnet %s/%s: needs a unique name", v.Name, sp.Name)
			}
			s.subnets[key(id)] = &subnet{id: id, name: sp.Name, vnet: key(vnetID), prefix: prefix}
		}
	}
	return nil
}

func (s *state) loadPIPs(m Model) error {
	for _, p := range m.PublicIPs {
		addr, err := netip.ParseAddr(p.Address)
		id := s.networkID(p.ResourceGroup, "publicIPAddresses", p.Name)
		if _, dup := s.pips[key(id)]; err != nil || dup || p.Name == "" {
			return fmt.Errorf("public IP %q: needs a unique name and an address", p.Name)
		}
		s.pips[key(id)] = &pip{id: id, name: p.Name, addr: addr}
	}
	return nil
}

func (s *state) loadVMs(m Model) error {
	for _, spec := range m.VirtualMachines {
		if _, err := s.addVM(spec, ""); err != nil {
			return fmt.Errorf("virtual machine %q: %w", spec.Name, err)
		}
	}
	return nil
}

func (s *state) addVM(spec VMSpec, scaleSetID string) (*vm, error) {
	id := s.computeID(spec.ResourceGroup, "virtualMachines", spec.Name)
	if _, dup := s.vms[key(id)]; dup || spec.Name == "" || len(spec.NICs) == 0 {
		return nil, fmt.Errorf("needs a unique name and at least one NIC")
	}
	v := &vm{id: id, name: spec.Name, zone: spec.Zone, tags: spec.Tags, scaleSet: scaleSetID, vmID: s.newID()}
	for _, ns := range spec.NICs {
		nicID := s.networkID(ns.ResourceGroup, "networkInterfaces", ns.Name)
		if err := s.addNIC(nicID, ns, id, false); err != nil {
			return nil, err
		}
		v.nics = append(v.nics, nicID)
	}
	s.vms[key(id)] = v
	return v, nil
}

func (s *state) loadScaleSets(m Model) error {
	for _, ss := range m.ScaleSets {
		if ss.Orchestration != "Uniform" && ss.Orchestration != "Flexible" {
			return fmt.Errorf("scale set %q: orchestration must be Uniform or Flexible", ss.Name)
		}
		set := &scaleSet{id: s.computeID(ss.ResourceGroup, "virtualMachineScaleSets", ss.Name), name: ss.Name, orchestration: ss.Orchestration}
		s.scaleSets[key(set.id)] = set
		for _, in := range ss.Instances {
			if err := s.addInstance(set, ss.ResourceGroup, in); err != nil {
				return fmt.Errorf("scale set %q instance %q: %w", ss.Name, in.ID, err)
			}
		}
	}
	return nil
}

func (s *state) addInstance(set *scaleSet, rg string, in InstanceSpec) error {
	inst := &vmssVM{id: set.id + "/virtualMachines/" + in.ID, instanceID: in.ID, name: set.name + "_" + in.ID, zone: in.Zone, scaleSet: set.id}
	if set.orchestration == "Flexible" {
		v, err := s.addVM(VMSpec{Name: inst.name, ResourceGroup: rg, Zone: in.Zone, NICs: in.NICs}, set.id)
		if err != nil {
			return err
		}
		inst.nics = v.nics
	} else {
		for _, ns := range in.NICs {
			nicID := inst.id + "/networkInterfaces/" + ns.Name
			if err := s.addNIC(nicID, ns, inst.id, true); err != nil {
				return err
			}
			inst.nics = append(inst.nics, nicID)
		}
	}
	s.vmssVMs[key(inst.id)] = inst
	return nil
}

func (s *state) addNIC(id string, spec NICSpec, attachedTo string, uniform bool) error {
	sn, ok := s.subnets[key(s.subnetIDOf(spec.Subnet))]
	if !ok {
		return fmt.Errorf("NIC %q: unknown subnet %q (write <vnet>/<subnet>)", spec.Name, spec.Subnet)
	}
	if _, dup := s.nics[key(id)]; dup || len(spec.IPs) == 0 {
		return fmt.Errorf("NIC %q: needs a unique name and at least one IP", spec.Name)
	}
	n := &nic{id: id, name: spec.Name, attachedTo: attachedTo, uniform: uniform, etag: s.newETag(), mac: macAddress(len(s.nicOrder) + 1)}
	for i, raw := range spec.IPs {
		ip, err := netip.ParseAddr(raw)
		if err != nil || !sn.prefix.Contains(ip) {
			return fmt.Errorf("NIC %q: %q is not an address of subnet %s", spec.Name, raw, sn.prefix)
		}
		if h, _, taken := s.holder(sn.vnet, ip); taken {
			return fmt.Errorf("NIC %q: %s is already on %s", spec.Name, ip, h.name)
		}
		c := ipConfig{name: fmt.Sprintf("ipconfig%d", i+1), ip: ip, primary: i == 0, subnet: sn.id}
		if i == 0 {
			c.pools = spec.BackendPools
		}
		n.ipconfigs = append(n.ipconfigs, c)
	}
	s.nics[key(id)] = n
	s.nicOrder = append(s.nicOrder, key(id))
	return nil
}

// subnetIDOf turns the model's "<vnet>/<subnet>" (in the default resource group) or a full ID into an ID.
func (s *state) subnetIDOf(ref string) string {
	if strings.HasPrefix(ref, "/") {
		return ref
	}
	vnet, sn, _ := strings.Cut(ref, "/")
	return s.networkID("", "virtualNetworks", vnet) + "/subnets/" + sn
}

func (s *state) loadAssociations(m Model) error {
	for _, p := range m.PublicIPs {
		if p.IPConfig == "" {
			continue
		}
		nicName, cfgName, _ := strings.Cut(p.IPConfig, "/")
		n, ok := s.nics[key(s.networkID("", "networkInterfaces", nicName))]
		i := -1
		if ok {
			for j, c := range n.ipconfigs {
				if strings.EqualFold(c.name, cfgName) {
					i = j
				}
			}
		}
		if i < 0 {
			return fmt.Errorf("public IP %q: unknown ip configuration %q", p.Name, p.IPConfig)
		}
		n.ipconfigs[i].pip = s.networkID(p.ResourceGroup, "publicIPAddresses", p.Name)
	}
	return nil
}

func macAddress(i int) string {
	return fmt.Sprintf("00-0D-3A-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff)
}
