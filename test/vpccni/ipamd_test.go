package vpccni_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/aws"
	"github.com/egressgw/egressgw/test/ec2sim"
	"github.com/egressgw/egressgw/test/vpccni"
)

var (
	gw1 = providers.Node{Name: "gw-1", ProviderID: "aws:///us-east-1a/i-00000000000000001"}
	gw2 = providers.Node{Name: "gw-2", ProviderID: "aws:///us-east-1a/i-00000000000000002"}
)

var egressIPs = []netip.Addr{netip.MustParseAddr("10.0.1.200"), netip.MustParseAddr("10.0.1.201"), netip.MustParseAddr("10.0.1.202")}

// lab is the EC2 simulator with two gateway nodes, the egressgw provider and an SDK client for the ipamds,
// and every removal of an egress IP from EC2 the simulator saw.
type lab struct {
	sim      *ec2sim.Server
	client   *ec2.Client
	provider *aws.Provider
	mu       sync.Mutex
	removed  []ec2sim.Event
}

func newLab(t *testing.T, mode aws.InterfaceMode) *lab {
	l := &lab{}
	m := ec2sim.Model{Subnets: []ec2sim.SubnetSpec{{ID: "subnet-00000000000000001", VPC: "vpc-00000000000000001", CIDR: "10.0.1.0/24", Zone: "us-east-1a"}}}
	for i := 1; i <= 2; i++ {
		m.Instances = append(m.Instances, ec2sim.InstanceSpec{ID: fmt.Sprintf("i-%017d", i), Type: "m5.large",
			Interfaces: []ec2sim.InterfaceSpec{{ID: fmt.Sprintf("eni-%017d", i), Subnet: "subnet-00000000000000001", IPs: []string{fmt.Sprintf("10.0.1.%d", 10+i)}}}})
	}
	sim, err := ec2sim.New(m, ec2sim.Options{OnChange: l.observe})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := sdkaws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	endpoint := func(o *ec2.Options) { o.BaseEndpoint = sdkaws.String(srv.URL) }
	opts := aws.Options{EgressInterface: mode, Logger: slog.New(slog.DiscardHandler)}
	if mode == aws.InterfaceDedicated {
		opts.ClusterName = "c1"
	}
	l.provider, err = aws.NewFromConfig(cfg, opts, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	l.sim, l.client = sim, ec2.NewFromConfig(cfg, endpoint, func(o *ec2.Options) { o.HTTPClient = aws.HTTPClient(o.HTTPClient) })
	return l
}

func (l *lab) observe(ev ec2sim.Event) {
	if slices.Contains(egressIPs, ev.IP) && ev.Interface == "" {
		l.mu.Lock()
		l.removed = append(l.removed, ev)
		l.mu.Unlock()
	}
}

func (l *lab) removals() []ec2sim.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.removed)
}

