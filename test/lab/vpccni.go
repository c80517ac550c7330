package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers/aws"
	"github.com/egressgw/egressgw/test/ec2sim"
	"github.com/egressgw/egressgw/test/netlab"
	"github.com/egressgw/egressgw/test/vpccni"
	"github.com/egressgw/egressgw/test/vpccni/plugin"
)

// The VPC CNI beside the lab's AWS nodes: one ipamd per node (test/vpccni) under the node role's
// credentials, against the same EC2 simulator as the manager, handing out the secondary IPs of the node's
// primary ENI to the pods through the aws-cni plugin, and growing and shrinking that pool during the tests.
//
// Its settings are those of a node that both asks EC2 for addresses and gives surplus back
// (WARM_IP_TARGET and MINIMUM_IP_TARGET set), with its intervals shortened from seconds and minutes to
// fractions of a second so that every test runs beside a reconcile, a grow and a shrink.
var ipamdConfig = vpccni.Config{
	WarmIPTarget: 2, MinimumIPTarget: 3,
	IPv4PerENI:   10, // m5.large
	PoolInterval: 200 * time.Millisecond, ReconcileInterval: time.Second, DecreaseInterval: time.Second,
	ReconcileCooldown: 2 * time.Second, IPCooldown: 500 * time.Millisecond,
}

// nodeAccessKey is the access key of node i's instance role, which the simulator's call log names.
func nodeAccessKey(i int) string { return fmt.Sprintf("AKIANODEROLE%08d", i) }

// managerAccessKey is the access key of the manager's role.
const managerAccessKey = "AKIALAB0000000000000"

// vpcCNI is the VPC CNI of the lab's nodes and the simulator's call log.
type vpcCNI struct {
	ipamds map[string]*vpccni.IPAMD // by node name
	mu     sync.Mutex
	calls  []ec2sim.Call
}

func (v *vpcCNI) record(c ec2sim.Call) {
	v.mu.Lock()
	v.calls = append(v.calls, c)
	v.mu.Unlock()
}

// nodePolicies gives every node's access key the VPC CNI's IAM policy.
func nodePolicies(nodes int) (map[string]*ec2sim.Policy, error) {
	p, err := ec2sim.ParsePolicy([]byte(vpccni.NodePolicy))
	if err != nil {
		return nil, fmt.Errorf("the VPC CNI's policy: %w", err)
	}
	out := map[string]*ec2sim.Policy{}
	for i := 1; i <= nodes; i++ {
		out[nodeAccessKey(i)] = p
	}
	return out, nil
}

// startIPAMDs runs one ipamd per node until the lab closes: a first reconcile and pool fill, as ipamd's
// nodeInit does before it answers the plugin, then its loop and the plugin's socket.
func (s *awsSpec) startIPAMDs(l *Lab, url string) error {
	ctx, cancel := context.WithCancel(context.Background())
	l.onClose(func() error { cancel(); return nil })
	for i, n := range l.Topo.Nodes {
		cfg := sdkaws.Config{Region: s.region(), Credentials: credentials.NewStaticCredentialsProvider(nodeAccessKey(i+1), "lab", "")}
		client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
			o.BaseEndpoint = sdkaws.String(url)
			o.HTTPClient = aws.HTTPClient(o.HTTPClient)
		})
		log, err := l.simLog("ipamd-" + n.Name)
		if err != nil {
			return err
		}
		c := ipamdConfig
		c.InstanceID, c.Logger = s.instance(i+1), log
		d := vpccni.New(client, c)
		if err := d.Reconcile(ctx); err != nil {
			return err
		}
		if err := d.UpdatePool(ctx); err != nil {
			return err
		}
		if err := os.MkdirAll(l.nodeDir(n, "run"), 0o755); err != nil {
			return err
		}
		if err := d.Serve(ctx, l.ipamdSocket(n)); err != nil {
			return err
		}
		go d.Run(ctx)
		s.cni.ipamds[n.Name] = d
	}
	return nil
}

func (l *Lab) ipamdSocket(n *netlab.Node) string { return l.nodeDir(n, "run", "ipamd.sock") }

// cniPlugins and cniConf are the node's CNI as EKS installs it: the VPC CNI's plugin in 10-aws.conflist
// (cniVersion 0.4.0, disableCheck), which egressgw's agent chains egressgw-cni into. Its MTU is the ENI's
// (the lab's links are 1500, EKS's 9001).
func (*awsSpec) cniPlugins() []string { return []string{plugin.Type} }

func (*awsSpec) cniConf(l *Lab, n *netlab.Node) map[string]any {
	return map[string]any{"cniVersion": "0.4.0", "name": "aws-cni", "disableCheck": true, "plugins": []any{map[string]any{
		"name": "aws-cni", "type": plugin.Type, "vethPrefix": "eni", "mtu": "1500", "ipamdSocket": l.ipamdSocket(n)}}}
}

// IPAMD is the VPC CNI's ipamd of a node of the AWS lab (nil on other clouds).
func (l *Lab) IPAMD(node string) *vpccni.IPAMD {
	if s, ok := l.spec.(*awsSpec); ok {
		return s.cni.ipamds[node]
	}
	return nil
}

