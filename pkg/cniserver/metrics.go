package cniserver

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// newLatencyHistogram is the per-request latency, labelled by operation (add, check, del) and result (ok,
// error): a bounded label set. It is registered when reg is not nil; registering twice reuses the first.
func newLatencyHistogram(reg prometheus.Registerer) (*prometheus.HistogramVec, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "egressgw_cni_request_duration_seconds",
		Help: "Time the agent took to answer a CNI request from egressgw-cni, programming included.",
		// 1 ms to ~16 s: the target is 50 ms p99, the plugin gives up after 10 s by default.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"op", "result"})
	if reg == nil {
		return h, nil
	}
	if err := reg.Register(h); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(*prometheus.HistogramVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("cniserver: registering the request histogram: %w", err)
	}
	return h, nil
}
