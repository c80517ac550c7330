package manager_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers/fake"
)

// TestTwoStepMovesOffADeletedNode deletes the Node object of the gateway that holds an egress IP while
// its instance still holds it (kubectl delete node, or a Node that re-registers under another name), on
// a cloud without a one-call move: the manager releases the IP from the instance the cloud names and
// assigns it to the other node.
func TestTwoStepMovesOffADeletedNode(t *testing.T) {
	cloud := fakeCloud([]int{1, 1}, 10)
	c := newCluster(t, cloud.WithoutMover())
	c.addGatewayNodes(2)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", nil)
	c.eventually("the IP placed", func() (bool, string) { return ownerOf(cloud, "10.0.1.50") != "", "" })
	old := strings.TrimPrefix(ownerOf(cloud, "10.0.1.50"), "aws:///zone-a/i-")
	other := map[string]string{"gw-1": "gw-2", "gw-2": "gw-1"}[old]

	if err := c.env.Client.Delete(context.Background(), c.node(old)); err != nil {
		t.Fatal(err)
	}
	c.eventually("the IP on the remaining node in the cloud and in status", func() (bool, string) {
		a := assignment(c.gateway("gw"), "10.0.1.50")
		return ownerOf(cloud, "10.0.1.50") == "aws:///zone-a/i-"+other && a.Node == other && a.State == egressgwv1.AssignmentAssigned,
			fmt.Sprintf("cloud %s, status %+v", ownerOf(cloud, "10.0.1.50"), a)
	})
	var released, assigned bool
	for _, call := range cloud.Calls() {
		released = released || call.Method == fake.Release && call.Node == old && call.Err == nil
		assigned = assigned || released && call.Method == fake.Assign && call.Node == other && call.Err == nil
		if call.Method == fake.Move {
			t.Fatalf("a Move on a provider without Mover: %+v", call)
		}
	}
	if !released || !assigned {
		t.Errorf("want Release on %s, then Assign on %s; calls %+v", old, other, cloud.Calls())
	}
}

// ipHistory records, from a simulator's change events in commit order, which NICs hold each IP, and
// the most NICs that ever held one IP at once.
type ipHistory struct {
	mu      sync.Mutex
	holders map[netip.Addr]map[string]bool
	most    map[netip.Addr]int
	log     map[netip.Addr][]string
}

func newIPHistory() *ipHistory {
	return &ipHistory{holders: map[netip.Addr]map[string]bool{}, most: map[netip.Addr]int{}, log: map[netip.Addr][]string{}}
}

func (h *ipHistory) record(ip netip.Addr, prev, now string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.holders[ip] == nil {
		h.holders[ip] = map[string]bool{}
	}
	delete(h.holders[ip], prev)
	if now != "" {
		h.holders[ip][now] = true
	}
	h.most[ip] = max(h.most[ip], len(h.holders[ip]))
	h.log[ip] = append(h.log[ip], fmt.Sprintf("%q -> %q", prev, now))
}

// check fails the test if ip was ever on two NICs at once.
func (h *ipHistory) check(t *testing.T, ip netip.Addr) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.most[ip] > 1 {
		t.Errorf("%s was on %d NICs at once; history %v", ip, h.most[ip], h.log[ip])
	}
	t.Logf("history of %s: %v", ip, h.log[ip])
}

// writeGate sits before a simulator. It can hold the NIC writes from a chosen one on: a held request
// waits until its client gives up or its caller crashes, and is then refused, so it never reaches the
// cloud. A crashed caller (named by its bearer token) reaches the cloud no more, as a dead process
// sends nothing: its provider's retries and batches outlive the stopped manager in a test.
type writeGate struct {
	next    http.Handler
	isWrite func(*http.Request) bool
	mu      sync.Mutex
	left    int // writes still let through before holding; -1 while open
	dead    map[string]bool
	stopped bool
	held    chan struct{}
}

func newWriteGate(next http.Handler, isWrite func(*http.Request) bool) *writeGate {
	return &writeGate{next: next, isWrite: isWrite, left: -1, dead: map[string]bool{}, held: make(chan struct{}, 1)}
}

// holdAfter lets n more writes through and holds the ones after them, until open.
func (g *writeGate) holdAfter(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.left = n
}

func (g *writeGate) open() { g.holdAfter(-1) }

// crash cuts the caller with this bearer token off the cloud.
func (g *writeGate) crash(token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dead["Bearer "+token] = true
}

// stop lets held requests end, before the server closes.
func (g *writeGate) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
}

func (g *writeGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cut(r) {
		http.Error(w, "the caller crashed", http.StatusServiceUnavailable)
		return
	}
	if g.isWrite(r) && g.hold() {
		select {
		case g.held <- struct{}{}:
		default:
		}
		for r.Context().Err() == nil && !g.cut(r) {
			time.Sleep(10 * time.Millisecond)
		}
		http.Error(w, "held by the test", http.StatusServiceUnavailable)
		return
	}
	g.next.ServeHTTP(w, r)
}

func (g *writeGate) cut(r *http.Request) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopped || g.dead[r.Header.Get("Authorization")]
}

func (g *writeGate) hold() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.left < 0 {
		return false
	}
	if g.left == 0 {
		return true
	}
	g.left--
	return false
}

// waitHeld waits until the gate holds a write.
func (g *writeGate) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-g.held:
	case <-time.After(60 * time.Second):
		t.Fatal("no cloud write reached the gate within 60s")
	}
}
