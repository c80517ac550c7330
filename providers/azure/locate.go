package azure

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/egressip"
	"github.com/egressgw/egressgw/providers/internal/lockedmap"
)

// Locate implements providers.Provider by listing the NICs of Options.ResourceGroups (or of the whole
// subscription) and reading the addresses of the public IPs associated with the wanted IPs.
func (p *Provider) Locate(ctx context.Context, ips []netip.Addr) (map[netip.Addr]providers.Location, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	wanted, err := egressip.Wanted(ips, "Azure")
	if err != nil {
		return nil, err
	}
	out := map[netip.Addr]providers.Location{}
	if len(wanted) == 0 {
		return out, nil
	}
	scopes := p.opts.ResourceGroups
	if len(scopes) == 0 {
		scopes = []string{""}
	}
	for _, rg := range scopes {
		if err := p.locateIn(ctx, rg, wanted, out); err != nil {
			return nil, err
		}
	}
	return out, p.fillPublicIPs(ctx, out)
}

// locateIn lists the NICs of one resource group ("" for the subscription) page by page.
func (p *Provider) locateIn(ctx context.Context, rg string, wanted map[netip.Addr]bool, out map[netip.Addr]providers.Location) error {
	pages := p.nicPages(rg)
	for pages.More() {
		page, err := call(ctx, p, false, "list network interfaces", func(ctx context.Context) ([]*armnetwork.Interface, error) {
			resp, err := pages.NextPage(ctx)
			return resp, err
		})
		if err != nil {
			return fmt.Errorf("locate IPs: %w", err)
		}
		for _, nic := range page {
			collect(nic, wanted, out)
		}
	}
	return nil
}

// nicPager pages through NIC lists of either scope.
type nicPager struct {
	More     func() bool
	NextPage func(context.Context) ([]*armnetwork.Interface, error)
}

func (p *Provider) nicPages(rg string) nicPager {
	if rg == "" {
		pg := p.nics.NewListAllPager(nil)
		return nicPager{More: pg.More, NextPage: nextPage(pg, func(r armnetwork.InterfacesClientListAllResponse) []*armnetwork.Interface { return r.Value })}
	}
	pg := p.nics.NewListPager(rg, nil)
	return nicPager{More: pg.More, NextPage: nextPage(pg, func(r armnetwork.InterfacesClientListResponse) []*armnetwork.Interface { return r.Value })}
}

func nextPage[T any](pg *runtime.Pager[T], value func(T) []*armnetwork.Interface) func(context.Context) ([]*armnetwork.Interface, error) {
	return func(ctx context.Context) ([]*armnetwork.Interface, error) {
		resp, err := pg.NextPage(ctx)
		return value(resp), err
	}
}

// collect records where the wanted addresses of nic are. Only an ip configuration egressgw made (named
// egressgw-..., never the NIC's primary) holds an egress IP; any other is reported with Location.InUse. An
// address seen on two NICs (two virtual networks that reuse a range, when the search is not limited to the
// cluster's resource groups) is reported alone as in use, naming both.
func collect(nic *armnetwork.Interface, wanted map[netip.Addr]bool, out map[netip.Addr]providers.Location) {
	if nic == nil {
		return
	}
	for _, c := range configs(*nic) {
		ip, err := netip.ParseAddr(deref(c.Properties.PrivateIPAddress))
		if err != nil || !wanted[ip] {
			continue
		}
		loc := providers.Location{IP: ip, Interface: canonical(deref(nic.ID)), Primary: isPrimary(c), PublicIPID: publicIPOf(c)}
		if vm := nic.Properties.VirtualMachine; vm != nil {
			loc.Instance = canonical(deref(vm.ID))
		}
		loc.InUse = notEgress(c, loc)
		prev, dup := out[ip]
		switch {
		case dup && prev.Interface == "":
			continue // ambiguous already
		case dup && prev.Interface != loc.Interface:
			loc = providers.Location{IP: ip, InUse: fmt.Sprintf("%s is on %s and on %s; egressgw cannot tell which is the cluster's: limit the provider to the cluster's resource groups (--azure-resource-group)",
				ip, prev.Interface, loc.Interface)}
		}
		out[ip] = loc
	}
}

// notEgress says why an ip configuration is not one egressgw made, or "" when it is.
func notEgress(c *armnetwork.InterfaceIPConfiguration, loc providers.Location) string {
	switch {
	case isPrimary(c):
		return fmt.Sprintf("%s is the primary address of NIC %s (ip configuration %s)", loc.IP, loc.Interface, deref(c.Name))
	case !ours(deref(c.Name)):
		return fmt.Sprintf("%s is held by ip configuration %s of NIC %s, which egressgw did not create (egressgw names its own %s<ip>)",
			loc.IP, deref(c.Name), loc.Interface, ipConfigPrefix)
	}
	return ""
}

// fillPublicIPs reads the addresses of the public IPs found (a static address never changes while it is
// allocated, so each is read once per provider).
func (p *Provider) fillPublicIPs(ctx context.Context, out map[netip.Addr]providers.Location) error {
	for ip, loc := range out {
		if loc.PublicIPID == "" {
			continue
		}
		addr, err := p.publicIPAddress(ctx, loc.PublicIPID)
		if err != nil {
			return fmt.Errorf("locate %s: %w", ip, err)
		}
		loc.PublicIP = addr
		out[ip] = loc
	}
	return nil
}

func (p *Provider) publicIPAddress(ctx context.Context, pipID string) (netip.Addr, error) {
	if a, ok := lockedmap.Get(&p.mu, p.pipAddrs, canonical(pipID)); ok {
		return netip.ParseAddr(a)
	}
	id, err := arm.ParseResourceID(pipID)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("public IP ID %q: %v: %w", pipID, err, providers.ErrPermanent)
	}
	resp, err := call(ctx, p, false, "get public IP address "+id.Name, func(ctx context.Context) (armnetwork.PublicIPAddressesClientGetResponse, error) {
		return p.pips.Get(ctx, id.ResourceGroupName, id.Name, nil)
	})
	if err != nil {
		return netip.Addr{}, err
	}
	var raw string
	if resp.Properties != nil {
		raw = deref(resp.Properties.IPAddress)
	}
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		return netip.Addr{}, nil // not allocated (yet): nothing to report
	}
	lockedmap.Put(&p.mu, p.pipAddrs, canonical(pipID), raw)
	return addr, nil
}
