package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/egressgw/egressgw/test/netlab"
)

// Clouds the lab can simulate.
const (
	AWS   = "aws"
	GCP   = "gcp"
	Azure = "azure"
)

// cloudSpec is what differs between the clouds the lab simulates: the simulator and its wiring to the
// fabric, the nodes' identities, the CNI the cloud's Kubernetes runs, and the manager's settings.
type cloudSpec interface {
	// zones are the two zones of the lab; node4 is in the second.
	zones() [2]string
	region() string
	// profile is the cloud's default CNI with its service proxy.
	profile() netlab.Profile
	// podBlocksByLab says the lab itself routes each node's pod block to it (the profile does not).
	podBlocksByLab() bool
	// conflist and bridge name the node's CNI configuration file and the bridge the pods hang on.
	conflist() string
	bridge() string
	// instance is node i's (1-based) instance as the simulator's events name it; providerID its Node's.
	instance(i int) string
	providerID(i int) string
	// start starts the simulator on the host's loopback and wires its changes to c.
	start(l *Lab, c *Cloud) error
	// chartValues are the lab's account and endpoints as chart values (over the cloud's example values);
	// managerEnv is what the cloud's workload identity (and the simulator's endpoint) adds to the
	// manager's environment.
	chartValues(l *Lab) map[string]any
	managerEnv(l *Lab) []string
}

func specOf(cloud string) (cloudSpec, error) {
	switch cloud {
	case "", AWS:
		return &awsSpec{}, nil
	case GCP:
		return gcpSpec{}, nil
	case Azure:
		return &azureSpec{}, nil
	}
	return nil, fmt.Errorf("lab: cloud %q: want aws, gcp or azure", cloud)
}

// Cloud is the simulator of the lab's cloud with the fabric wired to it: where the cloud says an IP
// lives, the fabric delivers it (and, on AWS, an interface the cloud attaches to an instance appears in
// the node's namespace with the cloud's MAC).
type Cloud struct {
	Name string
	// URL is where the simulator answers on the host's loopback; the managers reach it at the same address.
	URL  string
	topo *netlab.Topology
	log  func(string, ...any)
	// where says which instance holds an IP, as the simulator sees it; holders how many interfaces do.
	where   func(netip.Addr) (string, bool)
	holders func(netip.Addr) int

	mu     sync.Mutex
	enis   map[string]*netlab.ENI // AWS: by ENI ID
	events []CloudEvent
	errs   []error
}

// CloudEvent is a change of where an IP lives, with the time the simulator committed it: on Instance
// (reached at NextHop), or nowhere (Instance empty).
type CloudEvent struct {
	At       time.Time
	IP       netip.Addr
	Instance string
	NextHop  netip.Addr
}

func (l *Lab) startCloud(context.Context) error {
	c := &Cloud{Name: l.cfg.Cloud, topo: l.Topo, log: l.Printf, enis: map[string]*netlab.ENI{}}
	if err := l.spec.start(l, c); err != nil {
		return err
	}
	l.Cloud = c
	host := strings.TrimPrefix(strings.TrimPrefix(c.URL, "https://"), "http://")
	for _, n := range l.managerNodes() {
		if err := l.forward(n.NS, host, host); err != nil {
			return fmt.Errorf("the cloud's API in %s: %w", n.Name, err)
		}
	}
	return nil
}

// serveLoopback serves h on a free loopback port of the host until the lab closes, over TLS when cfg is
// set, and returns its URL.
func (l *Lab) serveLoopback(h http.Handler, cfg *tls.Config) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	scheme := "http://"
	if cfg != nil {
		ln, scheme = tls.NewListener(ln, cfg), "https://"
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	// Shutdown, not Close: Close returns while handlers still run, and a simulator's handler re-points the
	// fabric, whose namespaces the lab closes next.
	l.onClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return errors.Join(err, srv.Close())
		}
		return nil
	})
	return scheme + ln.Addr().String(), nil
}

// operationLatency is what the GCP and Azure simulators let the lab set about their operations.
type operationLatency interface {
	SetOperationLatency(time.Duration)
	SetOperationLatencyRange(lo, hi time.Duration)
}

// setOperationLatency makes sim's operations take [lo, hi] with Config.RealisticLatency, or the fixed
// Config.OperationLatency when set.
func (l *Lab) setOperationLatency(sim operationLatency, lo, hi time.Duration) {
	if l.cfg.RealisticLatency {
		sim.SetOperationLatencyRange(lo, hi)
	}
	if d := l.cfg.OperationLatency; d > 0 {
		sim.SetOperationLatency(d)
	}
}

// record keeps a change and makes the fabric follow it. It runs before the cloud reports the change as
// done, as the cloud's own network is programmed before its API says so.
func (c *Cloud) record(ev CloudEvent, follow func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev.At = time.Now()
	c.events = append(c.events, ev)
	if err := follow(); err != nil {
		c.errs = append(c.errs, err)
		c.log("cloud: %v", err)
	}
}

// route is the fabric following a move of ip to the host at nextHop, or out of the cloud (invalid).
func (c *Cloud) route(ip, nextHop netip.Addr) error {
	if !nextHop.IsValid() {
		return c.topo.Unroute(ip)
	}
	return c.topo.RouteToHost(ip, nextHop)
}

// Events returns the changes since the given time.
func (c *Cloud) Events(since time.Time) []CloudEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []CloudEvent
	for _, e := range c.events {
		if !e.At.Before(since) {
			out = append(out, e)
		}
	}
	return out
}

// Errors are the changes the fabric could not follow.
func (c *Cloud) Errors() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

// Where is the instance that holds ip, as the cloud sees it.
func (c *Cloud) Where(ip netip.Addr) (string, bool) { return c.where(ip) }

// Holders is how many network interfaces hold ip: more than one must never happen.
func (c *Cloud) Holders(ip netip.Addr) int { return c.holders(ip) }

// sameInstance compares instance names as the clouds do (Azure resource IDs are case-insensitive).
func sameInstance(a, b string) bool { return strings.EqualFold(a, b) }

func (c *Cloud) nodeOf(spec cloudSpec, instance string) *netlab.Node {
	for i, n := range c.topo.Nodes {
		if spec.instance(i+1) == instance {
			return n
		}
	}
	return nil
}
