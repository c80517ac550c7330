package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/pkg/cniconf"
	"github.com/egressgw/egressgw/test/helmchart"
	"github.com/egressgw/egressgw/test/netlab"
)

// TestUninstallHookWaitsForTheAgent runs the chart's uninstall hook container (its rendered command and
// args) from the agent image, chrooted into the image's filesystem, in a fresh network namespace that
// plays the node and a fresh PID namespace that plays the node's processes (the hook runs with hostPID;
// a private one keeps this machine's other egressgw-agent processes out of sight). A process named
// egressgw-agent runs there for 3 s: the hook must wait for it (and say so), then run
// `egressgw-agent uninstall`, which exits 0.
func TestUninstallHookWaitsForTheAgent(t *testing.T) {
	dir := imagesDir(t, "network and PID namespaces, chroot, mounting /proc")
	root := unpack(t, archive(t, dir, "egressgw-agent"))
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o555); err != nil {
		t.Fatal(err)
	}
	hook := hookCommand(t)
	// The node's CNI directories, as the hook's hostPath volumes bring them: egressgw-cni chained last
	// and its binary installed, as the agent left them.
	conflist := filepath.Join(root, "etc", "cni", "net.d", "10-pods.conflist")
	plugin := filepath.Join(root, "opt", "cni", "bin", cniconf.PluginType)
	writeFile0644(t, conflist, `{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"},{"type":"`+cniconf.PluginType+`"}]}`)
	writeFile0644(t, plugin, "plugin")
	ns, err := netlab.NewNamespace(context.Background(), netlab.RandomPrefix()+"hook")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	// The node's agent: the image's sleep under the agent's process name, gone after 3 s.
	fakeAgent := filepath.Join(t.TempDir(), "egressgw-agent")
	if out, err := exec.Command("cp", filepath.Join(root, "usr", "bin", "sleep"), fakeAgent).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	script := `mount -t proc proc "$1/proc" && { "$2" 3 & } && shift 2 && exec chroot "$root" "$@"`
	args := append([]string{"netns", "exec", ns.Name, "unshare", "--pid", "--fork", "--mount", "--propagation", "private",
		"sh", "-c", "root=$1; " + script, "hook", root, fakeAgent}, hook...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the hook failed after %v: %v\n%s", took, err, out)
	}
	if took < 3*time.Second || !strings.Contains(string(out), "waiting for the node's egressgw-agent to stop") {
		t.Errorf("the hook finished after %v without waiting for the node's agent (3 s):\n%s", took, out)
	}
	if !strings.Contains(string(out), "datapath removed") {
		t.Errorf("the hook's output does not show egressgw-agent uninstall:\n%s", out)
	}
	if data, err := os.ReadFile(conflist); err != nil || strings.Contains(string(data), cniconf.PluginType) {
		t.Errorf("the node's conflist still chains egressgw-cni after the hook (%v):\n%s", err, data)
	}
	if _, err := os.Stat(plugin); !os.IsNotExist(err) {
		t.Errorf("the plugin binary is still in the node's CNI bin directory (%v)", err)
	}
	t.Logf("the hook waited and uninstalled in %v", took.Round(100*time.Millisecond))
}

func writeFile0644(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hookCommand is the uninstall container's command line as the chart renders it by default.
func hookCommand(t *testing.T) []string {
	t.Helper()
	vals, err := helmchart.ParseSet("cloud=aws,aws.clusterName=prod")
	if err != nil {
		t.Fatal(err)
	}
	r, err := helmchart.Render(vals, helmchart.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.PodContainer("DaemonSet", "egressgw-uninstall", "uninstall")
	if err != nil {
		t.Fatal(err)
	}
	return helmchart.ContainerProcess(c, nil).Argv
}
