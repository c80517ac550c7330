// Package vpccni emulates the part of the AWS VPC CNI's ipamd that decides what happens to the secondary
// addresses of a node's ENIs, so that egressgw's tests can show, through the EC2 simulator and the real
// aws-sdk-go-v2 client, what the CNI would do to egress IPs.
//
// Reproduced from the CNI's pkg/ipamd/ipamd.go (StartNodeIPPoolManager, nodeIPPoolReconcile,
// setUnmanagedENIs, filterUnmanagedENIs, verifyAndAddIPsToDatastore, datastoreTargetState,
// tryUnassignCidrsFromAll) and pkg/ipamd/datastore:
//   - the pool manager loop: every half pool-monitor interval (5s) the pool is grown or shrunk, then the
//     ENIs are reconciled with EC2 at most every node reconcile interval (60s);
//   - an ENI tagged node.k8s.amazonaws.com/no_manage=true is unmanaged, any other value is managed; an
//     untagged ENI is managed (MANAGE_UNTAGGED_ENI defaults to true); the primary ENI is always managed;
//     ENIs on network cards other than 0 are skipped (ENABLE_MULTI_NIC off); trunk and EFA-only
//     interfaces give no pod addresses;
//   - reconcile adopts every secondary address of a managed ENI into the pool, except those it released
//     less than the reconcile cooldown (60s) ago, and forgets the pool addresses EC2 no longer shows on the
//     ENI, even ones pods hold;
//   - with WARM_IP_TARGET or MINIMUM_IP_TARGET set, short = max(warm - available, minimum - total) more
//     addresses are requested, and over = min(available - warm, total - minimum) unused addresses are
//     released with UnassignPrivateIpAddresses, at most every decrease interval (30s).
//
// Left out: ENI allocation (WARM_ENI_TARGET), prefix delegation, IPv6, custom networking, trunk ENIs for
// security groups per pod, and the instance metadata service: the attached ENIs are read with
// DescribeNetworkInterfaces filtered by attachment.instance-id, which the CNI also calls for their tags.
package vpccni

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tags the CNI reads on ENIs.
const (
	TagNoManage   = "node.k8s.amazonaws.com/no_manage"
	TagInstanceID = "node.k8s.amazonaws.com/instance_id"
)

// The CNI's intervals (pkg/ipamd/ipamd.go).
const (
	DefaultPoolInterval      = 5 * time.Second  // ipPoolMonitorInterval
	DefaultReconcileInterval = 60 * time.Second // nodeIPPoolReconcileInterval
	DefaultDecreaseInterval  = 30 * time.Second // decreaseIPPoolInterval
	DefaultReconcileCooldown = 60 * time.Second // ipReconcileCooldown
	DefaultIPCooldown        = 30 * time.Second // IP_COOLDOWN_PERIOD
)

// Config is the CNI's configuration that matters here; zero intervals mean the CNI's defaults.
type Config struct {
	InstanceID string
	// WarmIPTarget and MinimumIPTarget are WARM_IP_TARGET and MINIMUM_IP_TARGET; with both zero the CNI
	// keeps whole ENIs warm instead and neither requests nor releases single addresses.
	WarmIPTarget, MinimumIPTarget int
	// ManageUntaggedENI is MANAGE_UNTAGGED_ENI; nil means true, the CNI's default.
	ManageUntaggedENI *bool
	// IPv4PerENI bounds the addresses requested per ENI (the instance type's limit).
	IPv4PerENI int

	PoolInterval, ReconcileInterval, DecreaseInterval, ReconcileCooldown, IPCooldown time.Duration

	Logger *slog.Logger
}

// IPAMD is one node's emulated ipamd.
type IPAMD struct {
	ec2 *ec2.Client
	cfg Config
	log *slog.Logger

	mu             sync.Mutex
	ds             datastore
	primaryENI     string
	unmanaged      map[string]bool
	freedAt        map[netip.Addr]time.Time // reconcileCooldownCache: addresses this ipamd unassigned
	lastReconcile  time.Time
	lastDecrease   time.Time
	handedOut      map[netip.Addr]string // every address ever given to a pod, and the last pod
	released       []netip.Addr          // every address ever unassigned from EC2
	pooled         map[netip.Addr]string // every address that ever entered the pool, and its ENI
	assigns        int                   // addresses handed to pods
	reconcileCount int
}

// New returns an ipamd for cfg.InstanceID talking to EC2 through client.
func New(client *ec2.Client, cfg Config) *IPAMD {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.PoolInterval, DefaultPoolInterval)
	def(&cfg.ReconcileInterval, DefaultReconcileInterval)
	def(&cfg.DecreaseInterval, DefaultDecreaseInterval)
	def(&cfg.ReconcileCooldown, DefaultReconcileCooldown)
	def(&cfg.IPCooldown, DefaultIPCooldown)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &IPAMD{ec2: client, cfg: cfg, log: cfg.Logger.With("ipamd", cfg.InstanceID), ds: datastore{cooldown: cfg.IPCooldown},
		unmanaged: map[string]bool{}, freedAt: map[netip.Addr]time.Time{}, handedOut: map[netip.Addr]string{},
		pooled: map[netip.Addr]string{}}
}

