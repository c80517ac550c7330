package manager

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// intentWait is how long a failover waits for the status write that records its intent. A write takes
// milliseconds; one that takes longer meets an API server in a brownout (an EKS control-plane upgrade
// blackholes it for seconds), and the failover goes ahead without the record: the cloud is the truth a
// new leader reads, and the fence still stops a replica that may have lost the lease.
const intentWait = time.Second

// writeStatusesThenMove writes every gateway's status and queues each planned move as soon as the
// statuses of its IPs' gateways are written, so that one gateway's failed or slow write holds up the
// moves of that gateway only: the IPs of a gateway whose intent could not be recorded are taken out of
// their moves and planned again by the next sync. Gateways with moves are written first. A failover
// waits for its writes at most intentWait, and a write that could not reach the API server holds it not
// at all (see apiUnreachable): only the API server's refusal of the write does.
func (c *Controller) writeStatusesThenMove(ctx context.Context, snap *snapshot, moves []*moveOp) error {
	l := newLauncher(moves)
	for _, m := range moves {
		switch {
		case l.waiting[m] == 0:
			l.claim(m)
			c.launch(m, nil) // names no gateway: no status to wait for
		case m.priority == PriorityFailover:
			early := time.AfterFunc(intentWait, func() {
				if l.claim(m) {
					c.log.Info("failover goes ahead before its intent is recorded: the API server is slow to answer", "to", m.to, "ips", m.ips)
					c.launch(m, nil)
				}
			})
			defer early.Stop()
		}
	}
	gateways := make([]*egressgwv1.EgressGateway, 0, len(snap.gateways))
	for _, gw := range snap.gateways {
		gateways = append(gateways, gw)
	}
	slices.SortFunc(gateways, func(a, b *egressgwv1.EgressGateway) int { return l.rank(a.Name) - l.rank(b.Name) })
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, statusWriters)
	for _, gw := range gateways {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := c.writeGatewayStatus(ctx, gw)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			for _, m := range l.written(gw.Name, err) {
				if l.claim(m) {
					c.launch(m, l.failedOf(m))
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// launch queues the part of a move whose intent is in status and abandons the rest.
func (c *Controller) launch(m *moveOp, failed map[string]error) {
	keep, drop := m.split(func(i int) bool { return failed[m.gateways[i]] == nil })
	for gw, err := range failed {
		c.abandon(drop, gw, err)
	}
	if len(keep.ips) > 0 {
		c.queue.push(c.moveOperation(keep))
	}
}

// holdBack takes the IPs of the given gateways out of the moves, abandoning them with the gateway's
// error, and returns what is left to move.
func (c *Controller) holdBack(moves []*moveOp, held map[string]error) []*moveOp {
	if len(held) == 0 {
		return moves
	}
	var out []*moveOp
	for _, m := range moves {
		keep, drop := m.split(func(i int) bool { return held[m.gateways[i]] == nil })
		for gw, err := range held {
			c.abandon(drop, gw, err)
		}
		if len(keep.ips) > 0 {
			out = append(out, keep)
		}
	}
	return out
}

// launcher tracks which gateways' status writes each move still waits for.
type launcher struct {
	mu        sync.Mutex
	launched  map[*moveOp]bool
	waiting   map[*moveOp]int
	byGateway map[string][]*moveOp
	failed    map[string]error
	urgency   map[string]int // per gateway: 0 with a failover move, 1 with another move, 2 without
}

func newLauncher(moves []*moveOp) *launcher {
	l := &launcher{launched: map[*moveOp]bool{}, waiting: map[*moveOp]int{}, byGateway: map[string][]*moveOp{}, failed: map[string]error{}, urgency: map[string]int{}}
	for _, m := range moves {
		for _, gw := range uniqueNonEmpty(m.gateways) {
			l.byGateway[gw] = append(l.byGateway[gw], m)
			l.waiting[m]++
			u := 1
			if m.priority == PriorityFailover {
				u = 0
			}
			if cur, ok := l.urgency[gw]; !ok || u < cur {
				l.urgency[gw] = u
			}
		}
	}
	return l
}

func (l *launcher) rank(gateway string) int {
	if u, ok := l.urgency[gateway]; ok {
		return u
	}
	return 2
}

// written records the outcome of a gateway's status write and returns the moves that wait for no
// other write any more.
func (l *launcher) written(gateway string, err error) []*moveOp {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed[gateway] = err
	}
	var ready []*moveOp
	for _, m := range l.byGateway[gateway] {
		if l.waiting[m]--; l.waiting[m] == 0 {
			ready = append(ready, m)
		}
	}
	return ready
}

// claim reports whether m is still to be launched, and marks it launched: the last of its writes and
// the intentWait of a failover race for it.
func (l *launcher) claim(m *moveOp) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.launched[m] {
		return false
	}
	l.launched[m] = true
	return true
}

// failedOf returns the failed writes that hold back IPs of a move: every failed write, except for a
// failover those that never reached the API server.
func (l *launcher) failedOf(m *moveOp) map[string]error {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]error{}
	for _, gw := range m.gateways {
		if err := l.failed[gw]; err != nil && !(m.priority == PriorityFailover && apiUnreachable(err)) {
			out[gw] = err
		}
	}
	return out
}

// apiUnreachable reports whether a write failed for want of an API server to answer it (a timeout, a
// refused or reset connection, an overloaded or restarting server) rather than being refused on its merits.
func apiUnreachable(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsTooManyRequests(err)
}
