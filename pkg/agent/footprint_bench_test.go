package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/agenthealth"
	"github.com/egressgw/egressgw/test/envtest"
	"github.com/egressgw/egressgw/test/netlab"
)

// BenchmarkAgentFootprint runs the real egressgw-agent binary on a source node (node1: its own 1% of the
// pods) and on a gateway node (node2: a gateway candidate that holds the egress IP, so it caches every
// pod and SNATs all of them) against a real API server with 2,000 and then 10,000 Pods of 100 nodes, all
// selected by one policy, and reports each process's resident memory once it is ready and idle, its
// CPU time to get there, and the per-pod slope between the two sizes (docs/agent.md extrapolates it to
// 50,000). Run it alone: go test -run '^$' -bench AgentFootprint -benchtime 1x ./pkg/agent/
func BenchmarkAgentFootprint(b *testing.B) {
	c := newCluster(b, 2, 0)
	c.createGateway("gw")
	c.placeIP("gw", "node2", egressgwv1.AssignmentAssigned)
	c.createPolicy("all", "gw", nil)
	c.policyStatus("all", "node2")
	bin := buildAgent(b)
	b.Setenv("KUBECONFIG", writeKubeconfig(b, c.env))
	const nodes = 100
	for i := 3; i <= nodes; i++ {
		c.create(fakeNode(i))
	}
	created := 0
	rss := map[string]map[int]float64{}
	for _, n := range c.topo.Nodes {
		proxyAPIServer(b, n.NS, c.env.Config.Host)
	}
	for _, total := range []int{2000, 10000} {
		createPods(b, c, created, total, nodes)
		created = total
		for _, n := range c.topo.Nodes {
			role := map[string]string{"node1": "source", "node2": "gateway"}[n.Name]
			r := runAgentProcess(b, bin, n)
			if rss[role] == nil {
				rss[role] = map[int]float64{}
			}
			rss[role][total] = r.rssMiB
			b.ReportMetric(r.rssMiB, fmt.Sprintf("%s-%dpods-RSS-MiB", role, total))
			b.Logf("%s node, %d pods in the API server: ready in %s, RSS %.1f MiB (peak %.1f), CPU %.2f s to ready, %.3f CPU-s per 10 s idle",
				role, total, r.ready, r.rssMiB, r.peakMiB, r.cpuToReady, r.cpuIdle)
		}
	}
	for role, m := range rss {
		perPod := (m[10000] - m[2000]) / 8000
		b.ReportMetric(m[10000]+perPod*40000, role+"-50kpods-RSS-MiB-extrapolated")
		b.Logf("%s: %.2f KiB per pod; extrapolated to 50,000 pods: %.0f MiB", role, perPod*1024, m[10000]+perPod*40000)
	}
	b.ReportMetric(0, "ns/op")
}

func fakeNode(i int) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fake%d", i)},
		Spec: corev1.NodeSpec{PodCIDRs: []string{fmt.Sprintf("10.245.%d.0/24", i)}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.0.1.%d", i)}}}}
}