// Run is the CNI's pool manager loop, until ctx ends.
func (d *IPAMD) Run(ctx context.Context) {
	half := d.cfg.PoolInterval / 2
	for {
		if !sleep(ctx, half) {
			return
		}
		if err := d.UpdatePool(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("pool update failed", "error", err)
		}
		if !sleep(ctx, half) {
			return
		}
		if time.Since(d.lastReconcileTime()) > d.cfg.ReconcileInterval {
			if err := d.Reconcile(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("reconcile failed", "error", err)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (d *IPAMD) lastReconcileTime() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastReconcile
}

// Reconcile is nodeIPPoolReconcile: it reads the instance's ENIs from EC2, marks the unmanaged ones, adds
// new managed ENIs and every secondary address of the managed ones to the pool, and drops what EC2 no
// longer shows.
func (d *IPAMD) Reconcile(ctx context.Context) error {
	out, err := d.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: sdkaws.String("attachment.instance-id"), Values: []string{d.cfg.InstanceID}}}})
	if err != nil {
		return fmt.Errorf("ipamd %s: describe ENIs: %w", d.cfg.InstanceID, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[string]bool{}
	for _, n := range out.NetworkInterfaces {
		if !d.managed(n) {
			continue
		}
		id := sdkaws.ToString(n.NetworkInterfaceId)
		seen[id] = true
		d.reconcileENI(n)
	}
	for _, e := range slices.Clone(d.ds.enis) {
		if !seen[e.id] {
			d.log.Info("reconcile: ENI detached or unmanaged, dropping it", "eni", e.id)
			d.ds.removeENI(e.id)
		}
	}
	d.lastReconcile = time.Now()
	d.reconcileCount++
	return nil
}

// managed is setUnmanagedENIs and filterUnmanagedENIs for one ENI. Caller holds d.mu.
func (d *IPAMD) managed(n types.NetworkInterface) bool {
	id := sdkaws.ToString(n.NetworkInterfaceId)
	a := n.Attachment
	if a != nil && sdkaws.ToInt32(a.DeviceIndex) == 0 && sdkaws.ToInt32(a.NetworkCardIndex) == 0 {
		d.primaryENI = id
		return true // the primary ENI is always managed, whatever its tags
	}
	if a != nil && sdkaws.ToInt32(a.NetworkCardIndex) != 0 {
		return false // unmanaged network card (ENABLE_MULTI_NIC off)
	}
	if n.InterfaceType == "trunk" || n.InterfaceType == "efa-only" {
		return false
	}
	tags := map[string]string{}
	for _, t := range n.TagSet {
		tags[sdkaws.ToString(t.Key)] = sdkaws.ToString(t.Value)
	}
	unmanaged := false
	if v, ok := tags[TagNoManage]; ok {
		unmanaged = v == "true"
	} else if tags[TagInstanceID] != d.cfg.InstanceID {
		unmanaged = d.cfg.ManageUntaggedENI != nil && !*d.cfg.ManageUntaggedENI
	}
	if unmanaged && !d.unmanaged[id] {
		d.log.Info("marking ENI as unmanaged", "eni", id)
	}
	d.unmanaged[id] = unmanaged
	return !unmanaged
}

// reconcileENI is eniIPPoolReconcile with verifyAndAddIPsToDatastore. Caller holds d.mu.
func (d *IPAMD) reconcileENI(n types.NetworkInterface) {
	id := sdkaws.ToString(n.NetworkInterfaceId)
	primary, _ := netip.ParseAddr(sdkaws.ToString(n.PrivateIpAddress))
	e := d.ds.eni(id)
	if e == nil {
		d.log.Info("reconcile: adding ENI", "eni", id)
		e = d.ds.addENI(id, primary)
		if n.Attachment != nil {
			e.device = int(sdkaws.ToInt32(n.Attachment.DeviceIndex))
		}
	}
	onENI := map[netip.Addr]bool{}
	for _, a := range n.PrivateIpAddresses {
		ip, err := netip.ParseAddr(sdkaws.ToString(a.PrivateIpAddress))
		if err != nil || ip == primary {
			continue
		}
		onENI[ip] = true
		if at, ok := d.freedAt[ip]; ok && time.Since(at) <= d.cfg.ReconcileCooldown {
			continue // recently unassigned by us: instance metadata may lag
		}
		delete(d.freedAt, ip)
		if e.find(ip) == nil {
			d.log.Info("reconcile: adopting a secondary address into the pod pool", "eni", id, "ip", ip)
		}
		d.addToPool(e, ip)
	}
	for _, a := range slices.Clone(e.addrs) {
		if !onENI[a.ip] {
			d.log.Info("reconcile: address gone from the ENI, dropping it", "eni", id, "ip", a.ip, "pod", a.pod)
			e.del(a.ip, true)
		}
	}
}

// addToPool puts ip into e's pool and remembers that it was ever there. Caller holds d.mu.
func (d *IPAMD) addToPool(e *eniPool, ip netip.Addr) {
	if ip != e.primary {
		d.pooled[ip] = e.id
	}
	e.add(ip)
}

// UpdatePool is updateIPPoolIfRequired in WARM_IP_TARGET mode: request what is short, release what is over.
func (d *IPAMD) UpdatePool(ctx context.Context) error {
	short, over, enabled := d.targetState()
	switch {
	case !enabled:
		return nil
	case short > 0:
		return d.increase(ctx, short)
	case over > 0 && time.Since(d.lastDecreaseTime()) > d.cfg.DecreaseInterval:
		return d.decrease(ctx, over)
	}
	return nil
}

// targetState is datastoreTargetState for secondary addresses.
func (d *IPAMD) targetState() (short, over int, enabled bool) {
	if d.cfg.WarmIPTarget == 0 && d.cfg.MinimumIPTarget == 0 {
		return 0, 0, false
	}
	d.mu.Lock()
	total, assigned := d.ds.stats()
	d.mu.Unlock()
	available := total - assigned
	short = max(d.cfg.WarmIPTarget-available, 0)
	short = max(short, d.cfg.MinimumIPTarget-total)
	over = max(available-d.cfg.WarmIPTarget, 0)
	over = max(min(over, total-d.cfg.MinimumIPTarget), 0)
	return short, over, true
}

func (d *IPAMD) lastDecreaseTime() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastDecrease
}

