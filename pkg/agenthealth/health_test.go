package agenthealth

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	var state error
	srv := httptest.NewServer(Handler(func() error { return state }))
	defer srv.Close()
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthy: %d %q", code, body)
	}
	state = errors.New("datapath not programmed: iptables-restore failed")
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "iptables-restore failed") {
		t.Errorf("unhealthy: %d %q", code, body)
	}
}
