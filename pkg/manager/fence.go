package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
)

// errNotLeading refuses a cloud call or a write of a replica that may no longer hold the lease.
var errNotLeading = errors.New("not leading: this replica may no longer hold the leader lease")

// renewedLock is the leader election's Lease lock, remembering when this replica last renewed it. A
// replica paused (a long GC pause, a stopped container, a starved node) keeps running its loop for a
// moment after it resumes, before the elector notices that the lease is gone; the fence lets it act only
// while its last renewal is younger than the renew deadline, by which time the elector itself gives up
// and well before another replica may take the lease (the lease duration after it last saw a renewal).
type renewedLock struct {
	resourcelock.Interface
	valid time.Duration
	// events records "became leader" and "stopped leading" as core Events on the Lease, as
	// controller-runtime's own lock does, for `kubectl describe lease`.
	events   record.EventBroadcaster
	recorder record.EventRecorder

	mu      sync.Mutex
	renewed time.Time
}

func newRenewedLock(cfg *rest.Config, le LeaderElection) (*renewedLock, error) {
	conf := rest.CopyConfig(cfg)
	conf.Timeout = max(time.Second, le.RenewDeadline/2) // one hung request must not cost the lease
	cs, err := kubernetes.NewForConfig(rest.AddUserAgent(conf, "egressgw-leader-election"))
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("leader election identity: %w", err)
	}
	id := host + "_" + string(uuid.NewUUID())
	events := record.NewBroadcaster()
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events(le.Namespace)})
	recorder := events.NewRecorder(clientgoscheme.Scheme, corev1.EventSource{Component: le.ID})
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.Namespace, le.ID, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder})
	if err != nil {
		events.Shutdown()
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	return &renewedLock{Interface: lock, valid: le.RenewDeadline, events: events, recorder: recorder}, nil
}

// close flushes and stops the lock's Event recording.
func (l *renewedLock) close() { l.events.Shutdown() }

func (l *renewedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.note(ler, l.Interface.Create(ctx, ler))
}

func (l *renewedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.note(ler, l.Interface.Update(ctx, ler))
}

// note records a successful renewal by the time the elector stamped into the record before sending it:
// the other replicas count the lease duration from their own observation, which is later.
func (l *renewedLock) note(ler resourcelock.LeaderElectionRecord, err error) error {
	if err == nil && ler.HolderIdentity == l.Identity() {
		l.mu.Lock()
		l.renewed = ler.RenewTime.Time
		l.mu.Unlock()
	}
	return err
}

// held reports whether this replica renewed the lease recently enough to act.
func (l *renewedLock) held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.renewed.IsZero() && time.Since(l.renewed) < l.valid
}

// fence refuses to act once leadership ended (ctx of the loop) or the last renewal is too old. Every
// cloud call and every write checks it first.
func (c *Controller) fence() error {
	if c.lead != nil && c.lead.Err() != nil {
		return errNotLeading
	}
	if c.LeaseHeld != nil && !c.LeaseHeld() {
		return errNotLeading
	}
	return nil
}

// cloudContext is the context of one cloud call: it carries the call's deadline but not the cancellation
// of leadership, so that a graceful stop waits for a call already on the wire to come back (the cloud
// applies it whatever the client does) before the lease is released. On a lost lease the process exits.
func cloudContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