// increase is tryAssignIPs: more secondary addresses on the first managed ENI with room.
func (d *IPAMD) increase(ctx context.Context, short int) error {
	d.mu.Lock()
	var target *eniPool
	room := 0
	for _, e := range d.ds.enis {
		if r := d.cfg.IPv4PerENI - 1 - len(e.addrs); r > 0 {
			target, room = e, r
			break
		}
	}
	d.mu.Unlock()
	if target == nil {
		return nil // the CNI would attach a new ENI here; not emulated
	}
	out, err := d.ec2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: sdkaws.String(target.id),
		SecondaryPrivateIpAddressCount: sdkaws.Int32(int32(min(short, room)))})
	if err != nil {
		return fmt.Errorf("ipamd %s: grow the pool on %s: %w", d.cfg.InstanceID, target.id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range out.AssignedPrivateIpAddresses {
		if ip, err := netip.ParseAddr(sdkaws.ToString(a.PrivateIpAddress)); err == nil {
			d.addToPool(target, ip)
		}
	}
	return nil
}

// decrease is tryUnassignCidrsFromAll: unused addresses beyond the targets go back to EC2.
func (d *IPAMD) decrease(ctx context.Context, over int) error {
	d.mu.Lock()
	type batch struct {
		eni string
		ips []netip.Addr
	}
	var batches []batch
	for _, e := range d.ds.enis {
		free := e.freeable()
		free = free[:min(over, len(free))]
		for _, ip := range free {
			e.del(ip, false)
		}
		if len(free) > 0 {
			batches = append(batches, batch{e.id, free})
		}
		if over -= len(free); over <= 0 {
			break
		}
	}
	d.lastDecrease = time.Now()
	d.mu.Unlock()
	for _, b := range batches {
		if _, err := d.ec2.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: sdkaws.String(b.eni),
			PrivateIpAddresses: addrStrings(b.ips)}); err != nil {
			return fmt.Errorf("ipamd %s: shrink the pool on %s: %w", d.cfg.InstanceID, b.eni, err)
		}
		d.mu.Lock()
		for _, ip := range b.ips {
			d.freedAt[ip] = time.Now()
			d.released = append(d.released, ip)
		}
		d.mu.Unlock()
		d.log.Info("released surplus addresses", "eni", b.eni, "ips", b.ips)
	}
	return nil
}

// Report is what the ipamd did and holds, for tests.
type Report struct {
	// HandedOut maps every address ever given to a pod to the last pod that got it.
	HandedOut map[netip.Addr]string
	// Released are the addresses it unassigned from EC2, in order.
	Released []netip.Addr
	// Pool are the addresses in its pool now, by ENI.
	Pool map[string][]netip.Addr
	// EverPooled are the addresses that ever entered its pool (adopted or requested), with their ENI.
	EverPooled map[netip.Addr]string
	// Unmanaged are the ENIs it saw and left alone.
	Unmanaged  []string
	PrimaryENI string
	Reconciles int
	// Assigns is how many times a pod got an address.
	Assigns int
}

// Report returns a copy of what the ipamd did and holds.
func (d *IPAMD) Report() Report {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := Report{HandedOut: maps.Clone(d.handedOut), Released: slices.Clone(d.released), Pool: map[string][]netip.Addr{},
		EverPooled: maps.Clone(d.pooled), PrimaryENI: d.primaryENI, Reconciles: d.reconcileCount, Assigns: d.assigns}
	for _, e := range d.ds.enis {
		for _, a := range e.addrs {
			r.Pool[e.id] = append(r.Pool[e.id], a.ip)
		}
	}
	for id, un := range d.unmanaged {
		if un {
			r.Unmanaged = append(r.Unmanaged, id)
		}
	}
	slices.Sort(r.Unmanaged)
	return r
}

func addrStrings(ips []netip.Addr) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
