package cniplugin

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

func TestChainedAddProgramsThePodAndReturnsTheBridgeResultUnchanged(t *testing.T) {
	agent := &testAgent{}
	lab := newChainLab(t, serveAgent(t, agent), "10s")
	podNS, rt := lab.pod("web")

	result, err := lab.add(rt)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	calls := agent.recorded() // the plugin returned: whatever the agent saw, it saw before ADD returned
	ip := podIPv4(t, podNS)
	if len(calls) != 1 || calls[0].op != "add" {
		t.Fatalf("agent calls = %+v, want one add", calls)
	}
	got := calls[0]
	if got.pod.Namespace != "shop" || got.pod.Name != "web" || got.pod.UID != "uid-web" || got.pod.ContainerID != rt.ContainerID {
		t.Fatalf("agent saw pod %+v", got.pod)
	}
	if len(got.ips) != 1 || got.ips[0] != ip || !netip.MustParsePrefix("10.250.7.0/24").Contains(ip) {
		t.Fatalf("agent saw IPs %v, the pod has %v", got.ips, ip)
	}
	bridgeOut := lab.Exec.LastOutput("bridge", "ADD")
	ourOut := lab.Exec.LastOutput(PluginType, "ADD")
	if !sameJSON(t, bridgeOut, ourOut) || !sameJSON(t, bridgeOut, result) {
		t.Fatalf("result changed:\nbridge:      %s\negressgw-cni: %s\nlibcni:      %s", bridgeOut, ourOut, result)
	}

	// DEL is idempotent: twice through the chain, and the address goes back to host-local.
	for i := range 2 {
		if err := lab.del(rt); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	dels := agent.recorded()[1:]
	if len(dels) != 2 || dels[0].op != "del" || dels[0].pod.ContainerID != rt.ContainerID || len(dels[0].ips) != 1 || dels[0].ips[0] != ip {
		t.Fatalf("agent calls after two DELs = %+v, want two dels, the first with the cached IP %s", dels, ip)
	}
	if res := lab.Reservations(); len(res) != 0 {
		t.Fatalf("host-local still holds %v after DEL", res)
	}
}

// TestChainedAddFailsWhileTheAgentCannotProgram: no socket, a stale socket, a slow agent and a refusing
// agent all fail the ADD with a message that says why; the runtime's cleanup DEL (containerd runs DEL of
// the whole list when ADD fails) then succeeds, and the pod is left with no interface and no address.
func TestChainedAddFailsWhileTheAgentCannotProgram(t *testing.T) {
	staleDir := t.TempDir()
	stale := filepath.Join(staleDir, "cni.sock")
	makeStaleSocket(t, stale)
	cases := []struct {
		name    string
		socket  func(t *testing.T) string
		timeout string
		want    []string
		minTime time.Duration
	}{
		{"no agent", func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent.sock") }, "10s",
			[]string{"not reachable", "no such file", "check the egressgw-agent pod"}, 0},
		{"stale socket", func(*testing.T) string { return stale }, "10s", []string{"not reachable", "connection refused"}, 0},
		{"slow agent", func(t *testing.T) string { return serveAgent(t, &testAgent{addDelay: time.Minute}) }, "1s",
			[]string{"did not answer within"}, time.Second},
		{"refusing agent", func(t *testing.T) string {
			return serveAgent(t, &testAgent{addErr: errors.New("policy shop/egress: no egress IP can be placed yet")})
		}, "10s", []string{"could not program pod shop/web", "policy shop/egress: no egress IP can be placed yet"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lab := newChainLab(t, tc.socket(t), tc.timeout)
			podNS, rt := lab.pod("web")
			start := time.Now()
			_, err := lab.add(rt)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("ADD succeeded without the agent programming the pod")
			}
			var cniErr *types.Error
			if !errors.As(err, &cniErr) || cniErr.Code != types.ErrTryAgainLater {
				t.Fatalf("ADD error %v, want CNI code %d (try again later)", err, types.ErrTryAgainLater)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("ADD error %q does not say %q", err, want)
				}
			}
			// A bound, not a performance target: the plugin waited its timeout and gave up soon after.
			if elapsed < tc.minTime || elapsed > tc.minTime+8*time.Second {
				t.Errorf("ADD failed after %v, want within [%v, %v]", elapsed, tc.minTime, tc.minTime+8*time.Second)
			}
			t.Logf("ADD failed after %v: %v", elapsed.Round(time.Millisecond), err)
			if !podIPv4(t, podNS).IsValid() {
				t.Fatal("the bridge ran before egressgw-cni, so eth0 should have its address until the cleanup DEL")
			}
			if err := lab.del(rt); err != nil {
				t.Fatalf("cleanup DEL after the failed ADD: %v", err)
			}
			if ip := podIPv4(t, podNS); ip.IsValid() {
				t.Fatalf("pod still has %v after the cleanup DEL", ip)
			}
			if res := lab.Reservations(); len(res) != 0 {
				t.Fatalf("host-local still holds %v after the cleanup DEL", res)
			}
		})
	}
}

func TestChainedAddPassesNonKubernetesSandboxesThrough(t *testing.T) {
	agent := &testAgent{}
	lab := newChainLab(t, serveAgent(t, agent), "10s")
	podNS, rt := lab.pod("plain")
	rt.Args = nil // not started by a kubelet: no K8S_POD_* keys
	result, err := lab.add(rt)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if !sameJSON(t, lab.Exec.LastOutput("bridge", "ADD"), result) || !podIPv4(t, podNS).IsValid() {
		t.Fatalf("result %s", result)
	}
	if err := lab.del(rt); err != nil {
		t.Fatal(err)
	}
	if calls := agent.recorded(); len(calls) != 0 {
		t.Fatalf("the agent was asked about a non-Kubernetes sandbox: %+v", calls)
	}
}

// makeStaleSocket leaves a socket file nobody listens on, as a crashed agent does.
func makeStaleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := listenUnixNoUnlink(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
}
