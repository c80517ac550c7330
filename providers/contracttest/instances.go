package contracttest

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/egressgw/egressgw/providers"
)

// instance-names: InstanceOf names a node's instance as DescribeNode and Locate do; InstanceNode gives
// back a Node the provider acts on, through which an IP is released as from a VM whose Node object is
// gone; a providerID of another cloud is ErrUnsupportedNode.
func instanceNames(t *testing.T, e Env) {
	ip := e.FreeA[0]
	e.must(t, e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	info := e.describe(t, e.A1)
	instance, err := e.Provider.InstanceOf(e.A1.Node.ProviderID)
	e.must(t, err)
	if instance != info.Instance {
		t.Errorf("InstanceOf(%s) = %q, DescribeNode says instance %q", e.A1.Node.ProviderID, instance, info.Instance)
	}
	locs, err := e.Provider.Locate(ctxFor(t), []netip.Addr{ip})
	e.must(t, err)
	if got := locs[ip].Instance; got != instance {
		t.Errorf("Locate(%s) names instance %q, InstanceOf %q", ip, got, instance)
	}
	node, err := e.Provider.InstanceNode(instance)
	e.must(t, err)
	if back, err := e.Provider.InstanceOf(node.ProviderID); err != nil || back != instance {
		t.Errorf("InstanceOf(InstanceNode(%q).ProviderID %q) = %q, %v; want the instance back", instance, node.ProviderID, back, err)
	}
	e.must(t, e.Provider.Release(ctxFor(t), node, providers.Assignment{IP: ip}))
	e.wantOn(t, ip, nil)
	for _, id := range []string{"", "kind://docker/kind/kind-worker", "openstack:///8f6b0c2e-1d1a-4c55-9d0e-3b7f1f0c9a21"} {
		if _, err := e.Provider.InstanceOf(id); !errors.Is(err, providers.ErrUnsupportedNode) {
			t.Errorf("InstanceOf(%q): want ErrUnsupportedNode, got %v", id, err)
		}
	}
	if _, err := e.Provider.InstanceNode("not an instance"); !errors.Is(err, providers.ErrUnsupportedNode) {
		t.Errorf("InstanceNode(%q): want ErrUnsupportedNode, got %v", "not an instance", err)
	}
}
