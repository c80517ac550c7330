package helmchart

import (
	"strings"
	"testing"
)

const awsOK = "cloud=aws,aws.clusterName=prod"

// TestSchemaRefusesBadValues: values.schema.json refuses each mistake before anything renders, with a
// message that names the value's path and what is wrong with it.
func TestSchemaRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []string
		want []string // substrings of the error
	}{
		{"no cloud", nil, []string{"at '/cloud'", "'aws', 'gcp', 'azure'"}},
		{"unknown cloud", []string{"cloud=openstack"}, []string{"at '/cloud'", "value must be one of 'aws', 'gcp', 'azure'"}},
		{"gcp without project", []string{"cloud=gcp"}, []string{"at '/gcp/project'", "minLength"}},
		{"azure without subscription", []string{"cloud=azure"}, []string{"at '/azure/subscription'", "minLength"}},
		{"azure subscription not a GUID", []string{"cloud=azure,azure.subscription=prod"}, []string{"at '/azure/subscription'", "'prod' does not match"}},
		{"aws dedicated ENI without cluster name", []string{"cloud=aws"}, []string{"at '/aws/clusterName'", "minLength"}},
		{"aws egress interface misspelt", []string{awsOK, "aws.egressInterface=secondary"}, []string{"at '/aws/egressInterface'", "'dedicated', 'primary'"}},
		{"aws subnet that is no subnet ID", []string{awsOK, "aws.egressSubnets.us-east-1a=10.0.1.0/24"}, []string{"at '/aws/egressSubnets/us-east-1a'", "does not match"}},
		{"egress subnets with the primary ENI", []string{"cloud=aws,aws.egressInterface=primary,aws.egressSubnetTags.role=egress"}, []string{"at '/aws/egressSubnetTags'", "maxProperties"}},
		{"IRSA role that is no role ARN", []string{awsOK, "identity.awsRoleARN=egressgw-manager"}, []string{"at '/identity/awsRoleARN'"}},
		{"unknown key (typo)", []string{awsOK, "manager.replica=3"}, []string{"at '/manager'", "additional properties 'replica' not allowed"}},
		{"unknown top-level key", []string{awsOK, "provider=aws"}, []string{"additional properties 'provider' not allowed"}},
		{"no manager replica", []string{awsOK, "manager.replicas=0"}, []string{"at '/manager/replicas'", "minimum: got 0, want 1"}},
		{"lease duration without unit", []string{awsOK, "manager.leaderElection.leaseDuration=8"}, []string{"at '/manager/leaderElection/leaseDuration'", "got number, want string"}},
		{"probe interval not a duration", []string{awsOK, "manager.probe.interval=fast"}, []string{"at '/manager/probe/interval'", "'fast' does not match"}},
		{"log level", []string{awsOK, "agent.logLevel=verbose"}, []string{"at '/agent/logLevel'", "'debug', 'info', 'warn', 'error'"}},
		{"IANA VXLAN port", []string{awsOK, "agent.vxlan.port=4789"}, []string{"at '/agent/vxlan/port'", "'not' failed"}},
		{"AWS VPC CNI's VXLAN port", []string{awsOK, "agent.vxlan.port=7789"}, []string{"at '/agent/vxlan/port'"}},
		{"port out of range", []string{awsOK, "agent.vxlan.port=70000"}, []string{"at '/agent/vxlan/port'", "maximum: got 70,000, want 65,535"}},
		{"VNI wider than 24 bits", []string{awsOK, "agent.vxlan.vni=16777216"}, []string{"at '/agent/vxlan/vni'", "maximum"}},
		{"MTU too small", []string{awsOK, "agent.vxlan.mtu=100"}, []string{"at '/agent/vxlan/mtu'", "minimum: got 100, want 576"}},
		{"tunnel device name too long", []string{awsOK, "agent.vxlan.device=egressgw-tunnel0"}, []string{"at '/agent/vxlan/device'", "maxLength"}},
		{"mark not a number", []string{awsOK, "agent.marks.steerMask=0xZZ"}, []string{"at '/agent/marks/steerMask'", "'0xZZ' does not match"}},
		{"cluster range not a CIDR", []string{awsOK, "agent.clusterCIDRs={10.0.0.0/33}"}, []string{"at '/agent/clusterCIDRs/0'", "'10.0.0.0/33' does not match"}},
		{"IPv6 cluster range", []string{awsOK, "agent.clusterCIDRs={fd00::/64}"}, []string{"at '/agent/clusterCIDRs/0'"}},
		{"service CIDR detection mode", []string{awsOK, "agent.serviceCIDRsFromAPI=yes"}, []string{"at '/agent/serviceCIDRsFromAPI'", "'auto', 'on', 'off'"}},
		{"relative CNI directory", []string{awsOK, "agent.cni.binDir=opt/cni/bin"}, []string{"at '/agent/cni/binDir'"}},
		{"extra arg that is no flag", []string{awsOK, "manager.extraArgs={debug}"}, []string{"at '/manager/extraArgs/0'"}},
		{"custom Azure cloud without endpoints", []string{"cloud=azure,azure.subscription=00000000-0000-4000-8000-0000000000aa,azure.cloudName=custom"}, []string{"at '/azure/armEndpoint'", "at '/azure/armAudience'", "at '/azure/authorityHost'"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(mustSet(t, tc.sets...), Options{})
			if err == nil {
				t.Fatalf("--set %s rendered; want the schema to refuse it", strings.Join(tc.sets, ","))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
				t.Errorf("refused by something other than the schema:\n%v", err)
			}
		})
	}
}
