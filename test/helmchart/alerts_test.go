package helmchart

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	promql "github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/egressgw/egressgw/test/envtest"
)

// metricSources are the files that define every metric the manager and the agent serve: egressgw's
// own, and controller-runtime's leader-election gauge (the manager serves controller-runtime's registry).
var metricSources = []string{"pkg/manager/metrics.go", "pkg/agent/metrics.go", "pkg/cniserver/metrics.go"}

// TestAlertRulesLoadAndNameRealMetrics: the PrometheusRule loads in Prometheus' own rule checker (what
// promtool check rules runs), the alerts are there, and every metric an alert or a dashboard
// panel names is defined in the code.
func TestAlertRulesLoadAndNameRealMetrics(t *testing.T) {
	r, err := Render(mustSet(t, awsOK, everything), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rules := renderedRules(t, r)
	data, err := yaml.Marshal(rules.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(data, false, model.UTF8Validation, promql.NewParser(promql.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Errorf("rule checker: %v", err)
	}
	known := definedMetrics(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, rule := range g.Rules {
			alerts = append(alerts, rule.Alert)
			wantKnownMetrics(t, "alert "+rule.Alert, rule.Expr, known)
		}
	}
	for _, want := range []string{"EgressgwUnplacedIPs", "EgressgwFailover", "EgressgwFailClosedDrops", "EgressgwCloudErrors", "EgressgwManagerWithoutLeader"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s among %v", want, alerts)
		}
	}
	panels := dashboardExprs(t, r)
	for title, expr := range panels {
		wantKnownMetrics(t, "panel "+title, expr, known)
	}
	t.Logf("%d alerts and %d panel queries checked against %d metrics", len(alerts), len(panels), len(known))
}

func renderedRules(t *testing.T, r *Rendered) *monitoringv1.PrometheusRule {
	t.Helper()
	u := r.Find("PrometheusRule", "egressgw")
	if u == nil {
		t.Fatal("metrics.prometheusRule.enabled=true rendered no PrometheusRule")
	}
	var pr monitoringv1.PrometheusRule
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &pr, true); err != nil {
		t.Fatalf("PrometheusRule does not decode into the operator's type: %v", err)
	}
	return &pr
}

// dashboardExprs are the queries of the dashboard's panels, by panel title (and query ref).
func dashboardExprs(t *testing.T, r *Rendered) map[string]string {
	t.Helper()
	cm := r.Find("ConfigMap", "egressgw-dashboard")
	if cm == nil {
		t.Fatal("metrics.grafanaDashboard.enabled=true rendered no dashboard ConfigMap")
	}
	raw, _, _ := unstructuredString(cm.Object, "data", "egressgw.json")
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
		t.Fatalf("dashboard JSON: %v", err)
	}
	out := map[string]string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out[p.Title+" "+tg.RefID] = tg.Expr
		}
	}
	if len(out) < 10 {
		t.Fatalf("dashboard has %d queries; want the issue's panels", len(out))
	}
	return out
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	cur := any(obj)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

// wantKnownMetrics parses expr and checks that every metric it selects is defined (a histogram's
// _bucket, _count and _sum series count as the histogram's).
func wantKnownMetrics(t *testing.T, who, expr string, known map[string]bool) {
	t.Helper()
	e, err := promql.NewParser(promql.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", who, expr, err)
		return
	}
	n := 0
	promql.Inspect(e, func(node promql.Node, _ []promql.Node) error {
		vs, ok := node.(*promql.VectorSelector)
		if !ok {
			return nil
		}
		n++
		name := vs.Name
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
		if !known[name] && !known[base] {
			t.Errorf("%s names metric %s, which no metric definition in %v or controller-runtime has", who, name, metricSources)
		}
		return nil
	})
	if n == 0 {
		t.Errorf("%s: %q selects no metric", who, expr)
	}
}

// definedMetrics reads the metric names from the Go sources: Name fields of prometheus.*Opts literals
// and the first argument of prometheus.NewDesc.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files := []string{}
	for _, f := range metricSources {
		files = append(files, filepath.Join(envtest.RepoRoot(), f))
	}
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "sigs.k8s.io/controller-runtime/pkg/metrics").Output()
	if err != nil {
		t.Fatalf("find controller-runtime's metrics package: %v", err)
	}
	files = append(files, filepath.Join(strings.TrimSpace(string(out)), "leaderelection.go"))
	known := map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if name, ok := metricName(n); ok {
				known[name] = true
			}
			return true
		})
	}
	for _, must := range []string{"egressgw_unplaced_ips", "egressgw_agent_dropped_packets_total", "leader_election_master_status"} {
		if !known[must] {
			t.Fatalf("reading the metric definitions found no %s (found %v): the parser is broken", must, known)
		}
	}
	return known
}

func metricName(n ast.Node) (string, bool) {
	var lit ast.Expr
	switch n := n.(type) {
	case *ast.KeyValueExpr:
		if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Name" {
			lit = n.Value
		}
	case *ast.CallExpr:
		if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewDesc" && len(n.Args) > 0 {
			lit = n.Args[0]
		}
	}
	bl, ok := lit.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil && s != ""
}
