package manager_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers/gcp"
	"github.com/egressgw/egressgw/test/gcpsim"
)

// gcpProject is the Compute Engine simulator serving test/gcpsim's model project, behind a write gate,
// with the history of where every alias /32 lived.
type gcpProject struct {
	sim     *gcpsim.Server
	gate    *writeGate
	history *ipHistory
	url     string
}

// The model's instances in subnetwork gateways-a (10.0.1.0/24), by zone.
var gcpNodes = []struct{ name, zone string }{{"gw-a1", "us-central1-a"}, {"gw-a2", "us-central1-b"}, {"worker-a4", "us-central1-a"}}

func newGCPProject(t *testing.T) *gcpProject {
	t.Helper()
	m, err := gcpsim.LoadModel("../../test/gcpsim/testdata/project.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := &gcpProject{history: newIPHistory()}
	g.sim, err = gcpsim.New(m, gcpsim.Options{Logger: quiet, OnChange: func(e gcpsim.Event) {
		g.history.record(e.IP, zonedName(e.PrevZone, e.PrevInstance), zonedName(e.Zone, e.Instance))
	}})
	if err != nil {
		t.Fatal(err)
	}
	g.gate = newWriteGate(g.sim, func(r *http.Request) bool {
		return r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/updateNetworkInterface")
	})
	srv := httptest.NewServer(g.gate)
	t.Cleanup(srv.Close)
	t.Cleanup(g.gate.stop) // runs first
	g.url = srv.URL
	return g
}

func zonedName(zone, name string) string {
	if name == "" {
		return ""
	}
	return zone + "/" + name
}

// provider is a fresh real GCP provider (empty caches, as a restarted manager has) with its default
// settings, over the compute REST client; token is its bearer token, which names it to the gate.
func (g *gcpProject) provider(t *testing.T, token string) *gcp.Provider {
	t.Helper()
	p, err := gcp.New(context.Background(), gcp.Options{Project: "egressgw-test", Logger: quiet}, option.WithEndpoint(g.url),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})))
	if err != nil {
		t.Fatal(err)
	}
	// Not closed: the provider's write batches run to their callers' deadline, not their cancellation,
	// and the SDK's Close races with a request in flight; the test's end stops them all.
	return p
}

// addGCPNodes creates the Node objects of the model's instances of subnetwork gateways-a; labels gives
// each node's labels (nil: the gateway label).
func (c *cluster) addGCPNodes(labels func(name string) map[string]string) {
	for i, n := range gcpNodes {
		l := gatewayLabels
		if labels != nil {
			l = labels(n.name)
		}
		c.addNode(n.name, 10+i, fmt.Sprintf("gce://egressgw-test/%s/%s", n.zone, n.name), l)
	}
}

// holder is the instance holding ip in the simulator, "" when none.
func (g *gcpProject) holder(ip string) string {
	h, ok := g.sim.Where(addr(ip))
	if !ok {
		return ""
	}
	return h.Instance
}

// TestFailoverThroughGCP kills the agent of the gateway holding an egress IP, 20 times, with the real
// GCP provider (no Mover: Release from the old instance, then Assign to the new one) against the
// simulator at its default operation latency 0, and checks that the IP lands on another node, never on
// two NICs. It reports detection and "IP confirmed on the new node", from the kill (p50, p99).
func TestFailoverThroughGCP(t *testing.T) {
	g := newGCPProject(t)
	c := newCluster(t, g.provider(t, "m1"))
	c.addGCPNodes(nil)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", func(o *manager.RunOptions) { o.Config.Probe = failover.ProberConfig{} })
	c.eventually("the IP placed", func() (bool, string) { return g.holder("10.0.1.50") != "", "" })
	<-c.moves
	detect, total := c.failoverTrials(t, 20, "10.0.1.50", func() string { return g.holder("10.0.1.50") })
	g.history.check(t, addr("10.0.1.50"))
	t.Logf("GCP failover over %d trials, from the kill: detection p50 %v p99 %v; IP confirmed on the new node p50 %v p99 %v",
		len(total), percentile(detect, 50), percentile(detect, 99), percentile(total, 50), percentile(total, 99))
}

// failoverTrials kills the agent of the node holding ip (holder names it in the cloud) n times and
// returns the detection and failover times from each kill.
func (c *cluster) failoverTrials(t *testing.T, n int, ip string, holder func() string) (detect, total []time.Duration) {
	for trial := range n {
		from := holder()
		killed := time.Now()
		c.killAgent(from)
		rec := c.nextMove(t)
		if rec.Err != nil || rec.To == from {
			t.Fatalf("trial %d: move %+v from %s; want a healthy node", trial, rec, from)
		}
		if got := holder(); got != rec.To {
			t.Fatalf("trial %d: the manager moved to %s, the cloud has it on %s", trial, rec.To, got)
		}
		detect = append(detect, rec.DetectedAt.Sub(killed))
		total = append(total, rec.Done.Sub(killed))
		c.eventually("status to follow the cloud", func() (bool, string) {
			a := assignment(c.gateway("gw"), ip)
			return a.Node == rec.To && a.State == egressgwv1.AssignmentAssigned, fmt.Sprintf("%+v", a)
		})
		c.restartAgent(from)
	}
	return detect, total
}

// TestLeaderCrashBetweenReleaseAndAssign crashes the leader in a failover after its Release reached
// Compute Engine and before its Assign did: the next leader finds the IP nowhere and assigns it, and the
// IP was never on two NICs.
func TestLeaderCrashBetweenReleaseAndAssign(t *testing.T) {
	testLeaderCrashInMove(t, 1, "")
}

