package lab

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/egressgw/egressgw/test/netlab"
)

// buildNetwork builds the VPC: the fabric router, the nodes with the AWS VPC CNI's and kube-proxy's
// rules, each node's pod block delivered to it by the fabric (as EC2 delivers a prefix delegated to the
// node's ENI), and the firewall outside the VPC, whose server records every request's source.
func (l *Lab) buildNetwork(ctx context.Context) error {
	topo, err := netlab.Build(ctx, netlab.Spec{
		Prefix:   l.cfg.Prefix,
		Nodes:    nodeCount,
		Profile:  l.spec.profile(),
		NodeAddr: nodeAddr,
	})
	if err != nil {
		return err
	}
	l.Topo = topo
	l.onClose(topo.Close)
	for _, n := range topo.Nodes {
		if !l.spec.podBlocksByLab() {
			break
		}
		if err := topo.RouteBlockToNode(n.PodCIDR, n); err != nil {
			return fmt.Errorf("route %s's pod block: %w", n.Name, err)
		}
	}
	if l.Echo, err = topo.StartEchoServer(ctx, l.bins.echo, l.path("logs")); err != nil {
		return err
	}
	l.onClose(l.Echo.Stop)
	return nil
}

// managerNodes are where the two manager replicas run: the ordinary nodes, one per zone, so that killing
// a gateway never kills the leader with it.
func (l *Lab) managerNodes() []*netlab.Node {
	var out []*netlab.Node
	for _, n := range l.Topo.Nodes {
		if !gatewayNodes[n.Name] {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the lab node called name (node1..node4), or nil.
func (l *Lab) Node(name string) *netlab.Node { return l.Topo.Node(name) }

// KillNode is a gateway's death as the rest of the cluster sees it: its agent is killed (SIGKILL) and
// every link of the instance is cut, and its kubelet stops renewing the node's Lease.
func (l *Lab) KillNode(name string) error {
	n := l.Node(name)
	if n == nil {
		return fmt.Errorf("no node %s", name)
	}
	if p := l.procs["agent-"+name]; p != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	l.kubelets.setAlive(name, false)
	return l.Topo.SetHostLinks(n, false)
}

// ReviveNode undoes KillNode: links up, the kubelet back, the agent restarted.
func (l *Lab) ReviveNode(ctx context.Context, name string) error {
	n := l.Node(name)
	if n == nil {
		return fmt.Errorf("no node %s", name)
	}
	if err := l.Topo.SetHostLinks(n, true); err != nil {
		return err
	}
	l.kubelets.setAlive(name, true)
	if err := l.startAgent(n); err != nil {
		return err
	}
	return l.waitAgentReady(ctx, n, 30*time.Second)
}
