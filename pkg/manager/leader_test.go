package manager_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/test/ec2sim"
)

var leaderIPs = []string{"10.0.1.50", "10.0.1.51", "10.0.1.52"}

// leaderScene is a VPC of three gateway nodes in one subnet, a gateway with three IPs placed by m1,
// and a checker that fails the test if the simulator ever has an IP on two interfaces.
type leaderScene struct {
	c      *cluster
	vpc    *simVPC
	hook   atomic.Pointer[func(ec2sim.Event)]
	crash1 func()
}

func newLeaderScene(t *testing.T) *leaderScene {
	s := &leaderScene{}
	opts := ec2sim.Options{OnChange: func(ev ec2sim.Event) {
		if h := s.hook.Load(); h != nil {
			(*h)(ev)
		}
	}}
	s.vpc = newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}, {"gw-3", 1, "m5.large"}}, opts)
	s.c = newCluster(t, s.vpc.provider)
	s.c.addSimNodes(s.vpc)
	s.c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec(leaderIPs...)})
	// A crashed replica keeps its lease until it expires, as a killed process would.
	s.crash1, _ = s.c.startManager("m1", func(o *manager.RunOptions) { o.LeaderElection.ReleaseOnCancel = false })
	s.c.eventually("m1 to place every IP", s.allPlaced)
	s.c.startManager("m2", nil)
	s.c.startManager("m3", nil)
	s.watchOneHolder(t)
	return s
}

// watchOneHolder checks, every few milliseconds until the test ends, that no IP of the subnet is on two
// interfaces.
func (s *leaderScene) watchOneHolder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			for i := 1; i < 255; i++ {
				ip := netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})
				if h := s.vpc.sim.HoldersOf(ip); len(h) > 1 {
					t.Errorf("%s is on %v at once", ip, h)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

// allPlaced reports whether status and cloud agree on a healthy node for every IP, and nothing else of
// the subnet is held besides the nodes' primary addresses.
func (s *leaderScene) allPlaced() (bool, string) {
	gw := s.c.gateway("gw")
	for _, ip := range leaderIPs {
		a := assignment(gw, ip)
		if a.State != egressgwv1.AssignmentAssigned || a.Node == "" || a.Node != s.vpc.holder(ip) {
			return false, fmt.Sprintf("%s: status %+v, cloud %s", ip, a, s.vpc.holder(ip))
		}
	}
	return meta.IsStatusConditionTrue(gw.Status.Conditions, egressgwv1.ConditionReady), fmt.Sprintf("%+v", gw.Status.Conditions)
}

// leaked lists addresses of the subnet held by an interface that are neither an egress IP nor a
// node's primary address.
func (s *leaderScene) leaked() []string {
	var out []string
	for i := 1; i < 255; i++ {
		ip := netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})
		h, held := s.vpc.sim.Where(ip)
		if held && !h.Primary && !slices.Contains(leaderIPs, ip.String()) {
			out = append(out, ip.String())
		}
	}
	return out
}

func (s *leaderScene) converged(t *testing.T, dead string) {
	t.Helper()
	s.c.eventually("a new leader to converge", func() (bool, string) {
		ok, state := s.allPlaced()
		for _, ip := range leaderIPs {
			if s.vpc.holder(ip) == dead {
				return false, ip + " still on the dead gateway " + dead
			}
		}
		return ok, state
	})
	if l := s.leaked(); len(l) > 0 {
		t.Errorf("addresses left behind in the cloud: %v", l)
	}
}

// TestLeaderCrashAfterCloudCall crashes the leader right after the cloud moved an IP and before the
// leader could record it: status still shows the intent, the cloud the result. The next leader must
// read the cloud and finish the failover.
func TestLeaderCrashAfterCloudCall(t *testing.T) {
	s := newLeaderScene(t)
	dead := s.vpc.holder(leaderIPs[0])
	moved := make(chan ec2sim.Event, 1)
	hook := func(ev ec2sim.Event) {
		select {
		case moved <- ev:
			s.crash1() // cancels m1 before the answer reaches it
		default:
		}
	}
	s.hook.Store(&hook)
	s.c.killAgent(dead)
	ev := <-moved
	a := assignment(s.c.gateway("gw"), ev.IP.String())
	if a.State != egressgwv1.AssignmentAssigning {
		t.Errorf("when the cloud moved %s, status said %+v; want the intent (Assigning) recorded before the call", ev.IP, a)
	}
	s.converged(t, dead)
}

// TestLeaderCrashDuringCloudCall crashes the leader after it recorded a move in status and while the
// cloud call is in flight (the simulator answers after 1s).
func TestLeaderCrashDuringCloudCall(t *testing.T) {
	s := newLeaderScene(t)
	s.vpc.sim.SetLatency(time.Second)
	dead := s.vpc.holder(leaderIPs[0])
	s.c.killAgent(dead)
	s.c.eventually("m1 to record a move in status", func() (bool, string) {
		for _, a := range s.c.gateway("gw").Status.Assignments {
			if a.State == egressgwv1.AssignmentAssigning {
				return true, ""
			}
		}
		return false, ""
	})
	s.crash1()
	s.converged(t, dead)
}

// TestGracefulHandover stops the leader cleanly; another replica must take the lease within about one
// retry period, and act.
func TestGracefulHandover(t *testing.T) {
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	stop1, _ := c.startManager("m1", nil)
	<-c.moves
	c.startManager("m2", nil)
	first := c.leaseHolder()
	stopped := time.Now()
	stop1()
	c.eventually("another replica to take the lease", func() (bool, string) {
		h := c.leaseHolder()
		return h != "" && h != first, h
	})
	t.Logf("graceful handover: lease taken %v after the leader stopped (retry period 500ms)", time.Since(stopped).Round(time.Millisecond))
	dead := vpc.holder("10.0.1.50")
	c.killAgent(dead)
	if rec := c.nextMove(t); rec.Err != nil || rec.To == dead {
		t.Fatalf("the new leader's move: %+v", rec)
	}
}

func (c *cluster) leaseHolder() string {
	var l coordinationv1.Lease
	if err := c.env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "egressgw-manager"}, &l); err != nil {
		return ""
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
