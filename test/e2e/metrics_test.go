package e2e_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/envtest"
	"github.com/egressgw/egressgw/test/helmchart"
)

// TestMonitoredMetricsAreServed: every metric an alert or a dashboard panel of the chart names is served
// by a running component of the lab (the managers, the agents), after the failovers and pod starts of the
// tests before it have given the histograms and counters their first observations.
func TestMonitoredMetricsAreServed(t *testing.T) {
	l := needLab(t)
	vals, err := helmchart.ValuesFile(filepath.Join(envtest.RepoRoot(), "examples", "aws", "values-eks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	on, err := helmchart.ParseSet(helmchart.MonitoringSet)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range on {
		vals[k] = v
	}
	r, err := helmchart.Render(vals, helmchart.Options{})
	if err != nil {
		t.Fatal(err)
	}
	queries, err := r.MonitoredQueries()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string][]string{}
	components := []string{"manager-1", "manager-2"}
	for _, n := range l.Topo.Nodes {
		components = append(components, "agent-"+n.Name)
	}
	for _, c := range components {
		body, err := l.Scrape(context.Background(), c)
		if err != nil {
			t.Errorf("scrape %s: %v", c, err)
			continue
		}
		for _, line := range strings.Split(body, "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, _, _ := strings.Cut(strings.SplitN(line, " ", 2)[0], "{")
			if !slices.Contains(served[name], c) {
				served[name] = append(served[name], c)
			}
		}
	}
	checked := 0
	for who, expr := range queries {
		names, err := helmchart.MetricsOf(expr)
		if err != nil {
			t.Errorf("%s: %v", who, err)
			continue
		}
		for _, name := range names {
			checked++
			if len(served[name]) == 0 && len(served[helmchart.BaseMetric(name)+"_count"]) == 0 && len(served[helmchart.BaseMetric(name)]) == 0 {
				t.Errorf("%s names %s, which no running component serves", who, name)
			}
		}
	}
	t.Logf("%d metric references of %d alerts and panels checked against %d series names served by %s", checked, len(queries), len(served),
		fmt.Sprint(components))
}
