package failover

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// agent is a stand-in for a gateway's health endpoint: a real HTTP server that counts the probes it
// answers and can be told to fail some of them.
type agent struct {
	srv     *httptest.Server
	served  atomic.Int64
	failing atomic.Int64 // the next N probes answer 503
}

func newAgent(t *testing.T) *agent {
	a := &agent{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.served.Add(1)
		if a.failing.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		a.failing.Store(0)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func fastProber(t *testing.T) (*Prober, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := NewProber(ProberConfig{Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond}, slog.New(slog.DiscardHandler))
	return p, ctx
}

// nextChange waits for a verdict change; the deadline only guards against a hang, it measures nothing.
func nextChange(t *testing.T, p *Prober) Change {
	t.Helper()
	select {
	case c := <-p.Changes():
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("no health change within 30s")
		return Change{}
	}
}

func TestProberDetectsADeadAgent(t *testing.T) {
	p, ctx := fastProber(t)
	a := newAgent(t)
	p.SetTargets(ctx, []Target{{Node: "gw-1", URL: a.srv.URL + "/healthz"}})
	if c := nextChange(t, p); c.Node != "gw-1" || c.Verdict != Healthy {
		t.Fatalf("first change %+v, want gw-1 Healthy", c)
	}
	a.srv.CloseClientConnections()
	a.srv.Close()
	c := nextChange(t, p)
	if c.Verdict != Unhealthy || c.LastOK.IsZero() {
		t.Fatalf("change %+v, want Unhealthy with the time of the last answer", c)
	}
	if p.Verdict("gw-1") != Unhealthy {
		t.Errorf("verdict %v after the change", p.Verdict("gw-1"))
	}
}

func TestProberIgnoresOneLostProbe(t *testing.T) {
	p, ctx := fastProber(t)
	a := newAgent(t)
	p.SetTargets(ctx, []Target{{Node: "gw-1", URL: a.srv.URL}})
	nextChange(t, p)
	a.failing.Store(2) // two failures in a row: one short of the threshold
	start := a.served.Load()
	for a.served.Load() < start+10 {
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case c := <-p.Changes():
		t.Fatalf("two lost probes changed the verdict: %+v", c)
	default:
	}
	if v := p.Verdict("gw-1"); v != Healthy {
		t.Errorf("verdict %v, want Healthy", v)
	}
}

func TestProberStopsProbingRemovedTargets(t *testing.T) {
	p, ctx := fastProber(t)
	a, b := newAgent(t), newAgent(t)
	p.SetTargets(ctx, []Target{{Node: "a", URL: a.srv.URL}, {Node: "b", URL: b.srv.URL}})
	nextChange(t, p)
	nextChange(t, p)
	p.SetTargets(ctx, []Target{{Node: "b", URL: b.srv.URL}})
	time.Sleep(50 * time.Millisecond) // let a probe already in flight finish
	stopped := a.served.Load()
	for start := b.served.Load(); b.served.Load() < start+5; {
		time.Sleep(5 * time.Millisecond)
	}
	if got := a.served.Load(); got != stopped {
		t.Errorf("removed target probed %d more times", got-stopped)
	}
	if v := p.Verdict("a"); v != Unknown {
		t.Errorf("removed target keeps verdict %v", v)
	}
}
