package aws

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/egressgw/egressgw/providers/internal/grantcheck"
	"github.com/egressgw/egressgw/test/ec2sim"
)

const policyFile = "../../examples/aws/iam-policy.json"

type policy struct {
	Statement []statement
}

type statement struct {
	Effect    string
	Action    []string
	Resource  stringOrList
	Condition map[string]map[string]string
}

// stringOrList is an IAM field that may be one string or a list of them.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// examplePolicy is examples/aws/iam-policy.json as the simulator enforces it, conditions included.
func examplePolicy(t testing.TB) *ec2sim.Policy {
	data, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ec2sim.ParsePolicy(data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readPolicy() (policy, error) {
	var p policy
	data, err := os.ReadFile(policyFile)
	if err == nil {
		err = json.Unmarshal(data, &p)
	}
	if err != nil {
		return p, fmt.Errorf("%s: %w", policyFile, err)
	}
	return p, nil
}

func loadPolicy(t testing.TB) policy {
	p, err := readPolicy()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// actions are the EC2 action names the policy allows, without the ec2: prefix.
func (p policy) actions() []string {
	var out []string
	for _, st := range p.Statement {
		for _, a := range st.Action {
			out = append(out, strings.TrimPrefix(a, "ec2:"))
		}
	}
	return out
}

// policyActions are the EC2 action names the policy allows, without the ec2: prefix.
func policyActions(t testing.TB) []string { return loadPolicy(t).actions() }

func mutating(action string) bool { return !strings.HasPrefix(action, "Describe") }

// TestIAMPolicyScopesMutationsByTag checks the policy's form: only EC2 actions, reads on every resource
// (EC2 has no resource-level permissions for Describe), and every mutating action limited by a condition:
// resources carrying the cluster's tag, tags the request must set, or (for the subnets and security groups
// an interface is created in, which egressgw does not tag) the cluster's VPC.
func TestIAMPolicyScopesMutationsByTag(t *testing.T) {
	for i, st := range loadPolicy(t).Statement {
		if st.Effect != "Allow" || len(st.Action) == 0 {
			t.Errorf("statement %d: want Allow with actions, got %+v", i, st)
		}
		muts := slices.ContainsFunc(st.Action, func(a string) bool { return mutating(strings.TrimPrefix(a, "ec2:")) })
		if muts && (slices.Contains(st.Resource, "*") || !hasTagCondition(st)) {
			t.Errorf("statement %d grants %v without a tag or VPC condition on named resource types", i, st.Action)
		}
		for _, a := range st.Action {
			if !strings.HasPrefix(a, "ec2:") || strings.Contains(a, "*") {
				t.Errorf("statement %d: %q is not one EC2 action", i, a)
			}
		}
	}
}

func hasTagCondition(st statement) bool {
	for _, keys := range st.Condition {
		for k := range keys {
			if strings.HasPrefix(k, "ec2:ResourceTag/") || strings.HasPrefix(k, "aws:RequestTag/") || k == "ec2:Vpc" {
				return true
			}
		}
	}
	return false
}

// impliedActions are permissions EC2 checks for a call besides its own action: tags given in
// TagSpecifications at creation are authorized as ec2:CreateTags with ec2:CreateAction set.
var impliedActions = map[string][]string{"CreateNetworkInterface": {"CreateTags"}}

// policyWording words the policy check's mistakes.
var policyWording = grantcheck.Wording{Document: policyFile,
	Missing: func(action string) string {
		return "the provider calls ec2:" + action + " but the policy does not allow it"
	},
	Extra: func(action string) string {
		kind := "read-only"
		if mutating(action) {
			kind = "mutating"
		}
		return fmt.Sprintf("the policy grants %s ec2:%s, which the provider never calls", kind, action)
	},
}

// checkPolicyAgainst compares the actions the simulators saw during this package's tests with the policy:
// the policy must allow each (and what EC2 checks with it), and grant nothing the provider never calls.
func checkPolicyAgainst(seen map[string]bool, allowed []string) error {
	seen = maps.Clone(seen)
	for action := range maps.Clone(seen) {
		for _, implied := range impliedActions[action] {
			seen[implied] = true
		}
	}
	return grantcheck.Compare(seen, allowed, policyWording)
}

// TestMain runs the tests, then compares every action the simulators saw with the IAM policy (after a
// full run only: see grantcheck.Main).
func TestMain(m *testing.M) {
	grantcheck.Main(m, "IAM policy check", func() error {
		p, err := readPolicy()
		if err != nil {
			return err
		}
		return checkPolicyAgainst(seenActions.Set(), p.actions())
	})
}

func TestPolicyCheckCatchesBothMistakes(t *testing.T) {
	seen := map[string]bool{"DescribeInstances": true, "AssignPrivateIpAddresses": true}
	if err := checkPolicyAgainst(seen, []string{"DescribeInstances"}); err == nil || !strings.Contains(err.Error(), "does not allow it") {
		t.Errorf("a missing action passed: %v", err)
	}
	err := checkPolicyAgainst(seen, []string{"DescribeInstances", "AssignPrivateIpAddresses", "TerminateInstances"})
	if err == nil || !strings.Contains(err.Error(), "grants mutating ec2:TerminateInstances") {
		t.Errorf("an extra mutating action passed: %v", err)
	}
	if err := checkPolicyAgainst(seen, []string{"DescribeInstances", "AssignPrivateIpAddresses"}); err != nil {
		t.Errorf("an exact policy failed: %v", err)
	}
}

// TestExamplePolicyRefusesOutsideTheCluster: the simulator enforces the example policy with its
// conditions, and the policy refuses what egressgw must not do: tag an interface after its creation,
// create one without the no_manage tag, touch an interface or an instance that is not the cluster's.
func TestExamplePolicyRefusesOutsideTheCluster(t *testing.T) {
	_, p := start(t)
	c, ctx := p.ec2, t.Context()
	tag := func(k, v string) types.Tag { return types.Tag{Key: sdkaws.String(k), Value: sdkaws.String(v)} }
	_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{eniA1}, Tags: []types.Tag{tag(TagCluster, testCluster)}})
	wantDenied(t, err, "ec2:CreateTags")
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: sdkaws.String("eni-0c000000000000004"), PrivateIpAddresses: []string{"10.0.1.99"}})
	wantDenied(t, err, "network-interface/eni-0c000000000000004")
	spec := func(tags ...types.Tag) []types.TagSpecification {
		return []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: tags}}
	}
	_, err = c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: sdkaws.String("subnet-0a000000000000001"), TagSpecifications: spec(tag(TagCluster, testCluster))})
	wantDenied(t, err, "ec2:CreateNetworkInterface")
	out, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: sdkaws.String("subnet-0a000000000000001"),
		TagSpecifications: spec(tag(TagCluster, testCluster), tag(TagNoManage, "true"))})
	must(t, err)
	_, err = c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: out.NetworkInterface.NetworkInterfaceId,
		InstanceId: sdkaws.String("i-0c000000000000004"), DeviceIndex: sdkaws.Int32(2)})
	wantDenied(t, err, "instance/i-0c000000000000004")
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: sdkaws.String("eni-0c000000000000005")})
	wantDenied(t, err, "ec2:DeleteNetworkInterface")
}

func wantDenied(t *testing.T, err error, fragment string) {
	t.Helper()
	if !hasCode(err, codeUnauthorized) || !strings.Contains(err.Error(), fragment) {
		t.Fatalf("want UnauthorizedOperation naming %s, got %v", fragment, err)
	}
}
