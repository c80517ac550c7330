package manager_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/test/ec2sim"
)

const (
	scaleNodes        = 1000
	scaleGatewayNodes = 50
	scaleGateways     = 10
	scaleIPsPerGW     = 50
	scaleFailed       = 10
)

// BenchmarkScale runs the manager against a cluster of 1,000 nodes, 50 of them gateway nodes in two
// subnets of the simulated EC2, with 10 gateways of 50 IPs each (500 IPs). It reports how long the
// initial placement takes, how long until every IP of 10 failed gateway nodes is on a healthy node, and
// how much the process's heap grew with the manager running (the API server runs in its own process):
// the spans in use and the live objects. With -v it logs every move, when it started and how long the
// cloud took; EGRESSGW_HEAP_PROFILE=P writes heap profiles P-before and P-placed.
//
//	KUBEBUILDER_ASSETS=$(make -s envtest-assets) go test -run '^$' -bench Scale -benchtime 1x ./pkg/manager/
func BenchmarkScale(b *testing.B) {
	for range b.N {
		runScale(b)
	}
}

func runScale(b *testing.B) {
	vpc := newScaleVPC(b)
	c := newCluster(b, vpc.provider)
	c.addScaleNodes(b)
	ips := c.addScaleGateways()
	heapBefore := heapNow()
	writeHeapProfile(b, "before")
	start := time.Now()
	b.Logf("manager started at %s", start.Format("15:04:05.000"))
	c.startManager("m1", nil)
	c.eventually("all 500 IPs placed in the cloud", func() (bool, string) { return allHeld(vpc, ips, nil) })
	placed := time.Since(start)
	heapAfter := heapNow()
	writeHeapProfile(b, "placed")
	logMoves(b, c.moves, start, "initial")

	failed := map[string]bool{}
	for i := range scaleFailed {
		failed[fmt.Sprintf("gw-%d", i+1)] = true
	}
	moving := 0
	for _, ip := range ips {
		if failed[vpc.holder(ip)] {
			moving++
		}
	}
	start = time.Now()
	for name := range failed {
		c.killAgent(name)
	}
	c.eventually("every IP off the failed nodes", func() (bool, string) { return allHeld(vpc, ips, failed) })
	failover := time.Since(start)
	logMoves(b, c.moves, start, "failover")
	b.ReportMetric(placed.Seconds(), "s/initial-placement")
	b.ReportMetric(failover.Seconds(), "s/failover")
	b.ReportMetric(float64(moving), "IPs-moved")
	b.ReportMetric(float64(heapAfter.inUse-heapBefore.inUse)/(1<<20), "MiB-heap-growth")
	b.ReportMetric(float64(heapAfter.live-heapBefore.live)/(1<<20), "MiB-live-heap-growth")
}

// logMoves logs the moves recorded since start, draining the channel.
func logMoves(b *testing.B, moves chan manager.MoveRecord, start time.Time, phase string) {
	for len(moves) > 0 {
		r := <-moves
		b.Logf("%s move to %s: %d IPs, started +%v, cloud %v, err %v", phase, r.To, len(r.IPs),
			r.Started.Sub(start).Round(time.Millisecond), r.Done.Sub(r.Started).Round(time.Millisecond), r.Err)
	}
}

// writeHeapProfile writes the live heap to $EGRESSGW_HEAP_PROFILE-when, when that is set, for finding
// what the heap growth is made of:
//
//	go tool pprof -sample_index=inuse_space -diff_base $P-before manager.test $P-placed
func writeHeapProfile(b *testing.B, when string) {
	path := os.Getenv("EGRESSGW_HEAP_PROFILE")
	if path == "" {
		return
	}
	runtime.GC() // the profile shows the heap as of the last GC
	f, err := os.Create(path + "-" + when)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// heapFigures are the heap's spans in use (HeapInuse: what the process holds, free slots of its spans
// included, which vary by several MiB from run to run) and its live objects (HeapAlloc), after a GC.
type heapFigures struct{ inUse, live uint64 }

func heapNow() heapFigures {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapFigures{inUse: m.HeapInuse, live: m.HeapAlloc}
}

// allHeld reports whether the cloud has every IP on a gateway node outside failed.
func allHeld(vpc *simVPC, ips []string, failed map[string]bool) (bool, string) {
	missing := 0
	for _, ip := range ips {
		if h := vpc.holder(ip); h == "" || failed[h] {
			missing++
		}
	}
	return missing == 0, fmt.Sprintf("%d IPs not on a healthy node", missing)
}

// newScaleVPC is a VPC with two /20 subnets and 50 gateway instances, 25 in each.
func newScaleVPC(b *testing.B) *simVPC {
	m := ec2sim.Model{Region: "us-east-1", Subnets: []ec2sim.SubnetSpec{
		{ID: "subnet-00000000000000001", VPC: "vpc-00000000000000001", CIDR: "10.0.16.0/20", Zone: "us-east-1a"},
		{ID: "subnet-00000000000000002", VPC: "vpc-00000000000000001", CIDR: "10.0.32.0/20", Zone: "us-east-1b"},
	}}
	bigInterfaces(&m)
	var nodes []simNode
	for i := range scaleGatewayNodes {
		s := 1 + i%2
		nodes = append(nodes, simNode{fmt.Sprintf("gw-%d", i+1), s, "m5.24xlarge"})
		m.Instances = append(m.Instances, ec2sim.InstanceSpec{ID: instanceID(i), Type: "m5.24xlarge",
			Interfaces: []ec2sim.InterfaceSpec{{ID: fmt.Sprintf("eni-%017x", i+1), Subnet: fmt.Sprintf("subnet-%017d", s),
				IPs: []string{fmt.Sprintf("10.0.%d.%d", 16*s, 10+i)}}}})
	}
	return serveVPC(b, m, nodes, ec2sim.Options{})
}

// addScaleNodes creates the 50 gateway nodes (with agents) and 950 workers, eight at a time.
func (c *cluster) addScaleNodes(b *testing.B) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range scaleNodes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if i < scaleGatewayNodes {
				zone := []string{"us-east-1a", "us-east-1b"}[i%2]
				c.addNode(fmt.Sprintf("gw-%d", i+1), 10+i, fmt.Sprintf("aws:///%s/%s", zone, instanceID(i)), gatewayLabels)
				return
			}
			c.createWorker(b, i)
		})
	}
	wg.Wait()
}

func (c *cluster) createWorker(b *testing.B, i int) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("worker-%d", i)},
		Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///us-east-1a/i-w%016x", i)},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String()}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	if err := c.env.Client.Create(context.Background(), node); err != nil {
		b.Error(err)
	}
}

// addScaleGateways creates 10 gateways of 50 IPs, half in each subnet, and returns all 500 IPs.
func (c *cluster) addScaleGateways() []string {
	var all []string
	for g := range scaleGateways {
		var ips []string
		for i := range scaleIPsPerGW {
			s := 1 + i%2
			ips = append(ips, fmt.Sprintf("10.0.%d.%d", 16*s+1+g, 10+i))
		}
		c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("gw%d", g)}, Spec: gatewaySpec(ips...)})
		all = append(all, ips...)
	}
	return all
}
