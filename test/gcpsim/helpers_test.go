package gcpsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/ec2sim"
)

const base = "/compute/v1/projects/egressgw-test/"

type client struct {
	t     *testing.T
	url   string
	token string
}

func start(t *testing.T, opts Options) (*Server, *client) {
	t.Helper()
	m, err := LoadModel("testdata/project.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, &client{t: t, url: srv.URL, token: "token-manager"}
}

// do sends one request and decodes the JSON answer.
func (c *client) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		c.t.Fatalf("%s %s: answer is not JSON: %q", method, path, data)
	}
	return resp.StatusCode, out
}

// nic0 returns the instance's nic0 object as instances.get shows it.
func (c *client) nic0(zone, name string) map[string]any {
	c.t.Helper()
	status, inst := c.do("GET", base+"zones/"+zone+"/instances/"+name, "")
	if status != 200 {
		c.t.Fatalf("get %s: %d %v", name, status, inst)
	}
	return inst["networkInterfaces"].([]any)[0].(map[string]any)
}

func (c *client) fingerprint(zone, name string) string {
	return c.nic0(zone, name)["fingerprint"].(string)
}

// patch sends updateNetworkInterface for nic0 with a raw JSON body.
func (c *client) patch(zone, name, requestID, body string) (int, map[string]any) {
	path := base + "zones/" + zone + "/instances/" + name + "/updateNetworkInterface?networkInterface=nic0"
	if requestID != "" {
		path += "&requestId=" + requestID
	}
	return c.do("PATCH", path, body)
}

// reason is the first reason of an error envelope.
func reason(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	errs, _ := e["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	return errs[0].(map[string]any)["reason"].(string)
}

// opError is the first error code inside an operation.
func opError(op map[string]any) string {
	if op["kind"] != "compute#operation" {
		return ""
	}
	e, _ := op["error"].(map[string]any)
	errs, _ := e["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	return errs[0].(map[string]any)["code"].(string)
}

func aliasesOf(nic map[string]any) []string {
	var out []string
	list, _ := nic["aliasIpRanges"].([]any)
	for _, a := range list {
		out = append(out, a.(map[string]any)["ipCidrRange"].(string))
	}
	return out
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func manualClock() *ec2sim.ManualClock {
	return ec2sim.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}
