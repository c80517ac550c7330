package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// serveHTTP serves Handler on addr ("" is this node's InternalIP on the manager's probe port, "0"
// serves nothing) until ctx ends. It starts once the Node cache has synced, before the first apply, so
// that the manager's probes get 503 with the reason rather than a refused connection.
func (a *Agent) serveHTTP(ctx context.Context, addr string, gatherer prometheus.Gatherer) error {
	if addr == "0" {
		return nil
	}
	if addr == "" {
		var err error
		if addr, err = a.HealthAddress(); err != nil {
			return fmt.Errorf("health endpoint: %w", err)
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("health endpoint: %w", err)
	}
	srv := &http.Server{Handler: a.Handler(gatherer), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("health endpoint stopped", "err", err)
		}
	}()
	a.log.Info("serving /healthz, /readyz and /metrics", "address", l.Addr().String())
	return nil
}

// ServesServiceCIDRs reports whether the API server serves networking.k8s.io/v1 ServiceCIDRs (GA in
// Kubernetes 1.33), whose ranges the agent then adds to the cluster ranges.
func ServesServiceCIDRs(cfg *rest.Config) (bool, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return false, err
	}
	list, err := dc.ServerResourcesForGroupVersion("networking.k8s.io/v1")
	if err != nil {
		return false, fmt.Errorf("discovering networking.k8s.io/v1: %w", err)
	}
	for _, r := range list.APIResources {
		if r.Name == "servicecidrs" {
			return true, nil
		}
	}
	return false, nil
}
