package manager

import (
	"context"
	"errors"
	"slices"
	"sync"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// writeStatusesThenMove writes every gateway's status and queues each planned move as soon as the
// statuses of its IPs' gateways are written, so that one gateway's failed or slow write holds up the
// moves of that gateway only: the IPs of a gateway whose intent could not be recorded are taken out of
// their moves and planned again by the next sync. Gateways with moves are written first.
func (c *Controller) writeStatusesThenMove(ctx context.Context, snap *snapshot, moves []*moveOp) error {
	l := newLauncher(moves)
	for _, m := range moves {
		if l.waiting[m] == 0 {
			c.launch(m, nil) // names no gateway: no status to wait for
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
				c.launch(m, l.failedOf(m))
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
	waiting   map[*moveOp]int
	byGateway map[string][]*moveOp
	failed    map[string]error
	urgency   map[string]int // per gateway: 0 with a failover move, 1 with another move, 2 without
}

func newLauncher(moves []*moveOp) *launcher {
	l := &launcher{waiting: map[*moveOp]int{}, byGateway: map[string][]*moveOp{}, failed: map[string]error{}, urgency: map[string]int{}}
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

// failedOf returns the failed writes among the gateways of a move.
func (l *launcher) failedOf(m *moveOp) map[string]error {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]error{}
	for _, gw := range m.gateways {
		if err := l.failed[gw]; err != nil {
			out[gw] = err
		}
	}
	return out
}
