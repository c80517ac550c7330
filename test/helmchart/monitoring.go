package helmchart

import (
	"encoding/json"
	"fmt"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	promql "github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// MonitoringSet turns on the chart's optional monitoring objects (ServiceMonitor, PrometheusRule, the
// Grafana dashboard), as `--set` would.
const MonitoringSet = "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,metrics.grafanaDashboard.enabled=true"

// Rules is the rendered PrometheusRule, decoded into the Prometheus Operator's type.
func (r *Rendered) Rules() (*monitoringv1.PrometheusRule, error) {
	u := r.Find("PrometheusRule", "egressgw")
	if u == nil {
		return nil, fmt.Errorf("the chart rendered no PrometheusRule (set metrics.prometheusRule.enabled=true)")
	}
	var pr monitoringv1.PrometheusRule
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &pr, true); err != nil {
		return nil, fmt.Errorf("the PrometheusRule does not decode into the operator's type: %w", err)
	}
	return &pr, nil
}

// DashboardQueries are the queries of the Grafana dashboard's panels, by panel title and query ref.
func (r *Rendered) DashboardQueries() (map[string]string, error) {
	cm := r.Find("ConfigMap", "egressgw-dashboard")
	if cm == nil {
		return nil, fmt.Errorf("the chart rendered no dashboard ConfigMap (set metrics.grafanaDashboard.enabled=true)")
	}
	raw, _, _ := unstructured.NestedString(cm.Object, "data", "egressgw.json")
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		return nil, fmt.Errorf("dashboard JSON: %w", err)
	}
	out := map[string]string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out[p.Title+" "+tg.RefID] = tg.Expr
		}
	}
	return out, nil
}

// MonitoredQueries are every alert's and every dashboard panel's expression, by "alert NAME" and
// "panel TITLE REF".
func (r *Rendered) MonitoredQueries() (map[string]string, error) {
	rules, err := r.Rules()
	if err != nil {
		return nil, err
	}
	out, err := r.DashboardQueries()
	if err != nil {
		return nil, err
	}
	for _, g := range rules.Spec.Groups {
		for _, rule := range g.Rules {
			out["alert "+rule.Alert] = rule.Expr.String()
		}
	}
	return out, nil
}

// MetricsOf parses a PromQL expression and returns the metric names it selects.
func MetricsOf(expr string) ([]string, error) {
	e, err := promql.NewParser(promql.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("%q does not parse: %w", expr, err)
	}
	var names []string
	promql.Inspect(e, func(node promql.Node, _ []promql.Node) error {
		if vs, ok := node.(*promql.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, nil
}

// BaseMetric is a series name without a histogram's or summary's _bucket, _count or _sum.
func BaseMetric(name string) string {
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		name = strings.TrimSuffix(name, suffix)
	}
	return name
}
