package plugin_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/egressgw/egressgw/providers/aws"
	"github.com/egressgw/egressgw/test/cnilab"
	"github.com/egressgw/egressgw/test/ec2sim"
	"github.com/egressgw/egressgw/test/netlab"
	"github.com/egressgw/egressgw/test/vpccni"
	"github.com/egressgw/egressgw/test/vpccni/plugin"
)

// TestPodWiredAsTheVPCCNIWiresIt runs the plugin through libcni, as a runtime does on a node, against an
// ipamd whose pool came from the EC2 simulator: the pod gets a secondary IP of the node's ENI, the node an
// eni<hash> veth with the /32 route and the priority-512 rule, the pod its 169.254.1.1 gateway with a
// permanent ARP entry, and the result has the CNI's shape. DEL gives the address back and removes the rule.
func TestPodWiredAsTheVPCCNIWiresIt(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the plugin creates veths and rules in network namespaces")
	}
	ctx := t.Context()
	bin := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, plugin.Type), "../cmd/aws-cni")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build aws-cni: %v: %s", err, out)
	}
	d := startIPAMD(t, ctx)
	sock := filepath.Join(t.TempDir(), "ipamd.sock")
	must(t, d.Serve(ctx, sock))

	prefix := netlab.RandomPrefix()
	node := namespace(t, prefix+"-node")
	pod := namespace(t, prefix+"-pod")
	list, err := libcni.NetworkConfFromBytes([]byte(`{"cniVersion": "0.4.0", "name": "aws-cni", "disableCheck": true, "plugins": [
		{"name": "aws-cni", "type": "aws-cni", "vethPrefix": "eni", "mtu": "9001", "ipamdSocket": "` + sock + `"}]}`))
	must(t, err)
	cni := libcni.NewCNIConfigWithCacheDir([]string{bin}, t.TempDir(), &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}})
	rt := cnilab.PodRuntime("c0ffee", pod.Name, "payments", "pay-1", "uid-1")
	var raw []byte
	must(t, node.Do(func() error {
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err == nil {
			raw, err = json.Marshal(res)
		}
		return err
	}))
	ip, err := cnilab.FirstIP(raw)
	must(t, err)
	if got := d.Report().HandedOut[ip]; got != "payments/pay-1" {
		t.Fatalf("the pod got %s, which ipamd gave to %q", ip, got)
	}
	veth := plugin.HostVethName("eni", "payments", "pay-1")
	checkResult(t, raw, veth, pod.Name)
	expect(t, node, []string{"ip", "-4", "route", "show", ip.String()}, ip.String()+" dev "+veth+" scope link")
	expect(t, node, []string{"ip", "-4", "rule", "show", "priority", "512"}, "512:\tfrom all to "+ip.String()+" lookup main")
	expect(t, pod, []string{"ip", "-4", "route", "show"}, "default via 169.254.1.1 dev eth0", "169.254.1.1 dev eth0 scope link")
	expect(t, pod, []string{"ip", "-4", "addr", "show", "dev", "eth0"}, "inet "+ip.String()+"/32", "mtu 9001")
	expect(t, pod, []string{"ip", "neigh", "show", "169.254.1.1"}, "PERMANENT")

	must(t, node.Do(func() error { return cni.DelNetworkList(ctx, list, rt) }))
	out, err := node.Run(ctx, nil, "ip", "-4", "rule", "show", "priority", "512")
	must(t, err)
	if strings.Contains(string(out), ip.String()) {
		t.Errorf("rule 512 for %s left after DEL: %s", ip, out)
	}
	if r := d.DelNetwork(vpccni.DelNetworkRequest{NetworkName: "aws-cni", ContainerID: "c0ffee", IfName: "eth0"}); r.Success {
		t.Errorf("ipamd still held an address for the pod after DEL: %+v", r)
	}
}

// checkResult: the CNI's result, with its odd fields (the route table as the pod interface's MAC, the
// dummy interface whose sandbox is the ENI's device number).
func checkResult(t *testing.T, raw []byte, veth, podNS string) {
	t.Helper()
	var r struct {
		CNIVersion string `json:"cniVersion"`
		Interfaces []struct{ Name, Mac, Sandbox string }
		IPs        []struct {
			Version   string
			Interface *int
			Address   string
		}
	}
	must(t, json.Unmarshal(raw, &r))
	if r.CNIVersion != "0.4.0" || len(r.Interfaces) != 3 || len(r.IPs) != 1 || r.IPs[0].Interface == nil || *r.IPs[0].Interface != 1 {
		t.Fatalf("result: %s", raw)
	}
	want := []struct{ Name, Mac, Sandbox string }{{veth, "", ""}, {"eth0", "254", "/run/netns/" + podNS},
		{plugin.HostVethName("dummy", "payments", "pay-1"), "0", "0"}}
	for i, w := range want {
		if r.Interfaces[i] != w {
			t.Errorf("interface %d: %+v, want %+v", i, r.Interfaces[i], w)
		}
	}
}

func startIPAMD(t *testing.T, ctx context.Context) *vpccni.IPAMD {
	t.Helper()
	m := ec2sim.Model{Subnets: []ec2sim.SubnetSpec{{ID: "subnet-00000000000000001", VPC: "vpc-00000000000000001", CIDR: "10.0.1.0/24", Zone: "us-east-1a"}},
		Instances: []ec2sim.InstanceSpec{{ID: "i-00000000000000001", Type: "m5.large",
			Interfaces: []ec2sim.InterfaceSpec{{ID: "eni-00000000000000001", Subnet: "subnet-00000000000000001", IPs: []string{"10.0.1.11"}}}}}}
	sim, err := ec2sim.New(m, ec2sim.Options{})
	must(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := sdkaws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDNODE", "secret", "")}
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.BaseEndpoint = sdkaws.String(srv.URL)
		o.HTTPClient = aws.HTTPClient(o.HTTPClient)
	})
	d := vpccni.New(client, vpccni.Config{InstanceID: "i-00000000000000001", WarmIPTarget: 2, IPv4PerENI: 10})
	must(t, d.Reconcile(ctx))
	must(t, d.UpdatePool(ctx))
	return d
}

func namespace(t *testing.T, name string) *netlab.Namespace {
	t.Helper()
	ns, err := netlab.NewNamespace(t.Context(), name)
	must(t, err)
	t.Cleanup(func() { _ = ns.Close() })
	return ns
}

// expect runs a command in ns and fails unless its output holds every line fragment.
func expect(t *testing.T, ns *netlab.Namespace, cmd []string, fragments ...string) {
	t.Helper()
	out, err := ns.Run(t.Context(), nil, cmd[0], cmd[1:]...)
	must(t, err)
	for _, f := range fragments {
		if !strings.Contains(string(out), f) {
			t.Errorf("%s in %s: no %q in:\n%s", strings.Join(cmd, " "), ns.Name, f, out)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
