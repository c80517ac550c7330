package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/lab"
)

// TestVPCCNIKeepsOffTheEgressIPs runs after the failover trials and the pod starts, beside which every
// node's ipamd reconciled with EC2 every second and grew and shrank its pool. It makes ipamd work once
// more on a gateway node (pods started, then stopped: a surplus it gives back to EC2), then checks the
// whole run: no egress IP (nor any address of an egressgw ENI) ever entered an ipamd's pool, no node
// role's call unassigned one, and every running pod has the address ipamd gave it with the plugin's
// veth, route and rule.
func TestVPCCNIKeepsOffTheEgressIPs(t *testing.T) {
	l := needLab(t)
	ctx := context.Background()
	d := l.IPAMD("node1")
	if d == nil {
		t.Fatal("no ipamd beside node1")
	}
	before := d.Report()
	var pods []*lab.Pod
	sandboxes := 0
	for i := range 4 {
		p, err := l.StartPod(ctx, lab.PodSpec{Namespace: "payments", Name: fmt.Sprintf("ipamd-%d", i), Labels: map[string]string{"app": "pay"}, Node: "node1"})
		if err != nil {
			t.Fatal(err)
		}
		pods, sandboxes = append(pods, p), sandboxes+p.Sandboxes
	}
	for _, p := range pods {
		if err := l.StopPod(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	err := l.WaitFor(ctx, 20*time.Second, "ipamd on node1 to give its surplus back to EC2", func() (bool, string) {
		r := d.Report()
		return len(r.Released) > len(before.Released), fmt.Sprintf("%d released", len(r.Released))
	})
	if err != nil {
		t.Error(err)
	}
	if got := d.Report().Assigns - before.Assigns; got != len(pods) {
		t.Errorf("ipamd on node1 handed out %d addresses for %d pods", got, len(pods))
	}
	for _, p := range l.VPCCNIProblems(ctx) {
		t.Error(p)
	}
	t.Logf("4 pods started at once on node1 took %d sandboxes (an ADD fails while ipamd's pool is empty); the VPC CNI's ipamds: %s",
		sandboxes, l.IPAMDSummary())
}
