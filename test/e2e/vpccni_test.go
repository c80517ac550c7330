package e2e_test

import (
	"context"
	"testing"
)

// TestVPCCNIKeepsOffTheEgressIPs runs after the failover trials and the pod starts, beside which every
// node's ipamd reconciled with EC2 every second and grew and shrank its pool: no egress IP (nor any
// address of an egressgw ENI) ever entered an ipamd's pool, no node role's call unassigned one, every
// running pod has the address ipamd gave it with the plugin's veth, route and rule, and the ipamds did
// hand out and give back addresses meanwhile.
func TestVPCCNIKeepsOffTheEgressIPs(t *testing.T) {
	l := needLab(t)
	for _, p := range l.VPCCNIProblems(context.Background()) {
		t.Error(p)
	}
	assigns, released := 0, 0
	for _, n := range l.Topo.Nodes {
		r := l.IPAMD(n.Name).Report()
		assigns, released = assigns+r.Assigns, released+len(r.Released)
	}
	if assigns < podStarts || released == 0 {
		t.Errorf("the ipamds handed out %d addresses (want >= %d pod starts) and released %d (want > 0)", assigns, podStarts, released)
	}
	t.Logf("the VPC CNI's ipamds: %s", l.IPAMDSummary())
}
