package cniplugin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// referencePluginsVersion is the containernetworking/plugins release the tests chain egressgw-cni behind.
const referencePluginsVersion = "v1.10.0"

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

// pluginBinaries builds, once per test binary, the reference bridge and host-local plugins from their Go
// module (with the module's own go.mod, as their release builds them) and egressgw-cni from this tree, and
// returns the directory holding them.
func pluginBinaries(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "egressgw-cni-bin-")
		if binErr != nil {
			return
		}
		binErr = buildPlugins(binDir)
	})
	if binErr != nil {
		t.Fatalf("building the CNI plugins: %v", binErr)
	}
	return binDir
}

func buildPlugins(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "go", "install",
		"github.com/containernetworking/plugins/plugins/main/bridge@"+referencePluginsVersion,
		"github.com/containernetworking/plugins/plugins/ipam/host-local@"+referencePluginsVersion)
	install.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("go install reference plugins: %v: %s", err, out)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, PluginType), "github.com/egressgw/egressgw/cmd/cni")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build egressgw-cni: %v: %s", err, out)
	}
	return nil
}