// createPods creates pods from..to-1 spread over the nodes (pod k on node k%nodes), with their status,
// 16 writers at a time.
func createPods(b *testing.B, c *cluster, from, to, nodes int) {
	start := time.Now()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for k := from; k < to; k++ {
		g.Go(func() error {
			node, ip := podPlace(k, nodes)
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("p%05d", k),
				Labels: map[string]string{"app": "pay", "pod-template-hash": "5d8f7c9b4"}},
				Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.2.3"}}}}
			if err := c.env.Client.Create(ctx, pod); err != nil {
				return err
			}
			pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip.String(), PodIPs: []corev1.PodIP{{IP: ip.String()}}}
			return c.env.Client.Status().Update(ctx, pod)
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	b.Logf("created pods %d..%d in %s", from, to-1, time.Since(start))
}

// podPlace is the node and IP of pod k: node1 and node2 are the lab's, the rest fake.
func podPlace(k, nodes int) (string, netip.Addr) {
	n, i := k%nodes+1, k/nodes
	if n <= 2 {
		return fmt.Sprintf("node%d", n), netip.AddrFrom4([4]byte{10, 244, byte(n), byte(10 + i)})
	}
	return fmt.Sprintf("fake%d", n), netip.AddrFrom4([4]byte{10, 245, byte(n), byte(10 + i)})
}

type footprint struct {
	ready               time.Duration
	rssMiB, peakMiB     float64
	cpuToReady, cpuIdle float64
}

// runAgentProcess starts the agent binary in node's namespace, waits for /readyz, lets it idle 10 s,
// measures it and stops it with SIGTERM (the datapath stays; the next run restores it).
func runAgentProcess(b *testing.B, bin string, n *netlab.Node) footprint {
	start := time.Now()
	cmd := startAgentBinary(b, bin, n, []string{"run", "--node-name=" + n.Name, "--install-cni=false", "--log-level=warn",
		"--cluster-cidrs=" + strings.Join([]string{netlab.PodSupernet.String(), "10.245.0.0/16", netlab.ServiceCIDR.String(), netlab.VPCSubnet.String()}, ",")})
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	f := footprint{ready: time.Since(start), cpuToReady: cpuSeconds(b, cmd.Process.Pid)}
	time.Sleep(10 * time.Second)
	f.cpuIdle = cpuSeconds(b, cmd.Process.Pid) - f.cpuToReady
	f.rssMiB, f.peakMiB = procMemory(b, cmd.Process.Pid)
	return f
}

// startAgentBinary starts the agent in n's namespace and waits (up to 3 minutes) for /readyz on n's
// InternalIP, where the agent serves by default.
func startAgentBinary(tb testing.TB, bin string, n *netlab.Node, args []string) *exec.Cmd {
	tb.Helper()
	start := time.Now()
	cmd, err := n.NS.Start(bin, args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { // a failed test must not leave the agent watching the API server
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	readyz := fmt.Sprintf("http://%s:%d/readyz", n.IP, agenthealth.DefaultPort)
	for time.Since(start) < 3*time.Minute {
		if resp, err := n.NS.HTTPClient(time.Second).Get(readyz); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	tb.Fatalf("agent on %s not ready after 3 minutes", n.Name)
	return nil
}

func procMemory(b *testing.B, pid int) (rss, peak float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			kb, _ := strconv.ParseFloat(f[1], 64)
			if f[0] == "VmRSS:" {
				rss = kb / 1024
			} else {
				peak = kb / 1024
			}
		}
	}
	return rss, peak
}

// cpuSeconds is the user+system CPU time of pid (fields 14 and 15 of /proc/pid/stat, in clock ticks of
// 1/100 s on Linux).
func cpuSeconds(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	sy, _ := strconv.ParseFloat(f[12], 64)
	return (u + sy) / 100
}

var agentBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "egressgw-agent-bench-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "egressgw-agent")
	cmd := exec.Command("go", "build", "-o", out, "github.com/egressgw/egressgw/cmd/agent")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the agent: %v: %s", err, b)
	}
	return out, nil
})

func buildAgent(b testing.TB) string {
	bin, err := agentBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(bin)) })
	return bin
}

// writeKubeconfig writes the envtest API server's address and credentials as a kubeconfig file.
func writeKubeconfig(b testing.TB, env *envtest.Env) string {
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(b.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// proxyAPIServer makes the API server, which listens on the host's loopback, reachable at the same
// address from inside ns (whose loopback is its own). The server's certificate names that address, so
// TLS verifies as usual.
func proxyAPIServer(b testing.TB, ns *netlab.Namespace, host string) {
	u, err := url.Parse(host)
	if err != nil {
		b.Fatal(err)
	}
	l, err := ns.Forward(u.Host, u.Host)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
}
