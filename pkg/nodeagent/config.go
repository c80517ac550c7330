// Package nodeagent holds the egressgw node agent's datapath: it turns the cluster's view into the
// kernel state of one node (a VXLAN device, static peers, policy routing, its own nftables table with
// its sets, and one iptables accept chain) and keeps the kernel in that state.
package nodeagent

import (
	"errors"
	"fmt"
	"math/bits"
	"path/filepath"

	"github.com/vishvananda/netlink"
)

// Config is the datapath's tunable part. Every field has a safe default (DefaultConfig); the defaults
// avoid the marks, ports and table ids that Kubernetes and common CNI plugins use.
type Config struct {
	// Device is the VXLAN device's name.
	Device string
	// VNI is the VXLAN network identifier of the egress tunnel.
	VNI uint32
	// Port is the VXLAN UDP port. It must differ from the ports CNI overlays use (4789, 8472, 7789).
	Port uint16
	// SteerMask holds the fwmark bits that name the gateway a steered packet goes to (one value per
	// gateway node). It must be one contiguous run of bits.
	SteerMask uint32
	// ReplyMark is the single fwmark bit that sends replies of tunnelled flows back into the tunnel.
	ReplyMark uint32
	// TableBase is the route table of gateway index 0; gateway i (1..max) uses TableBase+i.
	TableBase uint32
	// ReturnTable holds the gateway side's per-pod return routes.
	ReturnTable uint32
	// RulePriority is the priority of the rules that keep the tunnel's own packets out of the tunnel;
	// the steering and return rules use RulePriority+1. Other owners may have rules at the same
	// priorities (Cilium moves the kernel's local-table rule to 100): only rules with egressgw's masks
	// and tables are egressgw's.
	RulePriority int
	// MTU of the tunnel device; 0 means the uplink's MTU minus the 50 bytes of VXLAN overhead.
	MTU int
	// Uplink is the underlay interface; empty means the interface that holds the node's IP.
	Uplink string
	// Iptables is the iptables backend of egressgw's one iptables rule (the accept of tunnel traffic at
	// the end of filter FORWARD) and of the iptables rules the mark check reads: "" runs iptables-save
	// and iptables-restore, whichever backend they are; IptablesLegacy and IptablesNft their -legacy and
	// -nft variants. It must be the backend the node's own rules use (DetectIptables): rules in the other
	// one are invisible to them, and a DROP policy there still drops the tunnel traffic.
	Iptables string
	// ProcSysDir is where the kernel's settings are read and written; empty means /proc/sys. An
	// unprivileged container's /proc/sys is read-only, so the chart mounts the host's /proc/sys/net
	// (hostPath) at /host/proc/sys/net and passes /host/proc/sys (docs/agent.md).
	ProcSysDir string
}

// Marks that well-known owners use by default, on every node they run on; the defaults and validation
// stay clear of them (docs/datapath.md has the survey). What a node really runs, custom values
// included, is checked at start by CheckMarks.
const (
	kubernetesProxyMarks = 0x4000 | 0x8000 // masquerade and drop marks of the Kubernetes service proxy
	awsVPCCNIConnmark    = 0x80            // the AWS VPC CNI's connmark and fwmark (AWS_VPC_K8S_CNI_CONNMARK)
	calicoMarkMask       = 0xffff0000      // Calico's default IptablesMarkMask
	ciliumMagicMarks     = 0x0f00          // Cilium's magic marks (proxy, host, overlay, encryption)
	vxlanHeaderOverhead  = 50
)

// knownMarkOwners names the owners of the bits above, for validation messages.
var knownMarkOwners = []struct {
	bits  uint32
	owner string
}{
	{kubernetesProxyMarks, "the Kubernetes service proxy's masquerade/drop marks"},
	{awsVPCCNIConnmark, "the AWS VPC CNI's default connmark"},
	{calicoMarkMask, "Calico's default mark mask"},
	{ciliumMagicMarks, "Cilium's magic marks"},
}

// reservedPorts are VXLAN ports that CNI overlays and other egress tunnels already use.
var reservedPorts = map[uint16]string{
	4789: "the IANA VXLAN port, used by CNI overlays",
	8472: "the Linux kernel's historic VXLAN port, used by CNI overlays",
	7789: "a port used by another egress tunnel implementation",
}

// DefaultConfig returns the defaults: device egressgw0, VNI 6464, UDP 4866, steering marks 0x0000003f
// (62 gateways and the egress interface), reply mark 0x40 — all in the low seven bits, which no surveyed
// owner uses — tables 41000+ (gateways) and 40999 (returns), rule priorities 105/106 (after the local
// table's rule, which Cilium moves to 100, and before Cilium's ENI rules at 109-112 and the AWS VPC CNI's
// at 512-1536), MTU from the uplink, kernel settings in /proc/sys.
func DefaultConfig() Config {
	return Config{
		Device:       "egressgw0",
		VNI:          6464,
		Port:         4866,
		SteerMask:    0x0000003f,
		ReplyMark:    0x00000040,
		TableBase:    41000,
		ReturnTable:  40999,
		RulePriority: 105,
		ProcSysDir:   DefaultProcSysDir,
	}
}

// Validate reports every problem of the configuration at once, each with what to change.
func (c Config) Validate() error {
	return errors.Join(c.validateDevice(), c.validateTunnel(), c.validateMarks(), c.validateTables(), c.validateIptables(), c.validateProcSysDir())
}

func (c Config) validateProcSysDir() error {
	if c.ProcSysDir != "" && !filepath.IsAbs(c.ProcSysDir) {
		return fmt.Errorf("proc-sys directory %q: want an absolute path such as %s or /host/proc/sys", c.ProcSysDir, DefaultProcSysDir)
	}
	return nil
}

