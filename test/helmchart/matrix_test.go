package helmchart

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// valueCase is one install a user could make: --set values and what the rendered chart must then say.
type valueCase struct {
	name string
	sets []string
	// managerArgs and agentArgs must appear among the containers' args.
	managerArgs, agentArgs []string
	check                  func(t *testing.T, r *Rendered)
}

// everything turns on the optional objects, so that every case renders all of them.
const everything = "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,metrics.grafanaDashboard.enabled=true"

var matrix = []valueCase{
	{
		name: "aws dedicated ENI, private IPs, IRSA",
		sets: []string{"cloud=aws,aws.clusterName=prod,aws.region=eu-west-1,aws.vpcID=vpc-0abc", everything,
			"identity.awsRoleARN=arn:aws:iam::123456789012:role/egressgw-manager", "agent.clusterCIDRs={10.0.0.0/16,172.20.0.0/16}"},
		managerArgs: []string{"--cloud=aws", "--aws-egress-interface=dedicated", "--aws-cluster-name=prod", "--aws-vpc-id=vpc-0abc"},
		agentArgs:   []string{"--cluster-cidrs=10.0.0.0/16,172.20.0.0/16", "--cni-bin-dir=/opt/cni/bin", "--cni-conf-dir=/etc/cni/net.d"},
		check: func(t *testing.T, r *Rendered) {
			wantAnnotation(t, r, "ServiceAccount", "egressgw-manager", "eks.amazonaws.com/role-arn", "arn:aws:iam::123456789012:role/egressgw-manager")
			wantEnv(t, managerContainer(t, r), "AWS_REGION", "eu-west-1")
		},
	},
	{
		name: "aws public IPs: egress ENIs in public subnets, EKS Pod Identity",
		sets: []string{"cloud=aws,aws.clusterName=prod,aws.egressSubnets.us-east-1a=subnet-0a1,aws.egressSubnets.us-east-1b=subnet-0b2",
			"aws.securityGroups={sg-0123,sg-0456}", everything},
		managerArgs: []string{"--aws-egress-subnet=us-east-1a=subnet-0a1", "--aws-egress-subnet=us-east-1b=subnet-0b2", "--aws-security-groups=sg-0123,sg-0456"},
	},
	{
		name:        "aws dedicated ENI in the subnet selected by tag",
		sets:        []string{"cloud=aws,aws.clusterName=prod,aws.egressSubnetTags.egressgw\\.io/egress-subnet=true"},
		managerArgs: []string{"--aws-egress-subnet-tag=egressgw.io/egress-subnet=true"},
	},
	{
		name:        "aws primary ENI (no VPC CNI)",
		sets:        []string{"cloud=aws,aws.egressInterface=primary"},
		managerArgs: []string{"--aws-egress-interface=primary"},
	},
	{
		name: "gcp with workload identity through a Google service account, custom ports and marks",
		sets: []string{"cloud=gcp,gcp.project=acme-prod,gcp.network=vpc-main", everything,
			"identity.gcpServiceAccount=egressgw@acme-prod.iam.gserviceaccount.com",
			"agent.vxlan.port=4900,agent.vxlan.vni=100,agent.vxlan.mtu=1410,agent.healthPort=9570,manager.metricsPort=9090,manager.healthPort=9091",
			"agent.marks.steerMask=0x3000,agent.marks.replyMark=0x1"},
		managerArgs: []string{"--cloud=gcp", "--gcp-project=acme-prod", "--gcp-network=vpc-main", "--agent-health-port=9570", "--metrics-bind-address=:9090", "--health-probe-bind-address=:9091"},
		agentArgs: []string{"--cni-bin-dir=/home/kubernetes/bin", "--vxlan-port=4900", "--vni=100", "--tunnel-mtu=1410",
			"--health-bind-address=$(HOST_IP):9570", "--steer-mask=0x3000", "--reply-mark=0x1"},
		check: func(t *testing.T, r *Rendered) {
			wantAnnotation(t, r, "ServiceAccount", "egressgw-manager", "iam.gke.io/gcp-service-account", "egressgw@acme-prod.iam.gserviceaccount.com")
			wantHostPath(t, r, "egressgw-agent", "/home/kubernetes/bin")
			wantHostPath(t, r, "egressgw-uninstall", "/home/kubernetes/bin")
		},
	},
	{
		name: "azure with workload identity, public IPs from the node resource group",
		sets: []string{"cloud=azure,azure.subscription=00000000-0000-4000-8000-0000000000aa,azure.resourceGroups={MC_rg_aks_westeurope}", everything,
			"identity.azureClientID=11111111-2222-4333-8444-555555555555"},
		managerArgs: []string{"--cloud=azure", "--azure-subscription=00000000-0000-4000-8000-0000000000aa", "--azure-resource-group=MC_rg_aks_westeurope", "--azure-cloud=public"},
		check: func(t *testing.T, r *Rendered) {
			wantAnnotation(t, r, "ServiceAccount", "egressgw-manager", "azure.workload.identity/client-id", "11111111-2222-4333-8444-555555555555")
			d, err := r.Deployment("egressgw-manager")
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Spec.Template.Labels["azure.workload.identity/use"]; got != "true" {
				t.Errorf("manager pod label azure.workload.identity/use = %q, want \"true\" (the webhook injects the token only then)", got)
			}
		},
	},
	{
		name: "azure stack hub (custom cloud) with a CA bundle, CNI off, unprivileged agent",
		sets: []string{"cloud=azure,azure.subscription=00000000-0000-4000-8000-0000000000aa,azure.cloudName=custom",
			"azure.armEndpoint=https://management.local.azurestack.external,azure.armAudience=https://management.azurestackhub.local,azure.authorityHost=https://adfs.local.azurestack.external/adfs",
			"caBundle.configMapName=azurestack-ca,agent.cni.enabled=false,agent.privileged=false,uninstallHook.enabled=false"},
		managerArgs: []string{"--azure-cloud=custom", "--ca-bundle=/etc/egressgw/ca/ca.crt"},
		agentArgs:   []string{"--install-cni=false"},
		check: func(t *testing.T, r *Rendered) {
			c := agentContainer(t, r)
			if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || *sc.Privileged ||
				!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) {
				t.Errorf("agent securityContext = %+v, want unprivileged with NET_ADMIN and NET_RAW only", sc)
			}
			if r.Find("DaemonSet", "egressgw-uninstall") != nil {
				t.Error("uninstallHook.enabled=false still renders the uninstall DaemonSet")
			}
		},
	},
}

