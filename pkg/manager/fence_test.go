package manager_test

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/fake"
)

// wire is the fake cloud seen across a network: a Move, once sent, takes delay and lands whatever the
// caller does meanwhile (a cloud applies a request whose client went away).
type wire struct {
	*fake.Provider
	delay   atomic.Int64
	started chan struct{}
	landed  chan time.Time
}

func (w *wire) Move(ctx context.Context, n providers.Node, ips []netip.Addr) error {
	d := time.Duration(w.delay.Load())
	if d > 0 {
		w.started <- struct{}{}
	}
	time.Sleep(d)
	err := w.Provider.Move(context.Background(), n, ips)
	if d > 0 {
		w.landed <- time.Now()
	}
	return err
}

// TestGracefulStopWaitsForCallsInFlight stops the leader cleanly while a move is on the wire: the next
// leader must not get the lease before that move has landed, or two replicas act on the cloud at once.
func TestGracefulStopWaitsForCallsInFlight(t *testing.T) {
	cloud := fakeCloud([]int{1, 1, 1}, 10)
	w := &wire{Provider: cloud, started: make(chan struct{}, 100), landed: make(chan time.Time, 100)}
	c := newCluster(t, w)
	c.addGatewayNodes(3)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	stop1, _ := c.startManager("m1", nil)
	<-c.moves
	c.startManager("m2", nil)
	first := c.leaseHolder()
	w.delay.Store(int64(2 * time.Second))
	c.killAgent(strings.TrimPrefix(ownerOf(cloud, "10.0.1.50"), "aws:///zone-a/i-"))
	<-w.started
	go stop1()
	var taken time.Time
	c.eventually("another replica to take the lease", func() (bool, string) {
		h := c.leaseHolder()
		taken = time.Now()
		return h != "" && h != first, h
	})
	select {
	case landed := <-w.landed:
		if !landed.Before(taken) {
			t.Errorf("the lease changed hands %v before the old leader's move landed", landed.Sub(taken).Round(time.Millisecond))
		}
		t.Logf("the move landed %v before the lease changed hands", taken.Sub(landed).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("the move never landed")
	}
}