func (c Config) procSysDir() string {
	if c.ProcSysDir == "" {
		return DefaultProcSysDir
	}
	return c.ProcSysDir
}

func (c Config) validateIptables() error {
	switch c.Iptables {
	case "", IptablesLegacy, IptablesNft:
		return nil
	}
	return fmt.Errorf("iptables backend %q: want %q, %q or empty (the iptables command's own)", c.Iptables, IptablesLegacy, IptablesNft)
}

func (c Config) validateDevice() error {
	var errs []error
	if c.Device == "" || len(c.Device) > 15 {
		errs = append(errs, fmt.Errorf("device %q: want a Linux interface name of 1 to 15 characters", c.Device))
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
		errs = append(errs, fmt.Errorf("mtu %d: want 0 (uplink MTU - %d) or 576..65535", c.MTU, vxlanHeaderOverhead))
	}
	return errors.Join(errs...)
}

func (c Config) validateTunnel() error {
	var errs []error
	if c.VNI == 0 || c.VNI >= 1<<24 {
		errs = append(errs, fmt.Errorf("vni %d: want 1..16777215", c.VNI))
	}
	if c.Port == 0 {
		errs = append(errs, errors.New("port 0: want a UDP port"))
	}
	if why, ok := reservedPorts[c.Port]; ok {
		errs = append(errs, fmt.Errorf("port %d is %s; pick another so the tunnels cannot mix", c.Port, why))
	}
	return errors.Join(errs...)
}

func (c Config) validateMarks() error {
	var errs []error
	if bits.OnesCount32(c.SteerMask) < 2 || !contiguous(c.SteerMask) {
		errs = append(errs, fmt.Errorf("steer mask %#x: want one contiguous run of at least two bits", c.SteerMask))
	}
	if bits.OnesCount32(c.ReplyMark) != 1 {
		errs = append(errs, fmt.Errorf("reply mark %#x: want exactly one bit", c.ReplyMark))
	}
	if c.SteerMask&c.ReplyMark != 0 {
		errs = append(errs, fmt.Errorf("reply mark %#x overlaps steer mask %#x", c.ReplyMark, c.SteerMask))
	}
	ours := c.SteerMask | c.ReplyMark
	for _, o := range knownMarkOwners {
		if ours&o.bits != 0 {
			errs = append(errs, fmt.Errorf("marks %#x overlap %s %#x", ours, o.owner, o.bits))
		}
	}
	return errors.Join(errs...)
}

func (c Config) validateTables() error {
	var errs []error
	last := uint64(c.TableBase) + uint64(c.maxIndex())
	if c.TableBase == 0 || last >= 1<<32 || overlapsSystemTables(uint64(c.TableBase)+1, last) {
		errs = append(errs, fmt.Errorf("table base %d: tables %d..%d must avoid 0 and 253..255 and fit in 32 bits", c.TableBase, uint64(c.TableBase)+1, last))
	}
	if c.ReturnTable == 0 || overlapsSystemTables(uint64(c.ReturnTable), uint64(c.ReturnTable)) {
		errs = append(errs, fmt.Errorf("return table %d: must not be 0 or 253..255", c.ReturnTable))
	}
	if uint64(c.ReturnTable) > uint64(c.TableBase) && uint64(c.ReturnTable) <= last {
		errs = append(errs, fmt.Errorf("return table %d lies inside the gateway tables %d..%d", c.ReturnTable, c.TableBase+1, last))
	}
	if c.RulePriority < 1 || c.RulePriority > 32000 {
		errs = append(errs, fmt.Errorf("rule priority %d: want 1..32000, before the main table's 32766", c.RulePriority))
	}
	return errors.Join(errs...)
}

// ownRule reports whether an ip rule is one of egressgw's: at its priorities, with its masks, looking
// up its tables or (the tunnel's own packets) the main table from lo. Another owner's rule at the same
// priority is never touched.
func (c Config) ownRule(r netlink.Rule) bool {
	if r.Priority != c.RulePriority && r.Priority != c.RulePriority+1 {
		return false
	}
	if r.Mask == nil || (*r.Mask != c.SteerMask && *r.Mask != c.ReplyMark) {
		return false
	}
	if r.Table == mainTable {
		return r.Priority == c.RulePriority && r.IifName == "lo"
	}
	return r.Priority == c.RulePriority+1 && c.ownTable(uint32(r.Table))
}

func overlapsSystemTables(first, last uint64) bool { return first <= 255 && last >= 253 }

// contiguous reports whether the set bits of m form one run.
func contiguous(m uint32) bool {
	shifted := m >> bits.TrailingZeros32(m)
	return shifted&(shifted+1) == 0
}

// maxIndex is the largest value the steer mask holds. Index 0 means "not steered", 1..maxIndex-1 name
// gateway nodes, and maxIndex marks packets a gateway SNATs, which leave through its egress interface.
func (c Config) maxIndex() uint32 {
	if c.SteerMask == 0 {
		return 0
	}
	return c.SteerMask >> bits.TrailingZeros32(c.SteerMask)
}

// maxGateways is how many gateway nodes the steer mask can name.
func (c Config) maxGateways() uint32 { return max(c.maxIndex(), 1) - 1 }

// egressIndex is the steering value of packets that leave through this gateway's egress interface; its
// table is TableBase+egressIndex.
func (c Config) egressIndex() uint32 { return c.maxIndex() }

// steerMark is the fwmark of gateway index i.
func (c Config) steerMark(i uint32) uint32 { return i << bits.TrailingZeros32(c.SteerMask) }
