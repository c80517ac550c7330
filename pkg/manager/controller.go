package manager

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
	"github.com/egressgw/egressgw/providers"
)

// FinalizerReleaseIPs keeps a deleted EgressGateway until its IPs are released in the cloud.
const FinalizerReleaseIPs = "egressgw.io/release-ips"

// MoveRecord describes one finished (or failed) move, for metrics, logs and tests.
type MoveRecord struct {
	IPs      []netip.Addr
	From, To string
	// BrokeAt is the last answer of the failed node the IPs left, zero when the move was not a failover.
	BrokeAt time.Time
	// DetectedAt is when the node was declared unhealthy (zero when not a failover).
	DetectedAt time.Time
	Started    time.Time
	Done       time.Time
	Err        error
}

// Controller is the leader's control loop. Create it with New and add it to a controller-runtime
// manager, which starts it only on the elected leader and stops it when the lease is lost.
type Controller struct {
	cfg       Config
	client    client.Client
	informers cache.Informers
	provider  providers.Provider
	events    events.EventRecorder
	log       logr.Logger
	metrics   *Metrics
	prober    *failover.Prober
	queue     *opQueue
	trigger   chan struct{}

	// OnMove, when set before Start, is called after every move attempt.
	OnMove func(MoveRecord)
	// LeaseHeld, when set before Start, reports whether the replica renewed its lease recently enough to
	// act (see renewedLock); nil trusts the context alone.
	LeaseHeld func() bool
	lead      context.Context // the context of Start: done when leadership ends

	wakeMu sync.Mutex
	wake   *time.Timer
	wakeAt time.Time // when wake fires; zero when it is not armed

	mu             sync.Mutex
	ips            map[netip.Addr]*ipState
	nodes          map[string]*nodeCloud
	detectedAt     map[string]time.Time // when a node's probes declared it unhealthy
	brokeAt        map[string]time.Time // its last answer before that
	gauged         map[string]bool      // nodes with a gatewayHealthy gauge
	locating       bool                 // a Locate is queued or running
	lastLocate     time.Time            // when the last full Locate started
	relocate       map[netip.Addr]bool  // IPs to locate again soon: a call about them failed
	lastRelocate   time.Time            // when the last Locate of such IPs started
	locateFailures int
	locateRetryAt  time.Time
	view           view
	isolated       bool // most gateway probes fail at once (see suspectIsolation)

	invalidIPs map[string]bool // objects' IPs already reported not to parse (parseIP)
	// The last status written per gateway and per policy.
	written         map[string]egressgwv1.EgressGatewayStatus
	writtenPolicies map[client.ObjectKey]egressgwv1.EgressPolicyStatus
}

// New returns a controller. The client must read from the manager's cache (the default client of a
// controller-runtime manager) and informers must be that cache; the recorder writes Events on
// gateways and policies.
func New(cfg Config, c client.Client, informers cache.Informers, provider providers.Provider, recorder events.EventRecorder, log logr.Logger, metrics *Metrics) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("manager config: %w", err)
	}
	return &Controller{
		cfg: cfg, client: c, informers: informers, provider: provider, events: recorder, log: log, metrics: metrics,
		prober:          failover.NewProber(cfg.Probe, slog.New(logr.ToSlogHandler(log))),
		queue:           newOpQueue(),
		trigger:         make(chan struct{}, 1),
		written:         map[string]egressgwv1.EgressGatewayStatus{},
		writtenPolicies: map[client.ObjectKey]egressgwv1.EgressPolicyStatus{},
		ips:             map[netip.Addr]*ipState{},
		nodes:           map[string]*nodeCloud{},
		detectedAt:      map[string]time.Time{},
		brokeAt:         map[string]time.Time{},
		relocate:        map[netip.Addr]bool{},
		gauged:          map[string]bool{},
	}, nil
}

// NeedLeaderElection tells controller-runtime to run the loop on the leader only.
func (c *Controller) NeedLeaderElection() bool { return true }

// Start restores the state from the cloud, then runs the loop until ctx ends (the lease is lost or the
// process stops). Cloud calls in flight are cancelled with ctx.
// Start returns only when the cloud calls in flight came back, so that the lease is released (which
// controller-runtime does after Start returns) only once nothing of this replica can still land.
func (c *Controller) Start(ctx context.Context) error {
	c.lead = ctx
	// Every cloud request, down to a provider's retries, checks the fence (a replica paused inside a
	// provider call must not send the rest of it when it resumes).
	ctx = providers.WithFence(ctx, c.fence)
	if err := c.watch(ctx); err != nil {
		return err
	}
	workers := make(chan struct{})
	go func() {
		defer close(workers)
		c.queue.run(ctx, c.cfg.CloudConcurrency)
	}()
	defer func() { <-workers }()
	if err := c.recover(ctx); err != nil {
		return fmt.Errorf("recover the state from the cloud: %w", err)
	}
	c.log.Info("leading: state recovered from the cloud", "ips", c.ipCount())
	c.loop(ctx)
	return nil
}

func (c *Controller) loop(ctx context.Context) {
	resync := time.NewTicker(c.cfg.CloudResync)
	defer resync.Stop()
	c.kick()
	for {
		select {
		case <-ctx.Done():
			return
		case ch := <-c.prober.Changes():
			c.healthChanged(ch)
		case <-resync.C: // sync reads the cloud again where its last read is older than CloudResync
		case <-c.trigger:
		}
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			c.log.Error(err, "sync failed; retrying")
			c.kickAfter(ctx, c.nextAttempt(1, retrySync))
		}
	}
}

// kick asks for a sync soon; kicks coalesce.
func (c *Controller) kick() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// kickAfter asks for a sync after d, for retries that wait for a backoff. One timer serves all: it is
// moved earlier when needed and never multiplied by the IPs that wait.
func (c *Controller) kickAfter(ctx context.Context, d time.Duration) {
	at := time.Now().Add(d)
	c.wakeMu.Lock()
	defer c.wakeMu.Unlock()
	if c.wake != nil && !c.wakeAt.IsZero() && !at.Before(c.wakeAt) {
		return
	}
	if c.wake == nil {
		c.wake = time.AfterFunc(d, c.woke)
		context.AfterFunc(ctx, func() { c.wake.Stop() })
	} else {
		c.wake.Reset(d)
	}
	c.wakeAt = at
}

func (c *Controller) woke() {
	c.wakeMu.Lock()
	c.wakeAt = time.Time{}
	c.wakeMu.Unlock()
	c.kick()
}

func (c *Controller) healthChanged(ch failover.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch.Verdict == failover.Unhealthy {
		now := time.Now()
		c.detectedAt[ch.Node], c.brokeAt[ch.Node] = now, ch.LastOK
		if !ch.LastOK.IsZero() {
			c.metrics.observeDetection(now.Sub(ch.LastOK))
		}
		return
	}
	delete(c.detectedAt, ch.Node)
	delete(c.brokeAt, ch.Node)
}

func (c *Controller) ipCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ips)
}
