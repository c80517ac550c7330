package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// Veth connects two namespaces with a veth pair: aName in a, bName in b, both up. Either address may be
// the zero prefix (no address).
func Veth(a *Namespace, aName string, aAddr netip.Prefix, b *Namespace, bName string, bAddr netip.Prefix) error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(int(b.handle)),
	}
	if err := a.NL.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s/%s - %s/%s: %w", a.Name, aName, b.Name, bName, err)
	}
	if err := a.LinkUp(aName, aAddr); err != nil {
		return err
	}
	return b.LinkUp(bName, bAddr)
}

// LinkUp sets the link up and, when addr is valid, adds it.
func (ns *Namespace) LinkUp(name string, addr netip.Prefix) error {
	link, err := ns.NL.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: link %s: %w", ns.Name, name, err)
	}
	if addr.IsValid() {
		if err := ns.NL.AddrAdd(link, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
			return fmt.Errorf("%s: add %s to %s: %w", ns.Name, addr, name, err)
		}
	}
	return ns.NL.LinkSetUp(link)
}

// Route adds (or replaces) a route to dst: via gw when gw is valid, and/or out of dev when dev is set
// (dev alone makes a link-scope route).
func (ns *Namespace) Route(dst netip.Prefix, gw netip.Addr, dev string) error {
	r := &netlink.Route{Dst: ipNet(dst)}
	if gw.IsValid() {
		r.Gw = gw.AsSlice()
	}
	if dev != "" {
		link, err := ns.NL.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("%s: link %s: %w", ns.Name, dev, err)
		}
		r.LinkIndex = link.Attrs().Index
		if !gw.IsValid() {
			r.Scope = netlink.SCOPE_LINK
		}
	}
	if err := ns.NL.RouteReplace(r); err != nil {
		return fmt.Errorf("%s: route %s via %v dev %q: %w", ns.Name, dst, gw, dev, err)
	}
	return nil
}

// DeleteRoute removes the main-table route to dst if there is one.
func (ns *Namespace) DeleteRoute(dst netip.Prefix) error {
	routes, err := ns.NL.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: ipNet(dst)}, netlink.RT_FILTER_DST)
	if err != nil {
		return err
	}
	for i := range routes {
		if err := ns.NL.RouteDel(&routes[i]); err != nil {
			return fmt.Errorf("%s: delete route %s: %w", ns.Name, dst, err)
		}
	}
	return nil
}

// Sysctl sets kernel parameters inside the namespace, for example "net.ipv4.ip_forward=1".
func (ns *Namespace) Sysctl(settings ...string) error {
	return ns.Do(func() error {
		for _, s := range settings {
			if err := writeSysctl(s); err != nil {
				return err
			}
		}
		return nil
	})
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Forward listens on addr inside ns and copies every connection to target, dialled from the host's
// namespace: a service on the host's loopback (an API server) answers at the same address inside ns.
// Closing the listener stops it; connections in progress run to their end.
func (ns *Namespace) Forward(addr, target string) (net.Listener, error) {
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", addr, ns.Name, err)
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go splice(in, target)
		}
	}()
	return ln, nil
}

func splice(in net.Conn, target string) {
	defer in.Close()
	out, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
}

// HTTPClient is a client whose connections are dialled from inside ns (the transport dials on goroutines
// of its own, so the dial itself must enter the namespace), without keep-alive, each request bounded by
// timeout.
func (ns *Namespace) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			err = ns.Do(func() error {
				conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		}}}
}
