package simkit

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestServeAnswersUntilCancelled: the server answers on its address and Serve returns nil once its
// context ends, as a command stopped by SIGTERM does.
func TestServeAnswersUntilCancelled(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "sim") })
	go func() { done <- Serve(ctx, "testsim", addr, h, nil, slog.New(slog.DiscardHandler)) }()
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
	}
	if string(body) != "sim" {
		t.Fatalf("answer %q, want sim", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v, want nil", err)
	}
}

// TestRunHookPassesTheEnvironment: the hook command sees the variables it is given.
func TestRunHookPassesTheEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	RunHook(`printf %s "$EGRESSGW_IP" > `+out, []string{"EGRESSGW_IP=10.0.0.7"}, slog.New(slog.DiscardHandler))
	got, err := os.ReadFile(out)
	if err != nil || string(got) != "10.0.0.7" {
		t.Fatalf("hook wrote %q (%v), want 10.0.0.7", got, err)
	}
}
