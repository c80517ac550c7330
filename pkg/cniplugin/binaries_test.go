package cniplugin

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/egressgw/egressgw/test/cnilab"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// pluginBinaries builds bridge, host-local and egressgw-cni once per test binary and returns their
// directory.
func pluginBinaries(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "egressgw-cni-bin-")
		if binErr == nil {
			binErr = cnilab.BuildPlugins(context.Background(), binDir)
		}
	})
	if binErr != nil {
		t.Fatalf("building the CNI plugins: %v", binErr)
	}
	return binDir
}
