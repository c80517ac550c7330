package manager

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers"
)

// LeaderElection sets how replicas elect the one that acts.
type LeaderElection struct {
	Namespace string // where the Lease lives
	ID        string // the Lease's name
	// ReleaseOnCancel gives the lease up when the replica stops, so that another takes over within a
	// retry period instead of a lease duration. Off, a stop looks like a crash to the other replicas.
	ReleaseOnCancel bool
	LeaseDuration   time.Duration
	RenewDeadline   time.Duration
	RetryPeriod     time.Duration
}

// DefaultLeaderElection returns the documented defaults (docs/manager.md, "Brownouts"), with the Lease
// in namespace.
func DefaultLeaderElection(namespace string) LeaderElection {
	return LeaderElection{Namespace: namespace, ID: "egressgw-manager", ReleaseOnCancel: true,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
}

// RunOptions is everything Run needs besides the API server's address.
type RunOptions struct {
	Config         Config
	LeaderElection LeaderElection
	Provider       providers.Provider
	Log            logr.Logger
	// Registry receives the manager's metrics; MetricsAddr serves them ("0" disables the server).
	Registry    prometheus.Registerer
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz for the kubelet ("0" disables it).
	ProbeAddr string
	// OnMove, if set, is called after every move attempt.
	OnMove func(MoveRecord)
}

// Run runs a manager replica until ctx ends or the replica loses its lease after having led; then it
// returns, and the process should exit so that nothing of the old leader keeps acting.
func Run(ctx context.Context, cfg *rest.Config, o RunOptions) error {
	lock, err := newRenewedLock(cfg, o.LeaderElection)
	if err != nil {
		return err
	}
	defer lock.close()
	mgr, err := untilBuilt(ctx, cfg, o.ProbeAddr, o.Log, func() (ctrl.Manager, error) {
		return newManager(cfg, o, lock, newPermissions(o.Log, lock.recorder, o.LeaderElection))
	})
	if err != nil {
		return err
	}
	c, err := New(o.Config, mgr.GetClient(), mgr.GetCache(), o.Provider, mgr.GetEventRecorder(FieldOwner), o.Log, NewMetrics(o.Registry))
	if err != nil {
		return err
	}
	c.OnMove, c.LeaseHeld = o.OnMove, lock.held
	if err := mgr.Add(c); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

func newManager(cfg *rest.Config, o RunOptions, lock resourcelock.Interface, perms *permissions) (ctrl.Manager, error) {
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := egressgwv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	le := o.LeaderElection
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                              scheme,
		Logger:                              o.Log,
		LeaderElection:                      true,
		LeaderElectionID:                    le.ID,
		LeaderElectionNamespace:             le.Namespace,
		LeaderElectionResourceLockInterface: lock,
		LeaderElectionReleaseOnCancel:       le.ReleaseOnCancel,
		LeaseDuration:                       &le.LeaseDuration,
		RenewDeadline:                       &le.RenewDeadline,
		RetryPeriod:                         &le.RetryPeriod,
		Metrics:                             metricsserver.Options{BindAddress: o.MetricsAddr},
		// The kubelets' Leases corroborate a gateway that the probes cannot reach; only theirs are cached.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{NodeLeaseNamespace: {}}},
		}, DefaultWatchErrorHandler: perms.watchError},
		HealthProbeBindAddress: o.ProbeAddr,
	})
	if err != nil {
		return nil, fmt.Errorf("controller manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	// A probe must answer within the kubelet's timeout (1 s by default), with the reason: the cache is
	// looked at, not waited for.
	if err := mgr.AddReadyzCheck("permissions", func(req *http.Request) error {
		return perms.check(func(typeDescription string) bool {
			return informerSynced(req.Context(), mgr.GetCache(), typeDescription)
		})
	}); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("cache", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), 100*time.Millisecond)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return fmt.Errorf("informer caches not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}
