package agent_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
)

// TestHealthFollowsTheDatapath: /readyz and the manager's /healthz answer 200 once the first apply is
// done, and /healthz answers 503 naming the uplink while the node's uplink is down.
func TestHealthFollowsTheDatapath(t *testing.T) {
	c := newCluster(t, 2, 1)
	c.createGateway("gw")
	c.placeIP("gw", "node2", egressgwv1.AssignmentAssigned)
	c.startAll()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		ra := c.agents["node2"]
		ra.a.Handler(ra.reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	for _, path := range []string{"/readyz", failover.DefaultAgentHealthPath} {
		if code, body := get(path); code != http.StatusOK {
			t.Errorf("%s: %d %s, want 200 after the first apply", path, code, body)
		}
	}
	n2 := c.topo.Nodes[1]
	if _, err := n2.NS.Run(context.Background(), nil, "ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatal(err)
	}
	code, body := get(failover.DefaultAgentHealthPath)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "uplink eth0 is down") {
		t.Errorf("uplink down: %d %q, want 503 naming the uplink", code, body)
	}
	if _, err := n2.NS.Run(context.Background(), nil, "ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	if code, body := get(failover.DefaultAgentHealthPath); code != http.StatusOK {
		t.Errorf("uplink up again: %d %s, want 200", code, body)
	}
}
