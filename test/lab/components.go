package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/agenthealth"
	"github.com/egressgw/egressgw/pkg/cniconf"
	"github.com/egressgw/egressgw/test/netlab"
)

func (l *Lab) nodeDir(n *netlab.Node, parts ...string) string {
	return l.path(append([]string{"nodes", n.Name}, parts...)...)
}

// prepareNodeCNI writes n's CNI configuration and plugins as the node image and the cloud's CNI leave them.
func (l *Lab) prepareNodeCNI(n *netlab.Node) error {
	confDir, binDir := l.nodeDir(n, "net.d"), l.nodeDir(n, "bin")
	for _, d := range []string{confDir, binDir, l.nodeDir(n, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	plugins, conf := []string{"bridge", "host-local"}, l.bridgeConf(n)
	if own, ok := l.spec.(ownCNI); ok {
		plugins, conf = own.cniPlugins(), own.cniConf(l, n)
	}
	for _, plugin := range plugins {
		data, err := os.ReadFile(filepath.Join(l.bins.cniDir, plugin))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(binDir, plugin), data, 0o755); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(confDir, l.spec.conflist()), append(data, '\n'), 0o644)
}

// ownCNI is a cloud whose CNI plugins the lab builds (AWS: the VPC CNI's), in place of the reference
// bridge and host-local.
type ownCNI interface {
	cniPlugins() []string
	cniConf(l *Lab, n *netlab.Node) map[string]any
}

// bridgeConf is the conflist a node has before egressgw (the agent chains egressgw-cni into it), with
// the reference bridge and host-local plugins.
func (l *Lab) bridgeConf(n *netlab.Node) map[string]any {
	first := n.PodCIDR.Addr().As4()
	first[3] = 10
	return map[string]any{"cniVersion": "1.0.0", "name": l.cfg.Cloud + "-pods", "plugins": []any{map[string]any{
		"type": "bridge", "bridge": l.spec.bridge(), "isGateway": true, "ipMasq": false,
		"ipam": map[string]any{"type": "host-local", "dataDir": l.nodeDir(n, "host-local"),
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
			"ranges": [][]map[string]string{{{"subnet": n.PodCIDR.String(), "rangeStart": fmt.Sprintf("%d.%d.%d.%d", first[0], first[1], first[2], first[3])}}}},
	}}}
}

func (l *Lab) startAgents(ctx context.Context) error {
	if err := l.recordFootprints(ctx); err != nil {
		return err
	}
	for _, n := range l.Topo.Nodes {
		if err := l.prepareNodeCNI(n); err != nil {
			return err
		}
		if err := l.reachAPIServer(n.NS); err != nil {
			return err
		}
		if err := l.startAgent(n); err != nil {
			return err
		}
	}
	for _, n := range l.Topo.Nodes {
		if err := l.waitAgentReady(ctx, n, 2*time.Minute); err != nil {
			return err
		}
	}
	l.onClose(l.stopAll)
	return nil
}

// startAgent runs the chart's agent container on n with a token of the agent's ServiceAccount.
func (l *Lab) startAgent(n *netlab.Node) error {
	kc, err := l.tokenKubeconfig(context.Background(), "agent-"+n.Name, agentWorkload)
	if err != nil {
		return err
	}
	bin, args, env, err := l.chartProcess("DaemonSet", agentWorkload, "agent", n, agentWorkload+"-"+n.Name)
	if err != nil {
		return err
	}
	_, err = l.startProcess("agent-"+n.Name, n.NS, append(env, "KUBECONFIG="+kc), bin, args...)
	return err
}

// waitAgentReady waits for n's agent to answer /readyz (its first full apply is done) and to have
// chained egressgw-cni into the node's conflist.
func (l *Lab) waitAgentReady(ctx context.Context, n *netlab.Node, limit time.Duration) error {
	url := fmt.Sprintf("http://%s:%d/readyz", n.IP, agenthealth.DefaultPort)
	conflist := filepath.Join(l.nodeDir(n, "net.d"), l.spec.conflist())
	var last string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p := l.procs["agent-"+n.Name]; p != nil && p.exited() {
			return fmt.Errorf("agent on %s exited (%v): see %s", n.Name, p.err, l.path("logs", "agent-"+n.Name+".log"))
		}
		status, body, err := httpGetIn(ctx, n.NS, url)
		data, _ := os.ReadFile(conflist)
		switch {
		case err != nil:
			last = err.Error()
		case status != http.StatusOK:
			last = fmt.Sprintf("%s answers %d: %s", url, status, body)
		case !strings.Contains(string(data), `"`+cniconf.PluginType+`"`):
			last = "egressgw-cni not chained in " + conflist + " yet"
		default:
			return nil
		}
	}
	return fmt.Errorf("agent on %s not ready after %s: %s", n.Name, limit, last)
}

// httpGetIn sends a GET from inside ns and returns the first 4 KiB of the answer.
func httpGetIn(ctx context.Context, ns *netlab.Namespace, url string) (int, string, error) {
	return httpGetInLimit(ctx, ns, url, 4096)
}

// httpGetInLimit sends a GET from inside ns and returns at most limit bytes of the answer.
func httpGetInLimit(ctx context.Context, ns *netlab.Namespace, url string, limit int64) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := ns.HTTPClient(2 * time.Second).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

func (l *Lab) startManagers(context.Context) error {
	for i := range l.managerNodes() {
		if err := l.StartManager(i + 1); err != nil {
			return err
		}
	}
	return nil
}

