package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// TestIPTablesWrapperFollowsTheNode runs the agent image's iptables (the wrapper) chrooted into the
// image, inside fresh network namespaces that play nodes: one whose kubelet left its KUBE-IPTABLES-HINT
// chain in legacy iptables, one with the hint in nft. The wrapper must pick the node's backend, so a
// rule it adds is seen by that backend's own iptables on the host and not by the other.
func TestIPTablesWrapperFollowsTheNode(t *testing.T) {
	dir := imagesDir(t, "network namespaces and chroot")
	for _, backend := range []string{"legacy", "nft"} {
		t.Run(backend, func(t *testing.T) {
			root := unpack(t, archive(t, dir, "egressgw-agent"))
			ns, err := netlab.NewNamespace(context.Background(), netlab.RandomPrefix()+"ipt")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ns.Close() })
			host := func(tool string, args ...string) string {
				out, err := exec.Command("ip", append([]string{"netns", "exec", ns.Name, tool}, args...)...).CombinedOutput()
				if err != nil {
					t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
				}
				return string(out)
			}
			host("iptables-"+backend, "-t", "mangle", "-N", "KUBE-IPTABLES-HINT")
			out, err := exec.Command("ip", "netns", "exec", ns.Name, "chroot", root, "/usr/sbin/iptables",
				"-t", "filter", "-A", "INPUT", "-m", "comment", "--comment", "egressgw-wrapper-test", "-j", "ACCEPT").CombinedOutput()
			if err != nil {
				t.Fatalf("the image's iptables: %v\n%s", err, out)
			}
			other := map[string]string{"legacy": "nft", "nft": "legacy"}[backend]
			if got := host("iptables-"+backend+"-save", "-t", "filter"); !strings.Contains(got, "egressgw-wrapper-test") {
				t.Errorf("the rule is not in the node's %s tables:\n%s", backend, got)
			}
			if got := host("iptables-"+other+"-save", "-t", "filter"); strings.Contains(got, "egressgw-wrapper-test") {
				t.Errorf("the rule landed in %s tables, which this node does not use:\n%s", other, got)
			}
			mode, _ := os.ReadFile(filepath.Join(root, "run", "egressgw-iptables-mode"))
			if string(mode) != backend+"\n" {
				t.Errorf("recorded mode %q; want %s", mode, backend)
			}
		})
	}
}
