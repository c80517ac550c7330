package azuresim

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// state is the simulated estate. Maps are keyed by the lower-cased ARM ID (ARM IDs compare without case);
// the values keep the IDs as the model spelt them.
type state struct {
	sub, location, rg string
	subnets           map[string]*subnet
	vms               map[string]*vm
	scaleSets         map[string]*scaleSet
	vmssVMs           map[string]*vmssVM
	nics              map[string]*nic
	nicOrder          []string
	pips              map[string]*pip
	ops               map[string]*operation
	seq               int
}

type subnet struct {
	id, name, vnet string // vnet: lower-cased ID of the virtual network
	prefix         netip.Prefix
}

type vm struct {
	id, name, zone, vmID string
	tags                 map[string]string
	nics                 []string // NIC IDs, primary first
	scaleSet             string   // ID of the Flexible scale set it belongs to, if any
}

type scaleSet struct {
	id, name, orchestration string
}

// vmssVM is a scale set instance as the scale set VM API shows it.
type vmssVM struct {
	id, instanceID, name, zone, scaleSet string
	nics                                 []string
}

type nic struct {
	id, name   string
	attachedTo string // ID of the VM or scale set VM
	mac        string
	etag       string
	uniform    bool // a Uniform scale set instance's NIC: part of the scale set model, not writable
	ipconfigs  []ipConfig
	op         *operation // the write in progress, if any
	failed     bool       // the last write failed (provisioningState Failed until the next one)
}

type ipConfig struct {
	name    string
	ip      netip.Addr
	static  bool
	primary bool
	subnet  string // subnet ID
	pip     string // public IP address ID, if any
	pools   []string
}

type pip struct {
	id, name string
	addr     netip.Addr
}

// operation is one accepted NIC write, in progress until done.
type operation struct {
	id, nic    string
	done       time.Time
	latency    time.Duration
	status     string     // InProgress, Succeeded, Failed
	failure    *APIError  // set when it is to fail (injected)
	prev, next []ipConfig // the configurations before and after the write
}

func key(id string) string { return strings.ToLower(id) }

func (s *state) rgID(rg string) string {
	if rg == "" {
		rg = s.rg
	}
	return "/subscriptions/" + s.sub + "/resourceGroups/" + rg
}

func (s *state) networkID(rg, typ, name string) string {
	return s.rgID(rg) + "/providers/Microsoft.Network/" + typ + "/" + name
}

func (s *state) computeID(rg, typ, name string) string {
	return s.rgID(rg) + "/providers/Microsoft.Compute/" + typ + "/" + name
}

func (s *state) newETag() string {
	s.seq++
	return fmt.Sprintf(`W/"00000000-0000-4000-8000-%012x"`, s.seq)
}

func (s *state) newID() string {
	s.seq++
	return fmt.Sprintf("5e1a0000-0000-4000-8000-%012x", s.seq)
}

// subnetOf returns the subnet an ID names.
func (s *state) subnetOf(id string) (*subnet, bool) {
	sn, ok := s.subnets[key(id)]
	return sn, ok
}

// holder returns the NIC (and ip configuration) holding ip in vnet, counting the addresses a write in
// progress is still releasing: Azure frees them only when the write completes.
func (s *state) holder(vnet string, ip netip.Addr) (*nic, string, bool) {
	for _, k := range s.nicOrder {
		n := s.nics[k]
		for _, cfgs := range n.held() {
			for _, c := range cfgs {
				if c.ip == ip && s.vnetOf(c.subnet) == vnet {
					return n, c.name, true
				}
			}
		}
	}
	return nil, "", false
}

// pipHolder returns the NIC and ip configuration the public IP is associated with, if any.
func (s *state) pipHolder(pipID string) (*nic, string, bool) {
	for _, k := range s.nicOrder {
		n := s.nics[k]
		for _, cfgs := range n.held() {
			for _, c := range cfgs {
				if c.pip != "" && key(c.pip) == key(pipID) {
					return n, c.name, true
				}
			}
		}
	}
	return nil, "", false
}

// held is what the NIC holds: its configurations and, while a write is in progress, those it had before.
func (n *nic) held() [][]ipConfig {
	if n.op != nil && n.op.status == statusInProgress {
		return [][]ipConfig{n.ipconfigs, n.op.prev}
	}
	return [][]ipConfig{n.ipconfigs}
}

func (s *state) vnetOf(subnetID string) string {
	if sn, ok := s.subnetOf(subnetID); ok {
		return sn.vnet
	}
	return ""
}

func (n *nic) config(name string) (ipConfig, bool) {
	i := slices.IndexFunc(n.ipconfigs, func(c ipConfig) bool { return strings.EqualFold(c.name, name) })
	if i < 0 {
		return ipConfig{}, false
	}
	return n.ipconfigs[i], true
}

func (n *nic) ipConfigID(name string) string { return n.id + "/ipConfigurations/" + name }

func cloneConfigs(cs []ipConfig) []ipConfig {
	out := slices.Clone(cs)
	for i := range out {
		out[i].pools = slices.Clone(out[i].pools)
	}
	return out
}
