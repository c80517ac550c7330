package manager_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// brownoutResult is what happened to a failover during an API-server brownout.
type brownoutResult struct {
	refused  bool // the API server refused connections rather than dropping packets
	brownout time.Duration
	le       manager.LeaderElection
	// survived: the leader neither exited nor lost the lease.
	survived bool
	// movedDuring: the cloud had the IP on a healthy node before the brownout ended; moved is when,
	// from the gateway's death (zero when the IP moved only after the brownout: then it is when it did).
	movedDuring bool
	moved       time.Duration
	// caughtUp is how long after the brownout's end status named the new node; unsteered is how long,
	// from the gateway's death, status named a dead node (what the agents steer by).
	caughtUp, unsteered time.Duration
}

func (r brownoutResult) String() string {
	kind := "blackholed"
	if r.refused {
		kind = "refused"
	}
	return fmt.Sprintf("| %v/%v/%v | %v %v | %v | %v (%v) | %v | %v |", r.le.LeaseDuration, r.le.RenewDeadline, r.le.RetryPeriod,
		r.brownout, kind, yes(r.survived), yes(r.movedDuring), r.moved.Round(100*time.Millisecond),
		r.caughtUp.Round(100*time.Millisecond), r.unsteered.Round(100*time.Millisecond))
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// brownout runs two replicas whose API server connections go through a proxy, blackholes the proxy for
// d (or refuses connections, with refuse), kills the agent of the gateway holding the IP one second in,
// and reports what happened.
func brownout(t *testing.T, le manager.LeaderElection, d time.Duration, refuse bool) brownoutResult {
	const ip = "10.0.1.50"
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}, {"gw-3", 1, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	proxy := newAPIProxy(t, c.env.Config)
	c.apiConfig = proxy.config(c.env.Config)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec(ip)})
	le.Namespace, le.ID = "default", "egressgw-manager"
	tune := func(o *manager.RunOptions) { o.LeaderElection = le }
	_, exited := c.startManager("m1", tune)
	c.eventually("the IP placed", func() (bool, string) {
		a := assignment(c.gateway("gw"), ip)
		return a.State == egressgwv1.AssignmentAssigned && a.Node == vpc.holder(ip), fmt.Sprintf("%+v", a)
	})
	c.startManager("m2", tune)
	time.Sleep(3 * time.Second) // m2 up and standing by, m1's writes of the placement behind it
	leader, dead := c.leaseHolder(), vpc.holder(ip)

	if refuse {
		proxy.refuse()
	} else {
		proxy.blackhole()
	}
	end := time.Now().Add(d)
	time.Sleep(time.Second)
	c.killAgent(dead)
	killed := time.Now()
	r := brownoutResult{brownout: d, le: le, refused: refuse}
	movedAt := func() {
		if h := vpc.holder(ip); r.moved == 0 && h != "" && h != dead {
			r.moved = time.Since(killed)
		}
	}
	for time.Now().Before(end) {
		movedAt()
		time.Sleep(20 * time.Millisecond)
	}
	r.movedDuring = r.moved != 0
	proxy.restore()
	restored := time.Now()
	c.eventually("status to name a healthy node", func() (bool, string) {
		movedAt()
		a := assignment(c.gateway("gw"), ip)
		return a.Node != "" && a.Node != dead && a.Node == vpc.holder(ip), fmt.Sprintf("%+v", a)
	})
	r.caughtUp, r.unsteered = time.Since(restored), time.Since(killed)
	select {
	case <-exited:
	default:
		r.survived = c.leaseHolder() == leader
	}
	return r
}

// TestFailoverDuringABrownout blackholes the API server for 3 s, shorter than the default renew
// deadline, while a gateway dies: the leader must keep its lease, and the IP must move in the cloud
// before the API server answers again (the status write that records the intent is not a precondition).
func TestFailoverDuringABrownout(t *testing.T) {
	r := brownout(t, manager.DefaultLeaderElection("default"), 3*time.Second, false)
	t.Logf("lease/renew/retry | brownout | leader survived | IP moved during it (from the death) | status caught up after it | status named the dead node for\n%s", r)
	if !r.survived {
		t.Error("the leader lost its lease in a brownout shorter than its renew deadline")
	}
	if !r.movedDuring {
		t.Errorf("the IP did not move in the cloud during the brownout (moved %v after the death)", r.moved)
	}
}

// TestBrownoutFigures measures the table of docs/manager.md ("Brownouts"): brownouts of 3, 6, 10 and
// 20 s, blackholed and refused, under the old and the new leader election defaults. It takes about seven
// minutes:
// EGRESSGW_BROWNOUT_FIGURES=1 runs it.
func TestBrownoutFigures(t *testing.T) {
	if os.Getenv("EGRESSGW_BROWNOUT_FIGURES") == "" {
		t.Skip("takes minutes: set EGRESSGW_BROWNOUT_FIGURES=1 to measure the brownout table")
	}
	old := manager.LeaderElection{LeaseDuration: 8 * time.Second, RenewDeadline: 6 * time.Second, RetryPeriod: time.Second}
	var rows []string
	for _, tc := range []struct {
		le     manager.LeaderElection
		refuse bool
	}{{old, false}, {manager.DefaultLeaderElection("default"), false}, {old, true}, {manager.DefaultLeaderElection("default"), true}} {
		for _, d := range []time.Duration{3 * time.Second, 6 * time.Second, 10 * time.Second, 20 * time.Second} {
			t.Run(fmt.Sprintf("%v-%v-refused=%v", tc.le.RenewDeadline, d, tc.refuse), func(t *testing.T) {
				rows = append(rows, brownout(t, tc.le, d, tc.refuse).String())
			})
		}
	}
	t.Logf("\n| lease/renew/retry | brownout | leader survived | IP moved during it (from the death) | status caught up after it | status named the dead node for |\n|---|---|---|---|---|---|\n%s",
		strings.Join(rows, "\n"))
}