// VPCCNIProblems lists, on AWS, what the VPC CNI did that egressgw must prevent or that a pod would
// notice: an egress IP (or an address of an egressgw ENI) in an ipamd's pool, ever; a call of a node's
// role that unassigned an egress IP or touched an egressgw ENI; a running pod whose address ipamd did
// not hand out to it, or whose node lacks the plugin's eni<hash> veth, /32 route or priority-512 rule.
func (l *Lab) VPCCNIProblems(ctx context.Context) []string {
	s, ok := l.spec.(*awsSpec)
	if !ok {
		return nil
	}
	egressIPs, err := l.egressIPs(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for name, d := range s.cni.ipamds {
		r := d.Report()
		for ip, eni := range r.EverPooled {
			if egressIPs[ip] || eni != r.PrimaryENI {
				out = append(out, fmt.Sprintf("ipamd on %s took %s of %s into its pod pool", name, ip, eni))
			}
		}
		for _, ip := range r.Released {
			if egressIPs[ip] {
				out = append(out, fmt.Sprintf("ipamd on %s released the egress IP %s", name, ip))
			}
		}
	}
	out = append(out, s.cni.nodeCallProblems(egressIPs)...)
	if s.cni.nodeCalls() == 0 {
		out = append(out, "the simulator recorded no call of a node's role: the ipamds did not run")
	}
	for _, p := range l.Pods {
		out = append(out, l.podPlumbingProblems(ctx, p)...)
	}
	return out
}

// egressIPs are the lab's egress IPs and every egress IP of a gateway in the API.
func (l *Lab) egressIPs(ctx context.Context) (map[netip.Addr]bool, error) {
	out := map[netip.Addr]bool{PayIP: true, ReportsIP: true}
	var list egressgwv1.EgressGatewayList
	if err := l.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	for _, g := range list.Items {
		for _, e := range g.Spec.EgressIPs {
			if ip, err := netip.ParseAddr(e.IP); err == nil {
				out[ip] = true
			}
		}
	}
	return out, nil
}

func (v *vpcCNI) nodeCalls() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, c := range v.calls {
		if strings.HasPrefix(c.AccessKey, "AKIANODEROLE") {
			n++
		}
	}
	return n
}

// nodeCallProblems: the node roles' writes that named an egress IP or an ENI other than the node's
// primary one.
func (v *vpcCNI) nodeCallProblems(egressIPs map[netip.Addr]bool) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	primaryOf := map[string]string{} // access key → its node's primary ENI
	for i := 1; i <= len(v.ipamds); i++ {
		primaryOf[nodeAccessKey(i)] = primaryENI(i)
	}
	var out []string
	for _, c := range v.calls {
		if !strings.HasPrefix(c.AccessKey, "AKIANODEROLE") || strings.HasPrefix(c.Action, "Describe") {
			continue
		}
		if eni := c.Params.Get("NetworkInterfaceId"); eni != primaryOf[c.AccessKey] {
			out = append(out, fmt.Sprintf("%s by %s on %s, not its node's primary ENI", c.Action, c.AccessKey, eni))
		}
		for key, vals := range c.Params {
			if !strings.HasPrefix(key, "PrivateIpAddress") {
				continue
			}
			for _, s := range vals {
				if ip, err := netip.ParseAddr(s); err == nil && egressIPs[ip] {
					out = append(out, fmt.Sprintf("%s by %s named the egress IP %s", c.Action, c.AccessKey, ip))
				}
			}
		}
	}
	return out
}

// podPlumbingProblems checks one running pod of the AWS lab against its node's ipamd and kernel.
func (l *Lab) podPlumbingProblems(ctx context.Context, p *Pod) []string {
	d := l.IPAMD(p.Node.Name)
	if d == nil {
		return nil
	}
	var out []string
	if got := d.Report().HandedOut[p.IP]; got != p.Namespace+"/"+p.Name {
		out = append(out, fmt.Sprintf("pod %s/%s has %s, which ipamd on %s last gave to %q", p.Namespace, p.Name, p.IP, p.Node.Name, got))
	}
	veth := plugin.HostVethName("eni", p.Namespace, p.Name)
	routes, err := p.Node.NS.Run(ctx, nil, "ip", "-4", "route", "show", p.IP.String()+"/32")
	if err != nil || !strings.Contains(string(routes), "dev "+veth+" scope link") {
		out = append(out, fmt.Sprintf("pod %s/%s: no route to %s on %s on %s: %q %v", p.Namespace, p.Name, p.IP, veth, p.Node.Name, routes, err))
	}
	rules, err := p.Node.NS.Run(ctx, nil, "ip", "-4", "rule", "show", "priority", "512")
	if err != nil || !slices.Contains(strings.Split(string(rules), "\n"), "512:\tfrom all to "+p.IP.String()+" lookup main") {
		out = append(out, fmt.Sprintf("pod %s/%s: no rule 512 to %s on %s: %q %v", p.Namespace, p.Name, p.IP, p.Node.Name, rules, err))
	}
	return out
}

// IPAMDSummary says what the nodes' ipamds did, for the lab's output and the tests' logs.
func (l *Lab) IPAMDSummary() string {
	s, ok := l.spec.(*awsSpec)
	if !ok {
		return ""
	}
	var parts []string
	for _, n := range l.Topo.Nodes {
		r := s.cni.ipamds[n.Name].Report()
		pool := 0
		for _, ips := range r.Pool {
			pool += len(ips)
		}
		parts = append(parts, fmt.Sprintf("%s: %d pooled ever, %d in pool, %d pod addresses handed out, %d released, %d reconciles, unmanaged %v",
			n.Name, len(r.EverPooled), pool, r.Assigns, len(r.Released), r.Reconciles, r.Unmanaged))
	}
	return strings.Join(parts, "; ")
}
