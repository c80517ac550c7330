package manager

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressgw/egressgw/providers"
)

// Metrics are the manager's Prometheus metrics.
type Metrics struct {
	moves          *prometheus.CounterVec
	moveSeconds    prometheus.Histogram
	failoverSecs   prometheus.Histogram
	detectionSecs  prometheus.Histogram
	cloudSeconds   *prometheus.HistogramVec
	cloudErrors    *prometheus.CounterVec
	unplaced       prometheus.Gauge
	queueDepth     *prometheus.GaugeVec
	gatewayHealthy *prometheus.GaugeVec
	// errorSeries remembers the methods whose error series exist (at zero until their first error).
	errorSeries sync.Map
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	fast := []float64{.05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 10, 30}
	m := &Metrics{
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egressgw_ip_moves_total",
			Help: "Moves of egress IPs between nodes, by result (ok, error)."}, []string{"result"}),
		moveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "egressgw_ip_move_duration_seconds",
			Help: "Time of the cloud calls of one move.", Buckets: fast}),
		failoverSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "egressgw_failover_duration_seconds",
			Help: "From the last answer of a failed gateway to its IPs confirmed on another node.", Buckets: fast}),
		detectionSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "egressgw_failure_detection_seconds",
			Help: "From the last answer of a gateway to the verdict that it failed.", Buckets: fast}),
		cloudSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "egressgw_cloud_call_duration_seconds",
			Help: "Latency of provider calls, retries included, by method.", Buckets: fast}, []string{"method"}),
		cloudErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egressgw_cloud_call_errors_total",
			Help: "Failed provider calls by method and error class."}, []string{"method", "code"}),
		unplaced: prometheus.NewGauge(prometheus.GaugeOpts{Name: "egressgw_unplaced_ips",
			Help: "Egress IPs that no node can hold now."}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "egressgw_cloud_queue_depth",
			Help: "Cloud operations waiting, by priority."}, []string{"priority"}),
		gatewayHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "egressgw_gateway_node_eligible",
			Help: "1 when a gateway node may hold egress IPs, 0 when not."}, []string{"node"}),
	}
	reg.MustRegister(m.moves, m.moveSeconds, m.failoverSecs, m.detectionSecs, m.cloudSeconds, m.cloudErrors,
		m.unplaced, m.queueDepth, m.gatewayHealthy)
	return m
}

func (m *Metrics) observeDetection(d time.Duration) { m.detectionSecs.Observe(d.Seconds()) }

func (m *Metrics) observeCloud(method string, start time.Time, err error) {
	m.cloudSeconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
	if _, seen := m.errorSeries.LoadOrStore(method, true); !seen {
		// Every error class of a method the manager calls is served from its first call, at zero, so that
		// dashboards and alerts see the series before the first error.
		for _, code := range errorCodes {
			m.cloudErrors.WithLabelValues(method, code)
		}
	}
	if err != nil {
		m.cloudErrors.WithLabelValues(method, errorCode(err)).Inc()
	}
}

func (m *Metrics) observeMove(r MoveRecord) {
	if r.Err != nil {
		m.moves.WithLabelValues("error").Inc()
		return
	}
	m.moves.WithLabelValues("ok").Inc()
	m.moveSeconds.Observe(r.Done.Sub(r.Started).Seconds())
	if !r.BrokeAt.IsZero() {
		m.failoverSecs.Observe(r.Done.Sub(r.BrokeAt).Seconds())
	}
}

// errorCode names the class of a provider error for metrics and condition reasons.
func errorCode(err error) string {
	for _, c := range errorClasses {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return otherCloudError
}

// errorClasses are the provider errors the metric tells apart, in the order they are tested.
var errorClasses = []struct {
	err  error
	code string
}{
	{providers.ErrThrottled, "Throttled"},
	{providers.ErrUnavailable, "CloudUnavailable"},
	{providers.ErrCapacityExhausted, "CapacityExhausted"},
	{providers.ErrOutsideSubnet, "OutsideSubnet"},
	{providers.ErrIPInUse, "IPInUse"},
	{providers.ErrAssignedElsewhere, "AssignedElsewhere"},
	{providers.ErrNotFound, "NotFoundInCloud"},
	{providers.ErrUnsupportedNode, "UnsupportedNode"},
	{providers.ErrPermanent, "CloudRefused"},
}

const otherCloudError = "CloudError"

// errorCodes are every code errorCode returns.
var errorCodes = func() []string {
	out := []string{otherCloudError}
	for _, c := range errorClasses {
		out = append(out, c.code)
	}
	return out
}()
