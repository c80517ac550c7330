package cniserver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/egressgw/egressgw/pkg/cnirpc"
	"github.com/egressgw/egressgw/pkg/cniserver"
	"github.com/egressgw/egressgw/pkg/cniserver/cniservertest"
)

// recorder is a cniserver.Programmer that records the order of calls and can hold an ADD until released.
type recorder struct {
	mu      sync.Mutex
	events  []string
	hold    chan struct{} // when set, PodAdded waits for it to close, ignoring ctx (an agent that overruns)
	started chan struct{}
	addErr  error
}

func (r *recorder) log(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) PodAdded(_ context.Context, pod cnirpc.PodIdentity, ips []netip.Addr) error {
	if r.started != nil {
		close(r.started)
	}
	if r.hold != nil {
		<-r.hold
	}
	r.log("add " + pod.ContainerID + " " + ips[0].String())
	return r.addErr
}

func (r *recorder) PodDeleted(_ context.Context, pod cnirpc.PodIdentity, _ []netip.Addr) error {
	r.log("del " + pod.ContainerID)
	return nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startServer(t *testing.T, cfg cniserver.ServerConfig, p cniserver.Programmer) *cniserver.Server {
	t.Helper()
	srv, _ := cniservertest.Serve(t, cfg, p)
	return srv
}

var webPod = cnirpc.PodIdentity{Namespace: "shop", Name: "web", UID: "u1", ContainerID: "c0ffee"}

func TestServerSocketIsPrivateAndGoneAfterShutdown(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "egressgw")
	srv, stop := cniservertest.Serve(t, cniserver.ServerConfig{SocketPath: filepath.Join(dir, "cni.sock")}, &recorder{})
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, srv.SocketPath(): 0o600 | os.ModeSocket} {
		if info, err := os.Stat(path); err != nil || info.Mode() != want {
			t.Errorf("%s mode = %v (%v), want %v", path, info.Mode(), err, want)
		}
	}
	stop()
	if _, err := os.Stat(srv.SocketPath()); !os.IsNotExist(err) {
		t.Fatalf("socket still there after shutdown: %v", err)
	}
}

func TestListenReplacesAStaleSocketButNotALiveOneOrAFile(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	_ = l.Close()
	startServer(t, cniserver.ServerConfig{SocketPath: stale}, &recorder{})
	if err := cnirpc.NewClient(stale).Status(context.Background()); err != nil {
		t.Fatalf("status over the replaced stale socket: %v", err)
	}

	second, _ := cniserver.NewServer(cniserver.ServerConfig{SocketPath: stale, Logger: quietLogger()}, &recorder{})
	if err := second.Listen(); err == nil || !strings.Contains(err.Error(), "another process serves") {
		t.Fatalf("second Listen on a live socket = %v", err)
	}
	file := filepath.Join(dir, "file")
	_ = os.WriteFile(file, []byte("x"), 0o600)
	third, _ := cniserver.NewServer(cniserver.ServerConfig{SocketPath: file, Logger: quietLogger()}, &recorder{})
	if err := third.Listen(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen on a regular file = %v", err)
	}
	if data, _ := os.ReadFile(file); string(data) != "x" {
		t.Fatal("Listen removed a regular file")
	}
}

func TestAddAndDelRoundTripAndCountLatency(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	srv := startServer(t, cniserver.ServerConfig{Registerer: reg}, rec)
	c := cnirpc.NewClient(srv.SocketPath())
	ip := netip.MustParseAddr("10.244.1.7")
	if err := c.Add(context.Background(), cnirpc.AddRequest{Pod: webPod, IPs: []netip.Addr{ip}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background(), cnirpc.AddRequest{Pod: webPod, IPs: []netip.Addr{ip}}); err != nil {
		t.Fatalf("CHECK on a Programmer without PodChecker: %v", err)
	}
	if err := c.Del(context.Background(), cnirpc.DelRequest{Pod: webPod}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(rec.events, ",") != "add c0ffee 10.244.1.7,del c0ffee" {
		t.Fatalf("events = %v", rec.events)
	}
	if n := testutil.CollectAndCount(reg, "egressgw_cni_request_duration_seconds"); n != 3 {
		t.Fatalf("histogram series = %d, want add/check/del ok", n)
	}
}

func TestAgentErrorsReachTheClientWithTheirMessage(t *testing.T) {
	rec := &recorder{addErr: errors.New("policy shop/egress has no egress IP yet")}
	srv := startServer(t, cniserver.ServerConfig{}, rec)
	c := cnirpc.NewClient(srv.SocketPath())
	err := c.Add(context.Background(), cnirpc.AddRequest{Pod: webPod, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}})
	var refused *cnirpc.AgentError
	if !errors.As(err, &refused) || refused.StatusCode != http.StatusInternalServerError || refused.Message != "policy shop/egress has no egress IP yet" {
		t.Fatalf("Add = %v", err)
	}
}

func TestBadRequestsAreRefusedWithTheField(t *testing.T) {
	srv := startServer(t, cniserver.ServerConfig{}, &recorder{})
	cases := map[string]struct{ body, want string }{
		"missing fields": {`{"pod":{"namespace":"shop"},"ips":[]}`, "missing name, containerID"},
		"ipv6":           {`{"pod":{"namespace":"a","name":"b","containerID":"c"},"ips":["fd00::1"]}`, "ips[0] is \\\"fd00::1\\\": only IPv4"},
		"unknown field":  {`{"pod":{},"bogus":1}`, "unknown field"},
		"two values":     {`{"pod":{"namespace":"a","name":"b","containerID":"c"}} {}`, "more than one"},
		"too large":      {`{"pod":{"namespace":"` + strings.Repeat("a", cnirpc.MaxRequestBytes) + `"}}`, "too large"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			status, msg := rawPost(t, srv.SocketPath(), cnirpc.PathAdd, tc.body)
			if status != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Fatalf("POST = %d %q, want 400 mentioning %q", status, msg, tc.want)
			}
		})
	}
}

func rawPost(t *testing.T, socket, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	req, _ := http.NewRequest(http.MethodPost, "http://egressgw-agent"+path, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(data))
}

// TestDelWaitsForAnOverrunningAddOfTheSameSandbox: the plugin gave up on an ADD, the runtime sent DEL; the
// DEL must run after the ADD so that nothing stays programmed for a sandbox that is gone.
func TestDelWaitsForAnOverrunningAddOfTheSameSandbox(t *testing.T) {
	rec := &recorder{hold: make(chan struct{}), started: make(chan struct{})}
	srv := startServer(t, cniserver.ServerConfig{}, rec)
	c := cnirpc.NewClient(srv.SocketPath())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	go func() {
		<-rec.started
		<-ctx.Done()
		time.AfterFunc(200*time.Millisecond, func() { close(rec.hold) }) // the agent finishes late
	}()
	err := c.Add(ctx, cnirpc.AddRequest{Pod: webPod, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.9")}})
	var timeout *cnirpc.TimeoutError
	if !errors.As(err, &timeout) {
		t.Fatalf("Add = %v, want a timeout", err)
	}
	if err := c.Del(context.Background(), cnirpc.DelRequest{Pod: webPod}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.events, ","); got != "add c0ffee 10.0.0.9,del c0ffee" {
		t.Fatalf("events = %s, want the late add before the del", got)
	}
}