func TestLintAndRenderMatrix(t *testing.T) {
	for _, tc := range matrix {
		t.Run(tc.name, func(t *testing.T) {
			vals := mustSet(t, tc.sets...)
			if msgs := Lint(vals, Options{}); len(msgs) > 0 {
				t.Errorf("helm lint --strict: %s", strings.Join(msgs, "\n"))
			}
			r, err := Render(vals, Options{})
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			wantArgs(t, "manager", managerContainer(t, r).Args, tc.managerArgs)
			if len(tc.agentArgs) > 0 {
				wantArgs(t, "agent", agentContainer(t, r).Args, tc.agentArgs)
			}
			wantWorkloadBasics(t, r)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// wantWorkloadBasics checks what issue 13 asks of every install: two spread manager replicas off the
// host network with probes, a PDB, and an agent on the host network on every node.
func wantWorkloadBasics(t *testing.T, r *Rendered) {
	t.Helper()
	d, err := r.Deployment("egressgw-manager")
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	if *d.Spec.Replicas != 2 || spec.HostNetwork || len(spec.TopologySpreadConstraints) == 0 {
		t.Errorf("manager: replicas %d, hostNetwork %v, %d spread constraints; want 2, false, some", *d.Spec.Replicas, spec.HostNetwork, len(spec.TopologySpreadConstraints))
	}
	if c := spec.Containers[0]; c.LivenessProbe == nil || c.ReadinessProbe == nil || c.Resources.Requests.Cpu().IsZero() {
		t.Error("manager container without probes or resource requests")
	}
	if r.Find("PodDisruptionBudget", "egressgw-manager") == nil {
		t.Error("no PodDisruptionBudget for the manager")
	}
	ds, err := r.DaemonSet("egressgw-agent")
	if err != nil {
		t.Fatal(err)
	}
	ps := ds.Spec.Template.Spec
	if !ps.HostNetwork || len(ps.Tolerations) != 1 || ps.Tolerations[0].Operator != corev1.TolerationOpExists || ps.Tolerations[0].Key != "" {
		t.Errorf("agent: hostNetwork %v, tolerations %+v; want true and one that tolerates every taint", ps.HostNetwork, ps.Tolerations)
	}
	wantHostPath(t, r, "egressgw-agent", "/run/xtables.lock")
	// Each directory flag the agent gets is a host directory mounted at the same path, so the plugin on
	// the host and the agent in its container agree on every path.
	mounts := HostPathMounts(&ps, &ps.Containers[0])
	for _, a := range ps.Containers[0].Args {
		for _, flag := range []string{"--cni-conf-dir=", "--cni-bin-dir="} {
			if dir, ok := strings.CutPrefix(a, flag); ok && mounts[dir] != dir {
				t.Errorf("agent %s%s is not the host's %s mounted at the same path (mounts %v)", flag, dir, dir, mounts)
			}
		}
	}
	wantEnvFrom(t, &ps.Containers[0], "NODE_NAME", "spec.nodeName")
}

func mustSet(t *testing.T, sets ...string) map[string]any {
	t.Helper()
	vals, err := ParseSet(sets...)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

func managerContainer(t *testing.T, r *Rendered) *corev1.Container {
	t.Helper()
	return mustContainer(t, r, "Deployment", "egressgw-manager", "manager")
}

func agentContainer(t *testing.T, r *Rendered) *corev1.Container {
	t.Helper()
	return mustContainer(t, r, "DaemonSet", "egressgw-agent", "agent")
}

func mustContainer(t *testing.T, r *Rendered, kind, name, container string) *corev1.Container {
	t.Helper()
	c, err := r.PodContainer(kind, name, container)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantArgs(t *testing.T, who string, got, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s args lack %q; got %q", who, w, got)
		}
	}
}

func wantAnnotation(t *testing.T, r *Rendered, kind, name, key, want string) {
	t.Helper()
	o := r.Find(kind, name)
	if o == nil {
		t.Fatalf("no %s %s rendered", kind, name)
	}
	if got := o.GetAnnotations()[key]; got != want {
		t.Errorf("%s %s annotation %s = %q, want %q", kind, name, key, got, want)
	}
}

func wantEnv(t *testing.T, c *corev1.Container, name, want string) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name && e.Value == want {
			return
		}
	}
	t.Errorf("container %s: no env %s=%s in %+v", c.Name, name, want, c.Env)
}

func wantEnvFrom(t *testing.T, c *corev1.Container, name, fieldPath string) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == fieldPath {
			return
		}
	}
	t.Errorf("container %s: no env %s from fieldRef %s", c.Name, name, fieldPath)
}

func wantHostPath(t *testing.T, r *Rendered, daemonSet, path string) {
	t.Helper()
	ds, err := r.DaemonSet(daemonSet)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath != nil && v.HostPath.Path == path {
			return
		}
	}
	t.Errorf("DaemonSet %s mounts no hostPath %s", daemonSet, path)
}
