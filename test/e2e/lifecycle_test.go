package e2e_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/lab"
	"github.com/egressgw/egressgw/test/netlab"
)

// TestAgentRestartUnderTraffic restarts the agent of a source node (SIGTERM, then a new process) while a
// selected pod on it asks the firewall every 50 ms: no request may be seen with another source.
func TestAgentRestartUnderTraffic(t *testing.T) {
	l := needLab(t)
	ctx := context.Background()
	pr := lab.StartProber(ctx, l.PodByName("payments", "pay-node4"))
	time.Sleep(500 * time.Millisecond)
	began := time.Now()
	if err := l.RestartAgent(ctx, "node4"); err != nil {
		pr.Finish()
		t.Fatal(err)
	}
	restart := time.Since(began)
	time.Sleep(time.Second)
	attempts := pr.Finish()
	unanswered := onlyEgressIP(t, attempts, "while node4's agent restarted")
	t.Logf("node4's agent restarted in %s (stop to ready); %d of %d requests unanswered, longest gap %s",
		restart.Round(time.Millisecond), unanswered, len(attempts), lab.LongestGap(attempts))
}

// TestPolicyEditAndDelete edits payments' policy (its destinations) and deletes it: the firewall sees each
// change, and once the policy is gone no node's kernel keeps a trace of its pods. The policy is restored
// afterwards.
func TestPolicyEditAndDelete(t *testing.T) {
	l := needLab(t)
	ctx := context.Background()
	pod := l.PodByName("payments", "pay-node4")
	node4 := l.Node("node4").IP
	key := client.ObjectKey{Namespace: "payments", Name: "pay"}
	var original egressgwv1.EgressPolicy
	if err := l.Client.Get(ctx, key, &original); err != nil {
		t.Fatal(err)
	}
	expect := func(what string, dest, want netip.Addr) {
		t.Helper()
		if err := l.WaitFor(ctx, 10*time.Second, what, func() (bool, string) {
			got, err := pod.Ask(ctx, "tcp", dest, fmt.Sprintf("edit-%d", time.Now().UnixNano()), time.Second)
			return err == nil && got == want, fmt.Sprintf("the firewall saw %v (%v), want %s", got, err, want)
		}); err != nil {
			t.Error(err)
		}
	}
	edit := original.DeepCopy()
	edit.Spec.ExcludedCIDRs = nil
	edit.Spec.DestinationCIDRs = []string{netip.PrefixFrom(netlab.AltServerIP, 32).String()}
	if err := l.Client.Update(ctx, edit); err != nil {
		t.Fatal(err)
	}
	expect("the new destination through the gateway", netlab.AltServerIP, lab.PayIP)
	expect("the old destination with the node's address", netlab.ServerIP, node4)

	if err := l.Client.Delete(ctx, edit); err != nil {
		t.Fatal(err)
	}
	expect("no policy: the node's address", netlab.AltServerIP, node4)
	var payIPs []string
	for _, p := range l.Pods {
		if p.Namespace == "payments" && p.Labels["app"] == "pay" {
			payIPs = append(payIPs, p.IP.String())
		}
	}
	if err := l.WaitFor(ctx, 10*time.Second, "no trace of the policy's pods in any node's egressgw table", func() (bool, string) {
		for _, n := range l.Topo.Nodes {
			out, err := n.NS.Run(ctx, nil, "nft", "list", "table", "ip", "egressgw")
			if err != nil {
				return false, err.Error()
			}
			for _, ip := range payIPs {
				if strings.Contains(string(out), ip+",") || strings.Contains(string(out), ip+" ") || strings.Contains(string(out), ip+"\n") {
					return false, fmt.Sprintf("%s still names %s:\n%s", n.Name, ip, out)
				}
			}
		}
		return true, ""
	}); err != nil {
		t.Error(err)
	}

	restored := &egressgwv1.EgressPolicy{ObjectMeta: original.ObjectMeta, Spec: original.Spec}
	restored.ResourceVersion, restored.UID = "", ""
	if err := l.Client.Create(ctx, restored); err != nil {
		t.Fatal(err)
	}
	expect("the policy back", netlab.ServerIP, lab.PayIP)
}
