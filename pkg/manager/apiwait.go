package manager

// A replica that starts while the API server cannot be reached (a control-plane upgrade, a restart
// of the leader that lost its lease in the same outage) waits for it instead of exiting: building the
// controller manager asks the API server for its resources, client-go retries a GET for about 10 s,
// and a process that exits then is restarted by the kubelet with a back-off that doubles up to 5
// minutes — so an outage of a minute could leave the cluster without a leader for several more.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// apiWaitFirst and apiWaitMax bound the waits between tries to reach the API server at start
// (backoff.go's doubling).
const (
	apiWaitFirst = 500 * time.Millisecond
	apiWaitMax   = 5 * time.Second
)

// untilBuilt calls build until it succeeds, as long as its failure is the API server's absence: then it
// waits, serving /healthz (the process is alive and doing what it should) and a failing /readyz with
// the reason on probeAddr, and tries again. A failure while the API server answers is returned.
func untilBuilt[T any](ctx context.Context, cfg *rest.Config, probeAddr string, log logr.Logger, build func() (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		v, err := build()
		if err == nil {
			return v, nil
		}
		reach := apiServerReachable(ctx, cfg)
		if reach == nil {
			return v, err
		}
		if attempt == 0 {
			log.Info("waiting for the API server before starting", "error", reach.Error())
		} else if attempt%10 == 0 {
			log.Info("still waiting for the API server", "attempts", attempt+1, "error", reach.Error())
		}
		// The controller manager binds the probe address when it is built: the waiting probes give it
		// back before every try.
		stopProbes := serveWaitingProbes(probeAddr, reach, log)
		select {
		case <-ctx.Done():
			stopProbes()
			return v, fmt.Errorf("stopped while waiting for the API server (%v): %w", reach, ctx.Err())
		case <-time.After(doubling(apiWaitFirst, apiWaitMax, attempt+1)):
			stopProbes()
		}
	}
}

// apiServerReachable asks the API server its version, once, within a few seconds.
func apiServerReachable(ctx context.Context, cfg *rest.Config) error {
	conf := rest.CopyConfig(cfg)
	conf.Timeout = 3 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(conf)
	if err != nil {
		return err
	}
	_, err = dc.RESTClient().Get().AbsPath("/version").MaxRetries(0).Do(ctx).Raw()
	return err
}

// serveWaitingProbes answers the kubelet's probes while the replica waits: alive, not ready. It returns
// the function that stops serving, so that the controller manager can take the address.
func serveWaitingProbes(addr string, reason error, log logr.Logger) func() {
	if addr == "0" || addr == "" {
		return func() {}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error(err, "cannot serve the probes while waiting for the API server", "address", addr)
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "waiting for the API server: "+reason.Error(), http.StatusServiceUnavailable)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "probes while waiting for the API server")
		}
	}()
	return func() { _ = srv.Close() }
}
