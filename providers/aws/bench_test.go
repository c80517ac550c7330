package aws

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// The failover burst: three gateways in one zone die with 100 egress IPs between them, and the IPs move
// to three healthy gateways, against EC2's real bucket sizes (Assign: 100, refilled 5/s). The figure is
// the time from the first call until the simulator has placed the 100th IP (what traffic waits for).
// Every gateway carries its egress IPs on its dedicated interface (the default mode), ensured before the
// burst as the manager does for every gateway candidate.
//
//	go test -run '^$' -bench FailoverBurst -benchtime 3x ./providers/aws/
const burstIPs = 100

var (
	deadGateways    = []string{"i-0d0000000000000a1", "i-0d0000000000000a2", "i-0d0000000000000a3"}
	healthyGateways = []string{"i-0d0000000000000b1", "i-0d0000000000000b2", "i-0d0000000000000b3"}
)

func burstIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 10, byte(i + 1)}) }

func burstNode(id string) providers.Node {
	return providers.Node{Name: id, ProviderID: "aws:///us-east-1a/" + id}
}

// egressENIOf is the dedicated interface of a gateway of the burst model.
func egressENIOf(instance string) string { return "eni-1" + instance[3:] }

// burstModel spreads the 100 egress IPs over the dead gateways' dedicated interfaces; c5n.18xlarge holds
// 50 per interface.
func burstModel() ec2sim.Model {
	m := ec2sim.Model{Subnets: []ec2sim.SubnetSpec{{ID: "subnet-0d0000000000000a", VPC: "vpc-0d0000000000000a", CIDR: "10.0.0.0/16", Zone: "us-east-1a"}}}
	tags := map[string]string{TagNoManage: "true", TagCluster: testCluster, TagRole: RoleEgress}
	for g, id := range append(append([]string{}, deadGateways...), healthyGateways...) {
		primary := ec2sim.InterfaceSpec{ID: "eni-" + id[2:], Subnet: "subnet-0d0000000000000a", IPs: []string{fmt.Sprintf("10.0.0.%d", 10+g)}}
		egress := ec2sim.InterfaceSpec{ID: egressENIOf(id), Subnet: "subnet-0d0000000000000a", IPs: []string{fmt.Sprintf("10.0.1.%d", 10+g)},
			Tags: tags, DeleteOnTermination: true}
		for i := g; g < len(deadGateways) && i < burstIPs; i += len(deadGateways) {
			egress.IPs = append(egress.IPs, burstIP(i).String())
		}
		m.Instances = append(m.Instances, ec2sim.InstanceSpec{ID: id, Type: "c5n.18xlarge", Interfaces: []ec2sim.InterfaceSpec{primary, egress}})
	}
	return m
}

// burst is one prepared failover: a simulator with EC2's buckets, a warmed provider, and a clock on the
// placements.
type burst struct {
	sim     *ec2sim.Server
	p       *Provider
	start   time.Time
	placed  atomic.Int64
	lastAt  atomic.Int64 // nanoseconds after start at which the last IP landed
	targets map[string]bool
}

func newBurst(b *testing.B, limits map[string]Limit) *burst {
	bu := &burst{targets: map[string]bool{}}
	for _, id := range healthyGateways {
		bu.targets[egressENIOf(id)] = true
	}
	sim, err := ec2sim.New(burstModel(), ec2sim.Options{OnChange: bu.observe})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	cfg := sdkaws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	opts := dedicated()
	opts.Limits, opts.Logger = limits, slog.New(slog.DiscardHandler)
	bu.p, err = NewFromConfig(cfg, opts, func(o *ec2.Options) { o.BaseEndpoint = sdkaws.String(srv.URL) })
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range healthyGateways { // a manager keeps its standby gateways' interfaces ensured
		if _, err := bu.p.EnsureAttachment(context.Background(), burstNode(id)); err != nil {
			b.Fatal(err)
		}
	}
	sim.UseAWSBuckets()
	bu.sim = sim
	return bu
}

func (bu *burst) observe(ev ec2sim.Event) {
	if bu.targets[ev.Interface] && bu.placed.Add(1) == burstIPs {
		bu.lastAt.Store(int64(time.Since(bu.start)))
	}
}

// move is one Move call of the burst.
type move struct {
	node string
	ips  []netip.Addr
}

// run makes all the moves at once.
func (bu *burst) run(b *testing.B, moves []move) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bu.start = time.Now()
	var wg sync.WaitGroup
	for _, m := range moves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := bu.p.Move(ctx, burstNode(m.node), m.ips); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

func (bu *burst) verify(b *testing.B) {
	for i := range burstIPs {
		h, ok := bu.sim.Where(burstIP(i))
		if !ok || h.Instance != healthyGateways[i%len(healthyGateways)] {
			b.Fatalf("%s ended on %q", burstIP(i), h.Instance)
		}
	}
}

func perIP() []move {
	var out []move
	for i := range burstIPs {
		out = append(out, move{node: healthyGateways[i%len(healthyGateways)], ips: []netip.Addr{burstIP(i)}})
	}
	return out
}

func perNode() []move {
	out := make([]move, len(healthyGateways))
	for i := range burstIPs {
		g := i % len(healthyGateways)
		out[g].node, out[g].ips = healthyGateways[g], append(out[g].ips, burstIP(i))
	}
	return out
}

func BenchmarkFailoverBurst100(b *testing.B) {
	cases := []struct {
		name    string
		limits  map[string]Limit
		moves   func() []move
		drained int // Assign tokens other tools of the account used just before
	}{
		{"one-call-per-node", map[string]Limit{}, perNode, 0},
		{"one-call-per-IP", map[string]Limit{}, perIP, 0},
		{"one-call-per-IP/client-limit-80+4/s", nil, perIP, 0},
		{"one-call-per-IP/bucket-half-drained", map[string]Limit{}, perIP, 50},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				bu := newBurst(b, c.limits)
				bu.drain(b, c.drained)
				before := bu.sim.Actions()["AssignPrivateIpAddresses"]
				b.StartTimer()
				bu.run(b, c.moves())
				b.StopTimer()
				bu.verify(b)
				total += time.Duration(bu.lastAt.Load())
				b.ReportMetric(float64(bu.sim.Actions()["AssignPrivateIpAddresses"]-before), "assign-calls")
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-until-all-placed")
		})
	}
}

// drain spends n Assign tokens as another tool of the account would (a no-op assignment of a primary).
func (bu *burst) drain(b *testing.B, n int) {
	id := healthyGateways[0]
	for range n {
		_, err := bu.p.ec2.AssignPrivateIpAddresses(context.Background(), &ec2.AssignPrivateIpAddressesInput{
			NetworkInterfaceId: sdkaws.String("eni-" + id[2:]), PrivateIpAddresses: []string{"10.0.0.13"}, AllowReassignment: sdkaws.Bool(true)})
		if err != nil {
			b.Fatal(err)
		}
	}
}
