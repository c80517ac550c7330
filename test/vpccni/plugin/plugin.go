// Package plugin is the lab's stand-in for the AWS VPC CNI's plugin (cmd/routed-eni-cni-plugin): its ADD
// asks the node's ipamd (test/vpccni) for an address of the ENIs' secondary IPs and wires the pod as the
// CNI's driver does (driver.go); its DEL gives the address back and removes the rules. The real plugin
// cannot run in the lab: it dials ipamd's gRPC service on the fixed socket /var/run/aws-node/ipamd.sock,
// and every lab node shares one file system, so this one takes the socket from its configuration
// ("ipamdSocket"). Branch ENIs (security groups for pods), multi-NIC pods, IPv6 and the network policy
// agent are left out.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/egressgw/egressgw/test/vpccni"
)

// Type is the plugin's "type" in the node's conflist and its binary's name, as on EKS.
const Type = "aws-cni"

// NetConf is the plugin's entry in 10-aws.conflist.
type NetConf struct {
	types.NetConf
	// VethPrefix names the host veths (default "eni", at most 4 characters); MTU the pod interface's
	// (default "9001", AWS_VPC_ENI_MTU).
	VethPrefix string `json:"vethPrefix"`
	MTU        string `json:"mtu"`
	// IPAMDSocket is the node's ipamd (this stand-in only: the real plugin's is fixed).
	IPAMDSocket string `json:"ipamdSocket"`
}

// k8sArgs are the CNI_ARGS the runtime passes.
type k8sArgs struct {
	types.CommonArgs
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive // the runtime's names
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive
	K8S_POD_UID                types.UnmarshallableString //nolint:revive
}

// Funcs are the plugin's commands for skel. CHECK does nothing: EKS's conflist sets disableCheck.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: add, Del: del, Check: func(*skel.CmdArgs) error { return nil }}
}

// SupportedVersions are those of the CNI's plugin.
var SupportedVersions = version.All

func load(args *skel.CmdArgs) (*NetConf, k8sArgs, error) {
	conf := &NetConf{VethPrefix: "eni", MTU: "9001"}
	var k k8sArgs
	if err := json.Unmarshal(args.StdinData, conf); err != nil {
		return nil, k, fmt.Errorf("aws-cni: loading the configuration: %w", err)
	}
	if len(conf.VethPrefix) > 4 {
		return nil, k, errors.New("aws-cni: vethPrefix can be at most 4 characters long")
	}
	if conf.IPAMDSocket == "" {
		return nil, k, errors.New("aws-cni: ipamdSocket is required (the node's ipamd socket)")
	}
	if err := types.LoadArgs(args.Args, &k); err != nil {
		return nil, k, fmt.Errorf("aws-cni: loading CNI_ARGS: %w", err)
	}
	return conf, k, nil
}

// podMTU is GetPodMTU: the configured MTU within [576, 9001], else 9001.
func podMTU(s string) int {
	if mtu, err := strconv.Atoi(s); err == nil && mtu >= 576 && mtu <= 9001 {
		return mtu
	}
	return 9001
}

// withConf runs a command with the loaded configuration and a context that bounds its calls to ipamd.
func withConf(args *skel.CmdArgs, cmd func(context.Context, *NetConf, k8sArgs) error) error {
	conf, k, err := load(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cmd(ctx, conf, k)
}

func add(args *skel.CmdArgs) error {
	return withConf(args, func(ctx context.Context, conf *NetConf, k k8sArgs) error { return addPod(ctx, args, conf, k) })
}

func addPod(ctx context.Context, args *skel.CmdArgs, conf *NetConf, k k8sArgs) error {
	r, err := vpccni.Call(ctx, conf.IPAMDSocket, "AddNetwork", vpccni.AddNetworkRequest{PodNamespace: string(k.K8S_POD_NAMESPACE),
		PodName: string(k.K8S_POD_NAME), ContainerID: args.ContainerID, IfName: args.IfName, NetworkName: conf.Name, Netns: args.Netns})
	if err != nil {
		return fmt.Errorf("add cmd: Error received from AddNetwork gRPC call: %w", err)
	}
	if !r.Success || len(r.IPAllocationMetadata) == 0 {
		return fmt.Errorf("add cmd: failed to assign an IP address to container: %s", r.Message)
	}
	a := r.IPAllocationMetadata[0]
	v := veth{host: HostVethName(conf.VethPrefix, string(k.K8S_POD_NAMESPACE), string(k.K8S_POD_NAME)), container: args.IfName,
		ip: a.IPv4Addr, routeTable: a.RouteTableID, mtu: podMTU(conf.MTU)}
	if err := setupPodNetwork(v, args.Netns); err != nil {
		_, _ = vpccni.Call(ctx, conf.IPAMDSocket, "DelNetwork", delRequest(conf, k, args, "SetupNSFailed"))
		return fmt.Errorf("add command: failed to setup network: %w", err)
	}
	return types.PrintResult(result(v, a, args.Netns, string(k.K8S_POD_NAMESPACE), string(k.K8S_POD_NAME)), conf.CNIVersion)
}

// result is the plugin's answer as the CNI builds it, oddities included: the host veth; the pod's
// interface with the route table in its "mac" field; the address pointing at that interface with no
// gateway; and a "dummy<hash>" interface whose "mac" is the VLAN (0) and whose "sandbox" is the ENI's
// device number, which the CNI reads back on DEL.
func result(v veth, a vpccni.IPAllocation, netnsPath, namespace, name string) *current.Result {
	podIf := 1
	return &current.Result{
		Interfaces: []*current.Interface{{Name: v.host}, {Name: v.container, Sandbox: netnsPath, Mac: strconv.Itoa(a.RouteTableID)},
			{Name: HostVethName("dummy", namespace, name), Mac: "0", Sandbox: strconv.Itoa(a.DeviceNumber)}},
		IPs: []*current.IPConfig{{Interface: &podIf, Address: *ipNet(a.IPv4Addr)}},
	}
}

func delRequest(conf *NetConf, k k8sArgs, args *skel.CmdArgs, reason string) vpccni.DelNetworkRequest {
	return vpccni.DelNetworkRequest{PodNamespace: string(k.K8S_POD_NAMESPACE), PodName: string(k.K8S_POD_NAME),
		ContainerID: args.ContainerID, IfName: args.IfName, NetworkName: conf.Name, Reason: reason}
}

func del(args *skel.CmdArgs) error {
	return withConf(args, func(ctx context.Context, conf *NetConf, k k8sArgs) error { return delPod(ctx, args, conf, k) })
}

func delPod(ctx context.Context, args *skel.CmdArgs, conf *NetConf, k k8sArgs) error {
	r, err := vpccni.Call(ctx, conf.IPAMDSocket, "DelNetwork", delRequest(conf, k, args, "PodDeleted"))
	if err != nil {
		return fmt.Errorf("del cmd: Error received from DelNetwork gRPC call: %w", err)
	}
	if !r.Success {
		if strings.Contains(r.Message, vpccni.ErrUnknownPod.Error()) {
			return nil // the CNI: "Container not found"
		}
		return fmt.Errorf("del cmd: failed to process delete request: %s", r.Message)
	}
	for _, a := range r.IPAllocationMetadata {
		if err := teardownPodNetwork(a.IPv4Addr, a.RouteTableID); err != nil {
			return fmt.Errorf("del cmd: failed on tear down pod network: %w", err)
		}
	}
	return nil
}