// StartManager starts manager replica i (1 or 2) on its node.
func (l *Lab) StartManager(i int) error {
	n := l.managerNodes()[i-1]
	name := fmt.Sprintf("manager-%d", i)
	kc, err := l.tokenKubeconfig(context.Background(), name, managerWorkload)
	if err != nil {
		return err
	}
	bin, args, env, err := l.chartProcess("Deployment", managerWorkload, "manager", n, fmt.Sprintf("%s-%d", managerWorkload, i))
	if err != nil {
		return err
	}
	env = append(append(env, "KUBECONFIG="+kc), l.spec.managerEnv(l)...)
	_, err = l.startProcess(name, n.NS, env, bin, args...)
	return err
}

// waitPlaced waits until every egress IP is Assigned to a gateway node; when it gives up, it names the
// first request the API server refused, the usual reason.
func (l *Lab) waitPlaced(ctx context.Context) error {
	err := l.waitAssigned(ctx)
	if lines, _ := l.Forbidden(); err != nil && len(lines) > 0 {
		err = fmt.Errorf("%w; the API server refused %d requests of the chart's ServiceAccounts, first: %s", err, len(lines), lines[0])
	}
	return err
}

func (l *Lab) waitAssigned(ctx context.Context) error {
	return l.WaitFor(ctx, 2*time.Minute, "every egress IP assigned", func() (bool, string) {
		var list egressgwv1.EgressGatewayList
		if err := l.Client.List(ctx, &list); err != nil {
			return false, err.Error()
		}
		var pending []string
		for _, g := range list.Items {
			for _, a := range g.Status.Assignments {
				if a.State != egressgwv1.AssignmentAssigned {
					pending = append(pending, fmt.Sprintf("%s %s: %s %s %s", g.Name, a.IP, a.State, a.Reason, a.Message))
				}
			}
			if len(g.Status.Assignments) < len(g.Spec.EgressIPs) {
				pending = append(pending, g.Name+": no assignment yet")
			}
		}
		return len(pending) == 0, strings.Join(pending, "; ")
	})
}

// WaitFor polls cond every 50 ms until it holds, for at most limit; the error carries cond's last word.
func (l *Lab) WaitFor(ctx context.Context, limit time.Duration, what string, cond func() (bool, string)) error {
	var last string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			return err
		}
		var ok bool
		if ok, last = cond(); ok {
			return nil
		}
	}
	return fmt.Errorf("%s: not after %s: %s", what, limit, last)
}

// RestartAgent stops n's agent with SIGTERM (which leaves the datapath in place), starts it again and
// waits until it is ready.
func (l *Lab) RestartAgent(ctx context.Context, name string) error {
	n := l.Node(name)
	if n == nil {
		return fmt.Errorf("no node %s", name)
	}
	if p := l.procs["agent-"+name]; p != nil {
		if err := p.stop(syscall.SIGTERM, 10*time.Second); err != nil {
			return err
		}
	}
	if err := l.startAgent(n); err != nil {
		return err
	}
	return l.waitAgentReady(ctx, n, time.Minute)
}

// Leader is the manager replica (1 or 2) that holds the leader election Lease, from the replicas' logs
// since their last start (the Lease names a host and a random suffix, the same host for both here).
func (l *Lab) Leader() (int, error) {
	for i := range l.managerNodes() {
		name := fmt.Sprintf("manager-%d", i+1)
		if p := l.procs[name]; p == nil || p.exited() {
			continue
		}
		data, err := os.ReadFile(l.path("logs", name+".log"))
		if err != nil {
			return 0, err
		}
		current := string(data)
		if k := strings.LastIndex(current, "\n---- "); k >= 0 {
			current = current[k:]
		}
		if strings.Contains(current, "Successfully acquired lease") {
			return i + 1, nil
		}
	}
	return 0, errors.New("no running manager replica has acquired the lease")
}

// KillManager kills replica i with SIGKILL, as a node or container crash does.
func (l *Lab) KillManager(i int) error {
	p := l.procs[fmt.Sprintf("manager-%d", i)]
	if p == nil {
		return fmt.Errorf("no manager-%d", i)
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	return nil
}

// Scrape returns the Prometheus metrics a running component serves: "manager-1", "manager-2" (on their
// nodes' loopback, where the chart's --metrics-bind-address puts them) or "agent-<node>" (on the node's
// address, the agent's health port).
func (l *Lab) Scrape(ctx context.Context, component string) (string, error) {
	var ns *netlab.Namespace
	var url string
	switch node, isAgent := strings.CutPrefix(component, "agent-"); {
	case isAgent:
		n := l.Node(node)
		if n == nil {
			return "", fmt.Errorf("no node %s", node)
		}
		ns, url = n.NS, fmt.Sprintf("http://%s:%d/metrics", n.IP, agenthealth.DefaultPort)
	default:
		var i int
		if _, err := fmt.Sscanf(component, "manager-%d", &i); err != nil || i < 1 || i > len(l.managerNodes()) {
			return "", fmt.Errorf("no component %s: want manager-1, manager-2 or agent-<node>", component)
		}
		ns, url = l.managerNodes()[i-1].NS, "http://127.0.0.1:8080/metrics"
	}
	status, body, err := httpGetInLimit(ctx, ns, url, 4<<20)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("%s answers %d", url, status)
	}
	return body, err
}
