package agent_test

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/egressgw/egressgw/pkg/agent"
	"github.com/egressgw/egressgw/pkg/cniconf"
	"github.com/egressgw/egressgw/pkg/cnirpc"
)

// TestAgentBinaryLifecycle runs the real egressgw-agent in node1's namespace (node2, the gateway, runs
// an in-process agent): it chains egressgw-cni
// into the node's conflist and programs the datapath; SIGTERM leaves both in place; `uninstall` restores
// the conflist byte for byte, removes the plugin binary and leaves the kernel as it was before the agent.
func TestAgentBinaryLifecycle(t *testing.T) {
	c := newCluster(t, 2, 1)
	n1 := c.topo.Nodes[0]
	c.placedPolicy(c.topo.Nodes[1], true)
	c.setPodLabels(podName(n1, 0), map[string]string{"app": "pay"})
	bin := buildAgent(t)
	plugin := filepath.Join(filepath.Dir(bin), "egressgw-cni")
	if out, err := exec.Command("go", "build", "-o", plugin, "github.com/egressgw/egressgw/cmd/cni").CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v: %s", err, out)
	}
	t.Setenv("KUBECONFIG", writeKubeconfig(t, c.env))
	proxyAPIServer(t, n1.NS, c.env.Config.Host)
	dir := t.TempDir()
	confDir, binDir := filepath.Join(dir, "net.d"), filepath.Join(dir, "bin")
	conflist := filepath.Join(confDir, "10-node.conflist")
	original := []byte("{\n  \"cniVersion\": \"1.0.0\",\n  \"name\": \"node\",\n  \"plugins\": [\n    {\"type\": \"bridge\"}\n  ]\n}\n")
	for _, d := range []string{confDir, binDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(conflist, original, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh, err := c.topo.AddPod(context.Background(), n1) // started through CNI below
	if err != nil {
		t.Fatal(err)
	}
	before := dumps(t, n1.NS)
	args := []string{"--node-name=node1", "--log-level=warn", "--cni-conf-dir=" + confDir, "--cni-bin-dir=" + binDir,
		"--cni-plugin-binary=" + plugin, "--cni-socket=" + filepath.Join(dir, "cni.sock"),
		"--cluster-cidrs=10.244.0.0/16,10.96.0.0/16,10.0.0.0/24"}

	gw := c.startAgent(c.topo.Nodes[1]) // the gateway runs in-process
	<-gw.a.Ready()
	cmd := startAgentBinary(t, bin, n1, append([]string{"run"}, args...))
	c.expectSource(n1.Pods[0], server, egressIP, "the selected pod, programmed by the binary")
	c.eventually("egressgw-cni chained last", func() (bool, string) {
		data, _ := os.ReadFile(conflist)
		return strings.Contains(string(data), `"type":"`+cniconf.PluginType+`"`), string(data)
	})
	// A pod started through the binary's socket whose status the kubelet has not written: the agent keeps
	// it in its state file (the CNI socket's directory by default).
	obj := c.createPod("fresh", n1.Name, netip.Addr{}, map[string]string{"app": "pay"})
	id := cnirpc.PodIdentity{Namespace: namespace, Name: "fresh", UID: string(obj.UID), ContainerID: "sandbox-fresh"}
	if err := cnirpc.NewClient(filepath.Join(dir, "cni.sock")).Add(context.Background(), cnirpc.AddRequest{Pod: id, IPs: []netip.Addr{fresh.IP}}); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, agent.OverlayFileName)
	if data, err := os.ReadFile(state); err != nil || !strings.Contains(string(data), fresh.IP.String()) {
		t.Errorf("state file after ADD: %q (%v), want the pod's IP %s in it", data, err, fresh.IP)
	}
	running := dumps(t, n1.NS)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v", err)
	}
	for name, want := range running {
		if got := dumps(t, n1.NS)[name]; got != want {
			t.Errorf("SIGTERM changed %s:\n--- running\n%s\n--- after\n%s", name, want, got)
		}
	}
	c.expectSource(n1.Pods[0], server, egressIP, "the selected pod with no agent running")

	un := exec.Command(bin, append([]string{"uninstall"}, args...)...)
	var stderr bytes.Buffer
	un.Stderr = &stderr
	if err := n1.NS.Do(un.Run); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, stderr.String())
	}
	if data, _ := os.ReadFile(conflist); !bytes.Equal(data, original) {
		t.Errorf("conflist after uninstall:\n%s\nwant byte-identical:\n%s", data, original)
	}
	if _, err := os.Stat(filepath.Join(binDir, cniconf.PluginType)); !os.IsNotExist(err) {
		t.Errorf("plugin binary still in %s (%v)", binDir, err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file %s still there after uninstall (%v)", state, err)
	}
	if _, err := n1.NS.NL.LinkByName(c.cfg.Device); err == nil {
		t.Errorf("%s still exists after uninstall", c.cfg.Device)
	}
	after := dumps(t, n1.NS)
	// egressgw's own nftables table must be gone; the rest of the ruleset is iptables-nft's tables,
	// which iptables-save covers below.
	if strings.Contains(after["nft list ruleset"], "table ip egressgw") {
		t.Errorf("uninstall left egressgw's nftables table:\n%s", after["nft list ruleset"])
	}
	delete(before, "nft list ruleset")
	// A table egressgw used stays in the kernel, empty; only what is in the tables counts.
	before["iptables-save"], after["iptables-save"] = withoutEmptyTables(before["iptables-save"]), withoutEmptyTables(after["iptables-save"])
	for name, want := range before {
		if after[name] != want {
			t.Errorf("uninstall left %s different from before the agent:\n--- before\n%s\n--- after\n%s", name, want, after[name])
		}
	}
}

// withoutEmptyTables drops the tables of iptables-save output that hold no rule and no chain of their own.
func withoutEmptyTables(save string) string {
	var out, table []string
	empty := true
	for _, line := range strings.SplitAfter(save, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table, empty = []string{line}, true
		case strings.HasPrefix(line, "COMMIT"):
			if !empty {
				out = append(append(out, table...), line)
			}
			table = nil
		case table != nil:
			table = append(table, line)
			if strings.HasPrefix(line, "-A ") || (strings.HasPrefix(line, ":") && strings.Contains(line, " - [")) {
				empty = false
			}
		default:
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
