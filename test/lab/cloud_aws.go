package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/egressgw/egressgw/test/ec2sim"
	"github.com/egressgw/egressgw/test/netlab"
	"github.com/egressgw/egressgw/test/vpccni"
)

// The lab's AWS account, as the manager's flags and the IAM policy of examples/aws name it.
const (
	ClusterName = "my-cluster"
	vpcID       = "vpc-0e000000000000001"
	subnetAID   = "subnet-0a000000000000001"
	subnetBID   = "subnet-0b000000000000002"
)

// SubnetA and SubnetB split the node subnet between the zones, as two AWS subnets would (an AWS subnet
// lives in one zone); GCP and Azure subnets span their region, and the lab uses the whole node subnet.
var (
	SubnetA = netip.MustParsePrefix("10.0.0.0/25")
	SubnetB = netip.MustParsePrefix("10.0.0.128/25")
)

// awsSpec is EKS: the AWS VPC CNI (its rules, its ipamd and plugin) with kube-proxy, egress IPs on
// dedicated ENIs the manager creates.
type awsSpec struct {
	cni vpcCNI
}

func (*awsSpec) zones() [2]string { return [2]string{"us-east-1a", "us-east-1b"} }
func (*awsSpec) region() string   { return "us-east-1" }
func (*awsSpec) profile() netlab.Profile {
	return netlab.Profile{CNI: netlab.AWSVPCCNI(netlab.AWSOptions{}), Proxy: netlab.KubeProxyIPTables}
}

// The VPC CNI hands pods secondary IPs of the node's ENI, which EC2 (the simulator's events) routes to
// the node one by one: no block for the lab to route.
func (*awsSpec) podBlocksByLab() bool { return false }
func (*awsSpec) conflist() string     { return "10-aws.conflist" }

// No bridge: the VPC CNI's plugin gives every pod its own eni<hash> veth (cniConf).
func (*awsSpec) bridge() string        { return "" }
func (*awsSpec) instance(i int) string { return fmt.Sprintf("i-0a0000000000000%02d", i) }

// primaryENI is node i's (1-based) primary network interface.
func primaryENI(i int) string { return fmt.Sprintf("eni-0a0000000000000%02d", i) }
func (s *awsSpec) providerID(i int) string {
	return fmt.Sprintf("aws:///%s/%s", s.zones()[zoneOf(i)], s.instance(i))
}

func (s *awsSpec) model(topo *netlab.Topology) ec2sim.Model {
	z := s.zones()
	m := ec2sim.Model{Region: s.region(), AccountID: "111122223333", Subnets: []ec2sim.SubnetSpec{
		{ID: subnetAID, VPC: vpcID, CIDR: SubnetA.String(), Zone: z[0]},
		{ID: subnetBID, VPC: vpcID, CIDR: SubnetB.String(), Zone: z[1]},
	}}
	for i, n := range topo.Nodes {
		subnet := subnetAID
		if zoneOf(i+1) == 1 {
			subnet = subnetBID
		}
		m.Instances = append(m.Instances, ec2sim.InstanceSpec{ID: s.instance(i + 1), Type: "m5.large",
			Tags: map[string]string{"Name": n.Name, "kubernetes.io/cluster/" + ClusterName: "owned"},
			Interfaces: []ec2sim.InterfaceSpec{{ID: primaryENI(i + 1), Subnet: subnet,
				IPs: []string{n.IP.String()}}}})
	}
	return m
}

// start runs the EC2 simulator enforcing the IAM policy of examples/aws for the manager and the VPC
// CNI's for the nodes, then the nodes' ipamds.
func (s *awsSpec) start(l *Lab, c *Cloud) error {
	policyData, err := os.ReadFile(filepath.Join(l.cfg.RepoRoot, "examples", "aws", "iam-policy.json"))
	if err != nil {
		return err
	}
	policy, err := ec2sim.ParsePolicy(policyData)
	if err != nil {
		return fmt.Errorf("examples/aws/iam-policy.json: %w", err)
	}
	log, err := l.simLog("ec2sim")
	if err != nil {
		return err
	}
	nodes, err := nodePolicies(len(l.Topo.Nodes))
	if err != nil {
		return err
	}
	s.cni = vpcCNI{ipamds: map[string]*vpccni.IPAMD{}}
	sim, err := ec2sim.New(s.model(l.Topo), ec2sim.Options{Policy: policy, Policies: nodes, Logger: log, OnCall: s.cni.record,
		OnChange: func(ev ec2sim.Event) {
			c.record(CloudEvent{IP: ev.IP, Instance: ev.Instance, NextHop: ev.NextHop}, func() error { return s.follow(c, ev) })
		}})
	if err != nil {
		return err
	}
	c.where = func(ip netip.Addr) (string, bool) { h, ok := sim.Where(ip); return h.Instance, ok && h.Instance != "" }
	c.holders = func(ip netip.Addr) int { return len(sim.HoldersOf(ip)) }
	if l.cfg.RealisticLatency {
		sim.SetLatency(200 * time.Millisecond)
	}
	if d := l.cfg.OperationLatency; d > 0 {
		sim.SetLatency(d)
	}
	if c.URL, err = l.serveLoopback(sim, nil); err != nil {
		return err
	}
	return s.startIPAMDs(l, c.URL)
}

// follow makes the fabric follow one EC2 change.
func (s *awsSpec) follow(c *Cloud, ev ec2sim.Event) error {
	switch {
	case ev.Attached && ev.IP == ev.NextHop:
		return s.attach(c, ev)
	case ev.Instance != "":
		return c.route(ev.IP, ev.NextHop)
	case ev.Interface != "" && c.enis[ev.Interface] != nil && ev.IP == c.enis[ev.Interface].IP:
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

// attach plugs a newly attached interface into its node as eth1, eth2, ...
func (s *awsSpec) attach(c *Cloud, ev ec2sim.Event) error {
	node := c.nodeOf(s, ev.Instance)
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

// chartValues: EKS with dedicated egress ENIs in the zones' subnets (docs/aws.md).
func (s *awsSpec) chartValues(*Lab) map[string]any {
	z := s.zones()
	return map[string]any{"cloud": "aws", "aws": map[string]any{"region": s.region(), "clusterName": ClusterName, "vpcID": vpcID,
		"egressSubnets": map[string]any{z[0]: subnetAID, z[1]: subnetBID}}}
}

func (s *awsSpec) managerEnv(l *Lab) []string {
	return []string{"AWS_ENDPOINT_URL_EC2=" + l.Cloud.URL,
		"AWS_ACCESS_KEY_ID=" + managerAccessKey, "AWS_SECRET_ACCESS_KEY=lab", "AWS_EC2_METADATA_DISABLED=true"}
}

// simLog is a JSON logger into logs/<name>.log.
func (l *Lab) simLog(name string) (*slog.Logger, error) {
	f, err := os.OpenFile(l.path("logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l.onClose(f.Close)
	return slog.New(slog.NewJSONHandler(f, nil)), nil
}
