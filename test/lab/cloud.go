package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/egressgw/egressgw/test/ec2sim"
	"github.com/egressgw/egressgw/test/netlab"
)

// The lab's AWS account, as the manager's flags and the IAM policy of examples/aws name it.
const (
	Region      = "us-east-1"
	ClusterName = "my-cluster"
	vpcID       = "vpc-0e000000000000001"
	subnetAID   = "subnet-0a000000000000001"
	subnetBID   = "subnet-0b000000000000002"
	// ec2Listen is where the EC2 API answers inside the managers' namespaces.
	ec2Listen = "127.0.0.1:8995"
)

// instanceID is node i's EC2 instance.
func instanceID(i int) string { return fmt.Sprintf("i-0a0000000000000%02d", i) }

// Cloud is the EC2 simulator with the fabric wired to it: where EC2 says an IP lives, the fabric delivers
// it, and an interface EC2 attaches to an instance appears in the node's namespace with its MAC.
type Cloud struct {
	Sim  *ec2sim.Server
	topo *netlab.Topology
	log  func(string, ...any)

	mu     sync.Mutex
	enis   map[string]*netlab.ENI // by ENI ID
	events []CloudEvent
	errs   []error
}

// CloudEvent is a change of where an IP lives, with the time the simulator committed it.
type CloudEvent struct {
	At time.Time
	ec2sim.Event
}

func (l *Lab) vpcModel() ec2sim.Model {
	m := ec2sim.Model{Region: Region, AccountID: "111122223333", Subnets: []ec2sim.SubnetSpec{
		{ID: subnetAID, VPC: vpcID, CIDR: SubnetA.String(), Zone: ZoneA},
		{ID: subnetBID, VPC: vpcID, CIDR: SubnetB.String(), Zone: ZoneB},
	}}
	for i, n := range l.Topo.Nodes {
		subnet := subnetAID
		if nodeZones[i] == ZoneB {
			subnet = subnetBID
		}
		m.Instances = append(m.Instances, ec2sim.InstanceSpec{ID: instanceID(i + 1), Type: "m5.large",
			Tags: map[string]string{"Name": n.Name, "kubernetes.io/cluster/" + ClusterName: "owned"},
			Interfaces: []ec2sim.InterfaceSpec{{ID: fmt.Sprintf("eni-0a0000000000000%02d", i+1), Subnet: subnet,
				IPs: []string{n.IP.String()}}}})
	}
	return m
}

// startCloud starts the simulator enforcing the IAM policy of examples/aws, and serves it inside the
// namespaces of the nodes that run a manager.
func (l *Lab) startCloud(context.Context) error {
	policyData, err := os.ReadFile(filepath.Join(l.cfg.RepoRoot, "examples", "aws", "iam-policy.json"))
	if err != nil {
		return err
	}
	policy, err := ec2sim.ParsePolicy(policyData)
	if err != nil {
		return fmt.Errorf("examples/aws/iam-policy.json: %w", err)
	}
	logFile, err := os.OpenFile(l.path("logs", "ec2sim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	l.onClose(logFile.Close)
	c := &Cloud{topo: l.Topo, log: l.Printf, enis: map[string]*netlab.ENI{}}
	c.Sim, err = ec2sim.New(l.vpcModel(), ec2sim.Options{Policy: policy, OnChange: c.onChange,
		Logger: slog.New(slog.NewJSONHandler(logFile, nil))})
	if err != nil {
		return err
	}
	l.Cloud = c
	for _, n := range l.managerNodes() {
		var ln net.Listener
		if err := n.NS.Do(func() (err error) { ln, err = net.Listen("tcp", ec2Listen); return err }); err != nil {
			return fmt.Errorf("EC2 API in %s: %w", n.Name, err)
		}
		srv := &http.Server{Handler: c.Sim, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		l.onClose(srv.Close)
	}
	return nil
}

// onChange follows one committed change in the fabric. It runs before EC2 answers the call that made
// it, as the cloud's own network is programmed before the API reports success.
func (c *Cloud) onChange(ev ec2sim.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, CloudEvent{At: time.Now(), Event: ev})
	if err := c.follow(ev); err != nil {
		c.errs = append(c.errs, err)
		c.log("cloud: %v", err)
	}
}

func (c *Cloud) follow(ev ec2sim.Event) error {
	switch {
	case ev.Attached && ev.IP == ev.NextHop:
		return c.attach(ev)
	case ev.Instance != "":
		return c.topo.RouteToHost(ev.IP, ev.NextHop)
	case ev.Interface != "" && ev.IP == c.primaryOf(ev.Interface):
		// Detached: the interface leaves the instance with its addresses.
		e := c.enis[ev.Interface]
		delete(c.enis, ev.Interface)
		return c.topo.DetachENI(e)
	case ev.Interface != "":
		return nil // a secondary address leaving with its detached interface
	default:
		return c.topo.Unroute(ev.IP)
	}
}

func (c *Cloud) primaryOf(eni string) netip.Addr {
	if e := c.enis[eni]; e != nil {
		return e.IP
	}
	return netip.Addr{}
}

// attach plugs a newly attached interface into its node as eth1, eth2, ...
func (c *Cloud) attach(ev ec2sim.Event) error {
	node := c.nodeOf(ev.Instance)
	if node == nil {
		return fmt.Errorf("interface %s attached to %s, which is no lab node", ev.Interface, ev.Instance)
	}
	mac, err := net.ParseMAC(ev.MAC)
	if err != nil {
		return fmt.Errorf("interface %s: MAC %q: %w", ev.Interface, ev.MAC, err)
	}
	dev := 1
	for _, e := range c.enis {
		if e.Node == node {
			dev++
		}
	}
	e, err := c.topo.AttachENI(context.Background(), node, fmt.Sprintf("eth%d", dev), ev.IP, mac)
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", ev.Interface, node.Name, err)
	}
	c.enis[ev.Interface] = e
	c.log("cloud: %s attached to %s as %s (%s, %s)", ev.Interface, node.Name, e.Name, ev.IP, ev.MAC)
	return nil
}

func (c *Cloud) nodeOf(instance string) *netlab.Node {
	for i, n := range c.topo.Nodes {
		if instanceID(i+1) == instance {
			return n
		}
	}
	return nil
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
