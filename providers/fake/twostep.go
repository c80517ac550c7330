package fake

import (
	"context"
	"net/netip"

	"github.com/egressgw/egressgw/providers"
)

// WithoutMover returns the same fake cloud as a Provider that is not a providers.Mover, like the GCP and
// Azure providers: the manager then moves an IP by Release on the old node and Assign on the new one.
// Calls, faults and delays are those of p.
func (p *Provider) WithoutMover() providers.Provider { return twoStep{p} }

// twoStep hides Move: a type assertion on it finds no Mover.
type twoStep struct{ p *Provider }

var _ providers.Provider = twoStep{}

func (t twoStep) DescribeNode(ctx context.Context, n providers.Node) (providers.NodeInfo, error) {
	return t.p.DescribeNode(ctx, n)
}

func (t twoStep) Assign(ctx context.Context, n providers.Node, a providers.Assignment) error {
	return t.p.Assign(ctx, n, a)
}

func (t twoStep) Release(ctx context.Context, n providers.Node, a providers.Assignment) error {
	return t.p.Release(ctx, n, a)
}

func (t twoStep) Locate(ctx context.Context, ips []netip.Addr) (map[netip.Addr]providers.Location, error) {
	return t.p.Locate(ctx, ips)
}

func (t twoStep) InstanceOf(providerID string) (string, error) { return t.p.InstanceOf(providerID) }

func (t twoStep) InstanceNode(instance string) (providers.Node, error) {
	return t.p.InstanceNode(instance)
}
