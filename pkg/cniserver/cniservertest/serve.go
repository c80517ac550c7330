// Package cniservertest runs a cniserver.Server for tests.
package cniservertest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/egressgw/egressgw/pkg/cniserver"
)

// Serve serves p until the test ends, on cfg.SocketPath or a socket in a temp dir, with logs discarded
// unless cfg.Logger is set. stop shuts the server down earlier and waits for it (calling it again does
// nothing).
func Serve(t testing.TB, cfg cniserver.ServerConfig, p cniserver.Programmer) (srv *cniserver.Server, stop func()) {
	t.Helper()
	if cfg.SocketPath == "" {
		cfg.SocketPath = filepath.Join(t.TempDir(), "egressgw", "cni.sock")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := cniserver.NewServer(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := srv.Start(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := wait(); err != nil {
				t.Errorf("cni server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}
