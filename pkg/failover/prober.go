package failover

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxProbeBody is how much of a health answer is read; a longer body costs a new connection.
const maxProbeBody = 64 << 10

// Target is the health endpoint of a gateway node's agent.
type Target struct {
	Node string
	// URL is the full address of the endpoint, for example http://10.0.1.17:9561/healthz.
	URL string
}

// ProberConfig sets how often and how patiently gateways are probed. With the defaults a dead gateway
// is declared unhealthy 0.6 to 0.8 s after its last answer, and a single lost probe changes nothing.
type ProberConfig struct {
	Interval         time.Duration // between the starts of two probes of one node; default 200ms
	Timeout          time.Duration // for one probe; default 200ms, at most Interval
	FailureThreshold int           // consecutive failures that make a node unhealthy; default 3
	SuccessThreshold int           // consecutive successes that make it healthy again; default 2
}

// DefaultProberConfig returns the defaults that zero fields of a ProberConfig take.
func DefaultProberConfig() ProberConfig {
	return ProberConfig{Interval: 200 * time.Millisecond, Timeout: 200 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 2}
}

func (c ProberConfig) withDefaults() ProberConfig {
	d := DefaultProberConfig()
	c.Interval = cmp.Or(c.Interval, d.Interval)
	c.Timeout = min(cmp.Or(c.Timeout, d.Timeout), c.Interval)
	c.FailureThreshold = cmp.Or(c.FailureThreshold, d.FailureThreshold)
	c.SuccessThreshold = cmp.Or(c.SuccessThreshold, d.SuccessThreshold)
	return c
}

// Prober probes the agents of gateway nodes over HTTP, each on its own goroutine, and reports every
// change of verdict on Changes. It reaches the agents directly, without the API server, so detection
// does not depend on the control plane or on Node conditions.
type Prober struct {
	cfg     ProberConfig
	client  *http.Client
	log     *slog.Logger
	changes chan Change

	mu      sync.Mutex
	hyst    *Hysteresis
	workers map[string]worker
}

type worker struct {
	url  string
	stop context.CancelFunc
}

// NewProber returns a prober; call SetTargets to start probing and read Changes.
func NewProber(cfg ProberConfig, log *slog.Logger) *Prober {
	cfg = cfg.withDefaults()
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     10 * cfg.Interval,
	}
	return &Prober{
		cfg:     cfg,
		client:  &http.Client{Transport: transport, Timeout: cfg.Timeout},
		log:     log,
		changes: make(chan Change, 1024),
		hyst:    NewHysteresis(cfg.FailureThreshold, cfg.SuccessThreshold),
		workers: map[string]worker{},
	}
}

// Changes delivers verdict changes. The prober never blocks on it: a reader that falls more than 1024
// changes behind loses changes, and must re-read the verdicts with Verdict.
func (p *Prober) Changes() <-chan Change { return p.changes }

// Verdict returns the current verdict of a node.
func (p *Prober) Verdict(node string) Verdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hyst.Verdict(node)
}

// Health returns the current health of a node.
func (p *Prober) Health(node string) Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hyst.Health(node)
}

// SetTargets makes the prober probe exactly these targets: new ones start at once, removed ones stop
// and are forgotten, a changed URL restarts the node's probes with its verdict kept. Probing stops when
// ctx ends.
func (p *Prober) SetTargets(ctx context.Context, targets []Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := make(map[string]string, len(targets))
	for _, t := range targets {
		want[t.Node] = t.URL
	}
	for node, w := range p.workers {
		if url, ok := want[node]; !ok || url != w.url {
			w.stop()
			delete(p.workers, node)
			if !ok {
				p.hyst.Forget(node)
			}
		}
	}
	for node, url := range want {
		if _, ok := p.workers[node]; !ok {
			wctx, stop := context.WithCancel(ctx)
			p.workers[node] = worker{url: url, stop: stop}
			go p.probeLoop(wctx, node, url)
		}
	}
}

func (p *Prober) probeLoop(ctx context.Context, node, url string) {
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
	for {
		err := p.probe(ctx, url)
		if ctx.Err() != nil {
			return
		}
		p.observe(ctx, node, err)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (p *Prober) probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	// Read the (short) body to its end: only then does the connection go back to the pool, so that the
	// next probe needs no new handshake (a lost SYN costs a 1 s retransmit, longer than a probe may take)
	// and closed connections do not pile up in TIME_WAIT on the manager's node.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func (p *Prober) observe(ctx context.Context, node string, probeErr error) {
	p.mu.Lock()
	// A worker stopped while probing must not report for a node that is gone.
	if ctx.Err() != nil {
		p.mu.Unlock()
		return
	}
	c, changed := p.hyst.Observe(node, probeErr == nil, time.Now())
	p.mu.Unlock()
	if !changed {
		return
	}
	p.log.Info("gateway health changed", "node", node, "verdict", c.Verdict, "lastOK", c.LastOK, "error", probeErr)
	select {
	case p.changes <- c:
	default:
		p.log.Error("health change dropped: reader too slow", "node", node, "verdict", c.Verdict)
	}
}
