package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressgw/egressgw/pkg/nodeagent"
)

// Label values of egressgw_agent_pod_programmed_seconds.
const (
	pathInformer = "informer"
	pathCNI      = "cni"
)

// metrics are the agent's Prometheus metrics; every label set is bounded (paths, kinds, reasons).
type metrics struct {
	programmed    *prometheus.HistogramVec
	applyDuration *prometheus.HistogramVec
	syncErrors    *prometheus.CounterVec
	selectedPods  prometheus.Gauge
	ipsHeld       prometheus.Gauge
	blockedPolicy prometheus.Gauge
	warnings      *prometheus.GaugeVec
	candidate     prometheus.Gauge
	announcements *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, dp *nodeagent.Datapath) (*metrics, error) {
	m := &metrics{
		programmed: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "egressgw_agent_pod_programmed_seconds",
			Help: "Time from a pod's IP being known to this node's agent (informer: the Pod's status; cni: the CNI ADD) to its datapath being programmed.",
			// 0.5 ms to ~16 s: the targets are 20 ms (informer) and 50 ms (CNI) at p99.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"path"}),
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "egressgw_agent_apply_duration_seconds",
			Help:    "Duration of one datapath sync: kind=update is the event path (diff against the last state), kind=full reads and repairs the kernel.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind"}),
		syncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressgw_agent_sync_errors_total",
			Help: "Datapath syncs that failed, by kind (update, full); the agent retries with a backoff.",
		}, []string{"kind"}),
		selectedPods: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "egressgw_agent_selected_pods",
			Help: "IPs of this node's pods that a policy selects (steered, SNATed here, or dropped fail-closed).",
		}),
		ipsHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "egressgw_agent_egress_ips_held",
			Help: "Egress IPs this node SNATs to (it is their gateway).",
		}),
		blockedPolicy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "egressgw_agent_fail_closed_policies",
			Help: "Policies whose local pods' traffic is dropped because they have no usable egress IP.",
		}),
		warnings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "egressgw_agent_warnings",
			Help: "Current datapath warnings by reason (NoEgressIP, UnknownGateway, NoSteeringMark, UnknownPodNode, EgressLinkIncomplete).",
		}, []string{"reason"}),
		candidate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "egressgw_agent_gateway_candidate",
			Help: "1 while this node may hold egress IPs and therefore caches the pods of the whole cluster, 0 otherwise.",
		}),
	}
	m.announcements = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "egressgw_agent_announcements_total",
		Help: "New pods' IPs announced at CNI ADD to the agent of the gateway node that SNATs them, by result (ok, failed: that gateway drops the pod's packets until the Pod's status reaches it).",
	}, []string{"result"})
	// Zero series from the start, so that dashboards and alerts see the counters before the first failure.
	for _, kind := range []string{"update", "full"} {
		m.syncErrors.WithLabelValues(kind)
	}
	for _, result := range []string{"ok", "failed"} {
		m.announcements.WithLabelValues(result)
	}
	cs := []prometheus.Collector{m.programmed, m.applyDuration, m.syncErrors, m.selectedPods, m.ipsHeld, m.blockedPolicy,
		m.warnings, m.candidate, m.announcements, dropCollector{dp}}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register agent metrics: %w", err)
		}
	}
	return m, nil
}

// observe sets the gauges from the view and the state just programmed.
func (m *metrics) observe(v nodeagent.View, d *nodeagent.Desired, reports *reportLog) {
	local := map[string]bool{}
	for _, p := range v.Policies {
		for _, pod := range p.Pods {
			if pod.Node == v.Node {
				local[pod.IP.String()] = true
			}
		}
	}
	ips := map[string]bool{}
	for _, s := range d.SNATs {
		ips[s.EgressIP.String()] = true
	}
	m.selectedPods.Set(float64(len(local)))
	m.ipsHeld.Set(float64(len(ips)))
	m.blockedPolicy.Set(float64(len(d.Blocks)))
	m.warnings.Reset()
	for reason, n := range reports.reasons() {
		m.warnings.WithLabelValues(reason).Set(float64(n))
	}
}

// dropCollector exports the kernel's drop counters at scrape time (one read of egressgw's nftables
// table, bounded by a timeout).
type dropCollector struct{ dp *nodeagent.Datapath }

var dropDesc = prometheus.NewDesc("egressgw_agent_dropped_packets_total",
	"Packets egressgw's drop rules dropped on this node, by reason: fail_closed (a selected pod's policy has no usable egress IP), unmatched_tunnel (a tunnelled packet no SNAT rule of this gateway takes), spoofed_tunnel_source (tunnel traffic from an address that is not a node), unsolicited_egress_ip (traffic to an egress IP held here that is not a reply).",
	[]string{"reason"}, nil)

func (dropCollector) Describe(ch chan<- *prometheus.Desc) { ch <- dropDesc }

func (c dropCollector) Collect(ch chan<- prometheus.Metric) {
	if c.dp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.dp.DropCounters(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(dropDesc, errors.Join(errors.New("reading drop counters"), err))
		return
	}
	for reason, n := range counts {
		ch <- prometheus.MustNewConstMetric(dropDesc, prometheus.CounterValue, float64(n.Packets), reason)
	}
}
