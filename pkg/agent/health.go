package agent

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vishvananda/netlink"

	"github.com/egressgw/egressgw/pkg/agenthealth"
	"github.com/egressgw/egressgw/pkg/nodeagent"
)

// health is what /healthz reports: whether this node can serve egress right now.
type health struct {
	mu      sync.Mutex
	ok      bool  // a sync has succeeded
	lastErr error // the last sync's error
	uplink  int   // ifindex of the uplink, 0 when unknown
	nodeIP  netip.Addr
}

func (h *health) applied(err error, uplink int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	if err == nil {
		h.ok = true
	}
	if uplink > 0 {
		h.uplink = uplink
	}
}

// check is the manager's probe (every 200 ms): cheap, one netlink read.
func (a *Agent) check() error {
	a.health.mu.Lock()
	ok, lastErr, uplink := a.health.ok, a.health.lastErr, a.health.uplink
	a.health.mu.Unlock()
	switch {
	case !ok && lastErr != nil:
		return fmt.Errorf("datapath not programmed yet: %w", lastErr)
	case !ok:
		return errors.New("datapath not programmed yet")
	case lastErr != nil:
		return fmt.Errorf("last datapath sync failed: %w", lastErr)
	}
	return a.uplinkUp(uplink)
}

func (a *Agent) uplinkUp(index int) error {
	if index == 0 || a.opts.Netlink == nil {
		return nil
	}
	link, err := a.opts.Netlink.LinkByIndex(index)
	if err != nil {
		return fmt.Errorf("uplink (ifindex %d) not found: %w", index, err)
	}
	attrs := link.Attrs()
	if attrs.Flags&net.FlagUp == 0 || attrs.OperState == netlink.OperDown || attrs.OperState == netlink.OperLowerLayerDown {
		return fmt.Errorf("uplink %s is down (%s)", attrs.Name, attrs.OperState)
	}
	return nil
}

// uplinkIndex finds the uplink the datapath uses (the configured one, or the interface holding the node
// IP other than the tunnel device) when the node IP is new; otherwise it keeps the known one.
func (a *Agent) uplinkIndex(d *nodeagent.Desired) int {
	if d == nil || a.opts.Netlink == nil {
		return 0
	}
	a.health.mu.Lock()
	known := a.health.nodeIP == d.NodeIP && a.health.uplink > 0
	a.health.nodeIP = d.NodeIP
	a.health.mu.Unlock()
	if known {
		return 0
	}
	nl := a.opts.Netlink
	if name := a.opts.DatapathConfig.Uplink; name != "" {
		if l, err := nl.LinkByName(name); err == nil {
			return l.Attrs().Index
		}
		return 0
	}
	addrs, err := nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 0
	}
	for _, ad := range addrs {
		ip, _ := netip.AddrFromSlice(ad.IP.To4())
		if ip != d.NodeIP {
			continue
		}
		if l, err := nl.LinkByIndex(ad.LinkIndex); err == nil && l.Attrs().Name != a.opts.DatapathConfig.Device {
			return ad.LinkIndex
		}
	}
	return 0
}

// Handler serves /healthz (the manager's probe and the kubelet's liveness: 503 while this node cannot
// serve egress), /readyz (200 once the first full apply is done) and /metrics.
func (a *Agent) Handler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(agenthealth.DefaultPath, agenthealth.Handler(a.check))
	mux.Handle("/readyz", agenthealth.Handler(func() error {
		select {
		case <-a.ready:
			return nil
		default:
			return errors.New("restoring the datapath: the first full apply has not finished")
		}
	}))
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc(PathAnnounce, a.serveAnnounce)
	return mux
}

// HealthAddress is where the agent serves by default: this node's InternalIP on the port the manager
// probes. It is known once the Node cache has synced.
func (a *Agent) HealthAddress() (string, error) {
	n := a.selfNode()
	if n == nil {
		return "", fmt.Errorf("node %q not found in the API server", a.opts.Node)
	}
	ip, ok := nodeInternalIPv4(n)
	if !ok {
		return "", fmt.Errorf("node %q has no IPv4 InternalIP", a.opts.Node)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(agenthealth.DefaultPort)), nil
}
