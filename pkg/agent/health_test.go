package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/agenthealth"
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
	for _, path := range []string{"/readyz", agenthealth.DefaultPath} {
		if code, body := get(path); code != http.StatusOK {
			t.Errorf("%s: %d %s, want 200 after the first apply", path, code, body)
		}
	}
	n2 := c.topo.Nodes[1]
	if _, err := n2.NS.Run(context.Background(), nil, "ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatal(err)
	}
	code, body := get(agenthealth.DefaultPath)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "uplink eth0 is down") {
		t.Errorf("uplink down: %d %q, want 503 naming the uplink", code, body)
	}
	if _, err := n2.NS.Run(context.Background(), nil, "ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	if code, body := get(agenthealth.DefaultPath); code != http.StatusOK {
		t.Errorf("uplink up again: %d %s, want 200", code, body)
	}
}

// TestNotReadyUntilProgrammed: an agent whose Node is not in the API server yet cannot program the node;
// /healthz and /readyz say why with 503, and both turn 200 once the Node appears (the first apply is
// retried).
func TestNotReadyUntilProgrammed(t *testing.T) {
	c := newCluster(t, 1, 1)
	n1 := c.topo.Nodes[0]
	if err := c.env.Client.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}); err != nil {
		t.Fatal(err)
	}
	ra := c.startAgent(n1)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		ra.a.Handler(ra.reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	c.eventually("a failed first apply", func() (bool, string) {
		code, body := get(agenthealth.DefaultPath)
		return code == http.StatusServiceUnavailable && strings.Contains(body, `node "node1" has no IPv4 address`), fmt.Sprint(code, body)
	})
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "first full apply") {
		t.Errorf("/readyz before the first apply: %d %q", code, body)
	}
	c.createNode(n1)
	select {
	case <-ra.a.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("not ready 60 s after the Node appeared")
	}
	for _, path := range []string{"/readyz", agenthealth.DefaultPath} {
		if code, body := get(path); code != http.StatusOK {
			t.Errorf("%s after the Node appeared: %d %s", path, code, body)
		}
	}
}
