package failover

import (
	"context"
	"log/slog"
	"net"
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

// TestProberKeepsItsConnection probes an agent whose answer has a body 30 times: the probes must share
// one keep-alive connection (a new handshake per probe fails a probe on a single lost SYN and leaves a
// TIME_WAIT entry each time), which requires reading the body.
func TestProberKeepsItsConnection(t *testing.T) {
	var conns atomic.Int64
	var served atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Write([]byte(`{"status":"ok","checks":{"datapath":"ok","tunnel":"ok"}}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p, ctx := fastProber(t)
	p.SetTargets(ctx, []Target{{Node: "gw-1", URL: srv.URL + "/healthz"}})
	for served.Load() < 30 {
		time.Sleep(5 * time.Millisecond)
	}
	if n := conns.Load(); n > 2 {
		t.Errorf("30 probes opened %d connections, want one (two if one was lost)", n)
	}
}

// TestProberReportsRecovery: a node that recovers from Unhealthy carries the time of its recovery, and
// a node whose last probe failed is Failing before it is Unhealthy.
func TestProberReportsRecovery(t *testing.T) {
	p, ctx := fastProber(t)
	a := newAgent(t)
	p.SetTargets(ctx, []Target{{Node: "gw-1", URL: a.srv.URL}})
	nextChange(t, p)
	if h := p.Health("gw-1"); h.Verdict != Healthy || !h.RecoveredAt.IsZero() {
		t.Fatalf("health %+v, want Healthy, never recovered", h)
	}
	a.failing.Store(4)
	if c := nextChange(t, p); c.Verdict != Unhealthy {
		t.Fatalf("change %+v, want Unhealthy", c)
	}
	before := time.Now()
	if c := nextChange(t, p); c.Verdict != Healthy {
		t.Fatalf("change %+v, want Healthy", c)
	}
	if h := p.Health("gw-1"); h.RecoveredAt.Before(before) || h.Failing {
		t.Errorf("health %+v, want recovered after %v and not failing", h, before)
	}
}