// TestLeaderCrashBeforeRelease crashes the leader in a failover after it recorded the move and before
// its Release reached Compute Engine: the next leader finds the IP still on the failed node, releases
// it there and assigns it to a healthy one.
func TestLeaderCrashBeforeRelease(t *testing.T) {
	testLeaderCrashInMove(t, 0, "old")
}

// testLeaderCrashInMove lets passWrites NIC writes of the failover through, crashes the leader on the
// next one, checks where the cloud has the IP then ("" nowhere, "old" the failed node), and starts the
// next leader.
func testLeaderCrashInMove(t *testing.T, passWrites int, wantBetween string) {
	g := newGCPProject(t)
	c := newCluster(t, g.provider(t, "m1"))
	c.addGCPNodes(nil)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	crash := func(o *manager.RunOptions) { o.LeaderElection.ReleaseOnCancel = false }
	stop1, _ := c.startManager("m1", crash)
	c.eventually("the IP placed", func() (bool, string) { return g.holder("10.0.1.50") != "", "" })
	<-c.moves
	old := g.holder("10.0.1.50")

	g.gate.holdAfter(passWrites)
	c.killAgent(old)
	g.gate.waitHeld(t)
	g.gate.crash("m1")
	stop1()
	between := map[string]string{"": "", "old": old}[wantBetween]
	if got := g.holder("10.0.1.50"); got != between {
		t.Fatalf("after the crash the cloud has the IP on %q, want %q", got, between)
	}
	if a := assignment(c.gateway("gw"), "10.0.1.50"); a.State != egressgwv1.AssignmentAssigning {
		t.Errorf("the crashed leader left %+v in status; want the recorded intent (Assigning)", a)
	}

	g.gate.open()
	fresh := g.provider(t, "m2")
	c.startManager("m2", func(o *manager.RunOptions) { o.Provider = fresh })
	c.eventually("the next leader to put the IP on a healthy node, in the cloud and in status", func() (bool, string) {
		a := assignment(c.gateway("gw"), "10.0.1.50")
		h := g.holder("10.0.1.50")
		return h != "" && h != old && a.Node == h && a.State == egressgwv1.AssignmentAssigned, fmt.Sprintf("cloud %q, status %+v", h, a)
	})
	if hs := g.sim.HoldersOf(addr("10.0.1.50")); len(hs) != 1 {
		t.Errorf("the IP is on %d NICs: %+v", len(hs), hs)
	}
	g.history.check(t, addr("10.0.1.50"))
}

// TestHungReleaseDelaysNoOtherGateway fails two gateway nodes at once, each holding another gateway's
// IP, both IPs bound for the same healthy node; the first node's VM is hung, so releasing from it never
// completes. The other gateway's IP must move meanwhile, and the hung one once the VM answers again.
// The failures happen while no leader runs, so that the next leader plans both moves in one pass.
func TestHungReleaseDelaysNoOtherGateway(t *testing.T) {
	g := newGCPProject(t)
	c := newCluster(t, g.provider(t, "m1"))
	pools := map[string]map[string]string{"gw-a1": {"pool-a": "true"}, "gw-a2": {"pool-b": "true"}, "worker-a4": {}}
	c.addGCPNodes(func(name string) map[string]string { return pools[name] })
	for _, gw := range []struct{ name, pool, ip string }{{"gw-a", "pool-a", "10.0.1.50"}, {"gw-b", "pool-b", "10.0.1.51"}} {
		spec := gatewaySpec(gw.ip)
		spec.NodeSelector = egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{gw.pool: "true"}}
		c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: gw.name}, Spec: spec})
	}
	bounded := func(o *manager.RunOptions) { o.Config.CloudTimeout = 15 * time.Second }
	stop1, _ := c.startManager("m1", bounded)
	c.eventually("each IP on its pool's node", func() (bool, string) {
		return g.holder("10.0.1.50") == "gw-a1" && g.holder("10.0.1.51") == "gw-a2", g.holder("10.0.1.50") + " " + g.holder("10.0.1.51")
	})
	stop1()
	worker := c.node("worker-a4")
	worker.Labels = map[string]string{"pool-a": "true", "pool-b": "true"}
	if err := c.env.Client.Update(context.Background(), worker); err != nil {
		t.Fatal(err)
	}
	g.sim.SetHung("us-central1-a", "gw-a1", true)
	c.killAgent("gw-a1")
	c.killAgent("gw-a2")

	for len(c.moves) > 0 {
		<-c.moves // m1's placements
	}
	c.startManager("m2", bounded)
	for {
		rec := c.nextMove(t)
		if !slices.Contains(rec.IPs, addr("10.0.1.51")) {
			continue
		}
		if rec.Err != nil || len(rec.IPs) != 1 || rec.To != "worker-a4" {
			t.Fatalf("gw-b's first move after the failure: %+v; want 10.0.1.51 alone to worker-a4, done, whatever gw-a1's release does", rec)
		}
		break
	}
	if h := g.holder("10.0.1.51"); h != "worker-a4" {
		t.Fatalf("gw-b's IP is on %q, want worker-a4", h)
	}
	if h := g.holder("10.0.1.50"); h != "gw-a1" {
		t.Fatalf("gw-a's IP is on %q while its old VM is hung; want it still there", h)
	}
	g.sim.SetHung("us-central1-a", "gw-a1", false)
	c.eventually("gw-a's IP on worker-a4 once its old VM answers", func() (bool, string) {
		return g.holder("10.0.1.50") == "worker-a4", g.holder("10.0.1.50")
	})
	g.history.check(t, addr("10.0.1.50"))
	g.history.check(t, addr("10.0.1.51"))
}
