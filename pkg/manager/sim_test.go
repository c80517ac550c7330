package manager_test

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/egressgw/egressgw/providers/aws"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// simNode is a gateway node of the simulated VPC: its name, its subnet (1: 10.0.1.0/24 in us-east-1a,
// 2: 10.0.2.0/24 in us-east-1b) and its instance type.
type simNode struct {
	name   string
	subnet int
	kind   string
}

// simVPC is the EC2 simulator serving a VPC with the given gateway nodes, and the real AWS provider
// pointed at it.
type simVPC struct {
	sim      *ec2sim.Server
	provider *aws.Provider
	nodes    []simNode
	url      string
}

var quiet = slog.New(slog.DiscardHandler)

// simCluster names the cluster in the tags of the gateways' dedicated interfaces.
const simCluster = "test-cluster"

func instanceID(i int) string { return fmt.Sprintf("i-%017x", i+1) }

func newSimVPC(t *testing.T, nodes []simNode, opts ec2sim.Options, tweaks ...func(*ec2sim.Model)) *simVPC {
	t.Helper()
	m := ec2sim.Model{Region: "us-east-1", Subnets: []ec2sim.SubnetSpec{
		{ID: "subnet-00000000000000001", VPC: "vpc-00000000000000001", CIDR: "10.0.1.0/24", Zone: "us-east-1a"},
		{ID: "subnet-00000000000000002", VPC: "vpc-00000000000000001", CIDR: "10.0.2.0/24", Zone: "us-east-1b"},
	}}
	for i, n := range nodes {
		m.Instances = append(m.Instances, ec2sim.InstanceSpec{ID: instanceID(i), Type: n.kind, Tags: map[string]string{"Name": n.name},
			Interfaces: []ec2sim.InterfaceSpec{{ID: fmt.Sprintf("eni-%017x", i+1), Subnet: fmt.Sprintf("subnet-%017d", n.subnet),
				IPs: []string{fmt.Sprintf("10.0.%d.%d", n.subnet, 10+i)}}}})
	}
	for _, tweak := range tweaks {
		tweak(&m)
	}
	return serveVPC(t, m, nodes, opts)
}

// serveVPC serves a model with the simulator and points the real AWS provider at it.
func serveVPC(t testing.TB, m ec2sim.Model, nodes []simNode, opts ec2sim.Options) *simVPC {
	t.Helper()
	sim, err := ec2sim.New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	v := &simVPC{sim: sim, nodes: nodes, url: srv.URL}
	v.provider = v.freshProvider(t)
	return v
}

// simConfig is the SDK configuration of the tests' clients of the simulator.
var simConfig = sdkaws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}

// freshProvider is another real AWS provider for the simulator, with empty caches, as a restarted
// manager has.
func (v *simVPC) freshProvider(t testing.TB) *aws.Provider {
	t.Helper()
	p, err := aws.NewFromConfig(simConfig, aws.Options{ClusterName: simCluster, Logger: quiet}, func(o *ec2.Options) { o.BaseEndpoint = sdkaws.String(v.url) })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// addNodes creates the Node objects of the VPC's gateway nodes, with providerIDs naming their instances.
func (c *cluster) addSimNodes(v *simVPC) {
	for i, n := range v.nodes {
		zone := map[int]string{1: "us-east-1a", 2: "us-east-1b"}[n.subnet]
		c.addNode(n.name, 10+i, fmt.Sprintf("aws:///%s/%s", zone, instanceID(i)), gatewayLabels)
	}
}

// holder returns the name of the node whose instance holds ip in the simulator, "" when none does.
func (v *simVPC) holder(ip string) string {
	h, ok := v.sim.Where(addr(ip))
	if !ok {
		return ""
	}
	for i, n := range v.nodes {
		if instanceID(i) == h.Instance {
			return n.name
		}
	}
	return "instance " + h.Instance
}