// ipamd starts an emulated ipamd for the node's instance with short intervals (the same loop as the CNI's).
func (l *lab) ipamd(t *testing.T, ctx context.Context, instance string, warm, minimum int) *vpccni.IPAMD {
	d := vpccni.New(l.client, vpccni.Config{InstanceID: instance, WarmIPTarget: warm, MinimumIPTarget: minimum, IPv4PerENI: 10,
		PoolInterval: 10 * time.Millisecond, ReconcileInterval: 20 * time.Millisecond, DecreaseInterval: 20 * time.Millisecond,
		ReconcileCooldown: 50 * time.Millisecond, IPCooldown: 20 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	t.Cleanup(wg.Wait)
	return d
}

// TestIPAMDLeavesEgressIPsOnTheDedicatedInterfaceAlone: two gateways with their dedicated interfaces,
// egress IPs failing over between them, and on each node an ipamd reconciling, growing and shrinking its
// pool while pods come and go. No pod ever gets an egress IP, and the ipamd never unassigns one.
func TestIPAMDLeavesEgressIPsOnTheDedicatedInterfaceAlone(t *testing.T) {
	l := newLab(t, aws.InterfaceDedicated)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var dedicated []string
	for _, n := range []providers.Node{gw1, gw2} {
		info, err := l.provider.EnsureAttachment(ctx, n)
		must(t, err)
		dedicated = append(dedicated, info.Interface)
	}
	must(t, l.provider.Move(ctx, gw1, egressIPs))
	ipamds := []*vpccni.IPAMD{l.ipamd(t, ctx, "i-00000000000000001", 2, 3), l.ipamd(t, ctx, "i-00000000000000002", 2, 3)}
	holder := gw1
	for i := range 60 {
		for n, d := range ipamds {
			_, _ = d.AddPod(fmt.Sprintf("pod-%d-%d", n, i)) // with the pool empty, the pod waits; the pool grows on the next tick
			// A burst of deletions leaves a surplus the ipamd releases.
			if i%20 == 19 {
				for j := range i {
					d.DelPod(fmt.Sprintf("pod-%d-%d", n, j))
				}
			}
		}
		if i%10 == 9 {
			holder = map[string]providers.Node{gw1.Name: gw2, gw2.Name: gw1}[holder.Name]
			must(t, l.provider.Move(ctx, holder, egressIPs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for n, d := range ipamds {
		r := d.Report()
		for _, ip := range egressIPs {
			if pod, ok := r.HandedOut[ip]; ok {
				t.Errorf("ipamd %d handed egress IP %s to pod %s", n, ip, pod)
			}
			if slices.Contains(r.Released, ip) {
				t.Errorf("ipamd %d unassigned egress IP %s", n, ip)
			}
		}
		if !slices.Contains(r.Unmanaged, dedicated[n]) || r.Reconciles < 5 || len(r.HandedOut) < 10 || len(r.Released) == 0 {
			t.Errorf("ipamd %d did not do its work (unmanaged %v, %d reconciles, %d addresses to pods, %d released)",
				n, r.Unmanaged, r.Reconciles, len(r.HandedOut), len(r.Released))
		}
	}
	if gone := l.removals(); len(gone) > 0 {
		t.Errorf("EC2 saw egress IPs removed: %+v", gone)
	}
	for _, ip := range egressIPs {
		if h, ok := l.sim.Where(ip); !ok || h.Interface != dedicated[map[string]int{gw1.Name: 0, gw2.Name: 1}[holder.Name]] {
			t.Errorf("%s is on %+v, want the dedicated interface of %s", ip, h, holder.Name)
		}
	}
}

// TestIPAMDTakesEgressIPsOffThePrimaryInterface is the conflict the dedicated interface avoids: with the
// primary-interface mode forced, the ipamd adopts the egress IPs into its pod pool, unassigns the
// surplus from EC2 and hands the rest to pods. Tagging the primary ENI no_manage does not help: the CNI
// always manages it.
func TestIPAMDTakesEgressIPsOffThePrimaryInterface(t *testing.T) {
	l := newLab(t, aws.InterfacePrimary)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	must(t, l.provider.Move(ctx, gw1, egressIPs))
	_, err := l.client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"eni-00000000000000001"},
		Tags: []types.Tag{{Key: sdkaws.String(vpccni.TagNoManage), Value: sdkaws.String("true")}}})
	must(t, err)
	d := l.ipamd(t, ctx, "i-00000000000000001", 1, 0)
	var pods []netip.Addr
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && (len(l.removals()) == 0 || !anyEgress(pods)) {
		if ip, err := d.AddPod(fmt.Sprintf("pod-%d", len(pods))); err == nil {
			pods = append(pods, ip)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	r := d.Report()
	if r.PrimaryENI != "eni-00000000000000001" || slices.Contains(r.Unmanaged, r.PrimaryENI) {
		t.Fatalf("the primary ENI is always managed: %+v", r)
	}
	gone := l.removals()
	if len(gone) == 0 || !anyEgress(pods) {
		t.Fatalf("want the conflict shown: egress IPs unassigned by the ipamd %+v, pods given egress IPs %v", gone, pods)
	}
	t.Logf("the ipamd unassigned %d egress IPs (%v) and gave pods %v", len(gone), r.Released, pods)
}

func anyEgress(ips []netip.Addr) bool {
	return slices.ContainsFunc(ips, func(ip netip.Addr) bool { return slices.Contains(egressIPs, ip) })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
