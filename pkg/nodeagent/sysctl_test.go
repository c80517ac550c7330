package nodeagent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/egressgw/egressgw/test/netlab"
)

// The sysctl helper is this test binary started again (TestMain runs it instead of the tests) inside
// an emulated container: the agent's sysctl code alone, as its own process.
const (
	sysctlHelperEnv    = "EGRESSGW_SYSCTL_HELPER"
	sysctlHelperDirEnv = "EGRESSGW_SYSCTL_HELPER_DIR"
)

// containerScript emulates what a Kubernetes node does for the agent's container, in a private mount
// namespace: the kubelet's hostPath bind of /proc/sys/net (made before the runtime's own mounts), then
// runc's read-only /proc/sys (libcontainer readonlyPath: a bind onto itself, remounted read-only), then
// a capability bounding set that a uid-0 process's exec turns into its permitted and effective sets,
// with no_new_privs (allowPrivilegeEscalation: false). Arguments: the bind target, "ro" or "rw", the
// setpriv bounding set ("" for privileged: all capabilities), the command.
const containerScript = `set -eu
target=$1 ro=$2 caps=$3; shift 3
mkdir -p "$target"
mount --bind /proc/sys/net "$target"
if [ "$ro" = ro ]; then mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys; fi
if [ -z "$caps" ]; then exec "$@"; fi
exec setpriv --bounding-set="$caps" --inh-caps=-all --no-new-privs -- "$@"
`

// TestSysctlsInUnprivilegedContainer runs the agent's sysctl code as a uid-0 process with only
// NET_ADMIN and NET_RAW, in a network namespace that plays the node, where /proc/sys is read-only and
// the node's /proc/sys/net is bound at another path: through --proc-sys-dir the settings land in the
// node's kernel; through /proc/sys the write is refused, as it is in a real unprivileged container; a
// privileged one still writes /proc/sys; and without NET_ADMIN the forwarding setting is refused.
func TestSysctlsInUnprivilegedContainer(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"unshare", "setpriv", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux) to emulate a container: %v", tool, err)
		}
	}
	ctx := context.Background()
	node, err := netlab.NewNamespace(ctx, netlab.RandomPrefix()+"-sysctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	cfg := DefaultConfig()
	if err := node.NL.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: cfg.Device}, VxlanId: int(cfg.VNI), Port: int(cfg.Port)}); err != nil {
		t.Fatal(err)
	}
	hostProcSys := filepath.Join(t.TempDir(), "host", "proc", "sys")
	forwarding := "net/ipv4/ip_forward"
	rpFilter := "net/ipv4/conf/" + cfg.Device + "/rp_filter"
	netAdminRaw := "-all,+net_admin,+net_raw"
	for _, c := range []struct {
		name, dir, ro, caps string
		wantErr             string // empty: the settings must land
	}{
		{"unprivileged through the host's /proc/sys/net", hostProcSys, "ro", netAdminRaw, ""},
		{"unprivileged through its own read-only /proc/sys", DefaultProcSysDir, "ro", netAdminRaw, "read-only file system"},
		{"privileged through /proc/sys", DefaultProcSysDir, "rw", "", ""},
		{"without NET_ADMIN", hostProcSys, "ro", "-all,+net_raw", "needs CAP_NET_ADMIN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			setNodeSysctls(t, node, map[string]string{forwarding: "0", rpFilter: "0"})
			out, err := runSysctlHelper(ctx, node, filepath.Join(hostProcSys, "net"), c.dir, c.ro, c.caps)
			if c.caps == netAdminRaw && !strings.Contains(out, "CapEff:\t0000000000003000") {
				t.Errorf("the helper did not run with exactly NET_ADMIN and NET_RAW:\n%s", out)
			}
			got := nodeSysctls(t, node, forwarding, rpFilter)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(out, c.wantErr) {
					t.Errorf("want a failure saying %q; got %v:\n%s", c.wantErr, err, out)
				}
				if got[forwarding] != "0" {
					t.Errorf("%s = %s after a refused write, want 0", forwarding, got[forwarding])
				}
				return
			}
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			if got[forwarding] != "1" || got[rpFilter] != "2" {
				t.Errorf("the node's kernel has %v; want ip_forward 1 and rp_filter 2 on %s\n%s", got, cfg.Device, out)
			}
		})
	}
}

// runSysctlHelper starts the helper from a thread in the node's namespace, inside containerScript.
func runSysctlHelper(ctx context.Context, node *netlab.Namespace, bindTarget, dir, ro, caps string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c", containerScript,
		"container", bindTarget, ro, caps, self)
	cmd.Env = append(os.Environ(), sysctlHelperEnv+"=1", sysctlHelperDirEnv+"="+dir)
	var out []byte
	err = node.Do(func() (err error) { out, err = cmd.CombinedOutput(); return err })
	return string(out), err
}

// sysctlHelperMain is the helper's body: the datapath's ensureSysctls in the process's own network
// namespace (HostExec), as the agent runs it; it prints its capabilities and the outcome.
func sysctlHelperMain() int {
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "CapEff:") {
			fmt.Println(line)
		}
	}
	cfg := DefaultConfig()
	cfg.ProcSysDir = os.Getenv(sysctlHelperDirEnv)
	dp, err := New(cfg, nil, HostExec{}, nil)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	n, err := dp.ensureSysctls(context.Background(), nil)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Printf("wrote %d settings\n", n)
	return 0
}

func setNodeSysctls(t *testing.T, node *netlab.Namespace, values map[string]string) {
	t.Helper()
	if err := node.Do(func() error {
		for path, v := range values {
			if err := writeSysctl(filepath.Join(DefaultProcSysDir, path), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func nodeSysctls(t *testing.T, node *netlab.Namespace, paths ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := node.Do(func() error {
		for _, p := range paths {
			data, err := os.ReadFile(filepath.Join(DefaultProcSysDir, p))
			if err != nil {
				return err
			}
			got[p] = strings.TrimSpace(string(data))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}
