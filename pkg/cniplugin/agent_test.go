package cniplugin

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/egressgw/egressgw/pkg/cnirpc"
	"github.com/egressgw/egressgw/pkg/cniserver"
	"github.com/egressgw/egressgw/pkg/cniserver/cniservertest"
)

// podCall is one call a testAgent received.
type podCall struct {
	op  string // add, del
	pod cnirpc.PodIdentity
	ips []netip.Addr
}

// testAgent is the agent's side for the tests: a Programmer that records what it was asked, answers with
// addErr, and takes addDelay (or until the plugin gives up) to program a pod.
type testAgent struct {
	mu       sync.Mutex
	calls    []podCall
	addErr   error
	addDelay time.Duration
}

func (a *testAgent) PodAdded(ctx context.Context, pod cnirpc.PodIdentity, ips []netip.Addr) error {
	if a.addDelay > 0 {
		select {
		case <-time.After(a.addDelay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.record(podCall{op: "add", pod: pod, ips: ips})
	return a.addErr
}

func (a *testAgent) PodDeleted(_ context.Context, pod cnirpc.PodIdentity, ips []netip.Addr) error {
	a.record(podCall{op: "del", pod: pod, ips: ips})
	return nil
}

func (a *testAgent) record(c podCall) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, c)
}

func (a *testAgent) recorded() []podCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]podCall(nil), a.calls...)
}

// serveAgent serves a on a socket in a temp dir until the test ends and returns the socket's path.
func serveAgent(t testing.TB, a cniserver.Programmer) string {
	t.Helper()
	srv, _ := cniservertest.Serve(t, cniserver.ServerConfig{}, a)
	return srv.SocketPath()
}

// listenUnixNoUnlink listens on path and leaves the socket file behind on Close.
func listenUnixNoUnlink(path string) (*net.UnixListener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	return l, nil
}
