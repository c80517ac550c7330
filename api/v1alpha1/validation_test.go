package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/egressgw/egressgw/test/envtest"
)

// baseGateway and basePolicy are valid objects; every case below breaks one thing in one of them with a
// JSON merge patch (null removes a field, a list replaces the whole list).
const baseGateway = `
apiVersion: egressgw.io/v1alpha1
kind: EgressGateway
metadata: {name: base}
spec:
  nodeSelector: {matchLabels: {egressgw.io/gateway: "true"}}
  egressIPs: [{ip: 10.0.1.50, publicIP: eipalloc-0abc1234def567890}, {ip: 10.0.2.50}]
  namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [payments]}]}
`

const basePolicy = `
apiVersion: egressgw.io/v1alpha1
kind: EgressPolicy
metadata: {name: base, namespace: default}
spec:
  gatewayName: payments
  podSelector: {matchLabels: {app: payment}}
  destinationCIDRs: [192.0.2.0/24]
  excludedCIDRs: [192.0.2.8/32]
  egressIP: 10.0.1.50
`

type rejectCase struct {
	name  string
	base  string // baseGateway or basePolicy
	patch string // JSON merge patch applied to base
	field string // the field path the API server must name
	msg   string // a fragment of the message the user reads
}

var rejectCases = []rejectCase{
	{"egress IP not an address", baseGateway, `{"spec":{"egressIPs":[{"ip":"10.0.1.500"}]}}`,
		"spec.egressIPs[0].ip", "ip must be an IP address written in canonical form"},
	{"egress IP with leading zeros", baseGateway, `{"spec":{"egressIPs":[{"ip":"10.0.1.050"}]}}`,
		"spec.egressIPs[0].ip", "ip must be an IP address written in canonical form"},
	{"egress IP is IPv6", baseGateway, `{"spec":{"egressIPs":[{"ip":"2001:db8::50"}]}}`,
		"spec.egressIPs[0].ip", "IPv6 egress IPs are not supported yet"},
	{"egress IP is loopback", baseGateway, `{"spec":{"egressIPs":[{"ip":"127.0.0.1"}]}}`,
		"spec.egressIPs[0].ip", "must be a unicast host address"},
	{"egress IP is multicast", baseGateway, `{"spec":{"egressIPs":[{"ip":"224.0.0.18"}]}}`,
		"spec.egressIPs[0].ip", "must be a unicast host address"},
	{"duplicate egress IP", baseGateway, `{"spec":{"egressIPs":[{"ip":"10.0.1.50"},{"ip":"10.0.2.50"},{"ip":"10.0.1.50"}]}}`,
		"spec.egressIPs", "each egress IP may appear only once in a gateway"},
	{"one Elastic IP on two egress IPs", baseGateway, `{"spec":{"egressIPs":[{"ip":"10.0.1.50","publicIP":"eipalloc-0abc1234def567890"},{"ip":"10.0.2.50","publicIP":"eipalloc-0abc1234def567890"}]}}`,
		"spec.egressIPs", "each publicIP may be named on only one egress IP"},
	{"no egress IPs", baseGateway, `{"spec":{"egressIPs":[]}}`,
		"spec.egressIPs", "should have at least 1 items"},
	{"absurdly many egress IPs", baseGateway, manyEgressIPs(129),
		"spec.egressIPs", "must have at most 128 items"},
	{"public IP neither an allocation ID nor a resource ID", baseGateway, `{"spec":{"egressIPs":[{"ip":"10.0.1.50","publicIP":"54.1.2.3"}]}}`,
		"spec.egressIPs[0].publicIP", "publicIP must be an AWS Elastic IP allocation ID"},
	{"empty node selector", baseGateway, `{"spec":{"nodeSelector":{"matchLabels":null}}}`,
		"spec.nodeSelector", "an empty selector would make every node a gateway"},
	{"missing namespace selector", baseGateway, `{"spec":{"namespaceSelector":null}}`,
		"spec.namespaceSelector", "Required value"},
	{"selector operator unknown", baseGateway, `{"spec":{"namespaceSelector":{"matchExpressions":[{"key":"team","operator":"Equals","values":["a"]}]}}}`,
		"spec.namespaceSelector.matchExpressions[0].operator", `Unsupported value: "Equals"`},
	{"selector In without values", baseGateway, `{"spec":{"namespaceSelector":{"matchExpressions":[{"key":"team","operator":"In"}]}}}`,
		"spec.namespaceSelector.matchExpressions[0]", "values must list at least one value with the In and NotIn operators"},
	{"selector Exists with values", baseGateway, `{"spec":{"nodeSelector":{"matchExpressions":[{"key":"gw","operator":"Exists","values":["x"]}]}}}`,
		"spec.nodeSelector.matchExpressions[0]", "must be empty with Exists and DoesNotExist"},
	{"selector key malformed", baseGateway, `{"spec":{"nodeSelector":{"matchLabels":{"-gateway":"true"}}}}`,
		"spec.nodeSelector.matchLabels", "matchLabels keys must be label keys"},
	{"selector value malformed", baseGateway, `{"spec":{"nodeSelector":{"matchLabels":{"gateway":"yes please"}}}}`,
		"spec.nodeSelector.matchLabels[gateway]", "label values must be up to 63 letters"},
	{"destination CIDR malformed", basePolicy, `{"spec":{"destinationCIDRs":["192.0.2.0/33"]}}`,
		"spec.destinationCIDRs[0]", "each CIDR must be an address and a prefix length"},
	{"destination CIDR with host bits", basePolicy, `{"spec":{"destinationCIDRs":["192.0.2.1/24"]}}`,
		"spec.destinationCIDRs[0]", "each CIDR must start at the first address of its range (no host bits set)"},
	{"excluded CIDR is a bare address", basePolicy, `{"spec":{"excludedCIDRs":["192.0.2.8"]}}`,
		"spec.excludedCIDRs[0]", "each CIDR must be an address and a prefix length"},
	{"duplicate destination CIDR", basePolicy, `{"spec":{"destinationCIDRs":["192.0.2.0/24","192.0.2.0/24"]}}`,
		"spec.destinationCIDRs[1]", "Duplicate value"},
	{"pin not an IP", basePolicy, `{"spec":{"egressIP":"payments-ip"}}`,
		"spec.egressIP", "egressIP must be an IP address"},
	{"gateway name malformed", basePolicy, `{"spec":{"gatewayName":"Payments_GW"}}`,
		"spec.gatewayName", "gatewayName must be the name of an EgressGateway"},
	{"gateway name missing", basePolicy, `{"spec":{"gatewayName":null}}`,
		"spec.gatewayName", "Required value"},
	{"unknown unavailable action", basePolicy, `{"spec":{"whenUnavailable":"Allow"}}`,
		"spec.whenUnavailable", `supported values: "Drop", "UseNodeIP"`},
}

func manyEgressIPs(n int) string {
	ips := make([]string, n)
	for i := range ips {
		ips[i] = fmt.Sprintf(`{"ip":"10.0.%d.%d"}`, i/200, 10+i%200)
	}
	return `{"spec":{"egressIPs":[` + strings.Join(ips, ",") + `]}}`
}

// TestCRDValidation sends each bad object to a real API server and checks that it is refused with a
// message naming the field and saying what is wrong. The unpatched bases must be accepted, so that each
// refusal is caused by its patch alone.
func TestCRDValidation(t *testing.T) {
	env := envtest.Start(t)
	ctx := context.Background()
	for _, base := range []string{baseGateway, basePolicy} {
		obj := patched(t, base, `{"metadata":{"name":"valid-base"}}`)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("valid %s refused: %v", obj.GetKind(), err)
		}
	}
	distinct := patched(t, baseGateway, `{"metadata":{"name":"distinct-public-ips"},"spec":{"egressIPs":[{"ip":"10.0.1.50","publicIP":"eipalloc-0abc1234def567890"},{"ip":"10.0.1.51","publicIP":"eipalloc-0abc1234def567891"},{"ip":"10.0.2.50"},{"ip":"10.0.2.51"}]}}`)
	if err := env.Client.Create(ctx, distinct); err != nil {
		t.Fatalf("distinct public IPs, and two egress IPs without one, refused: %v", err)
	}
	for i, tc := range rejectCases {
		t.Run(tc.name, func(t *testing.T) {
			obj := patched(t, tc.base, tc.patch)
			obj.SetName(fmt.Sprintf("case-%d", i))
			err := env.Client.Create(ctx, obj)
			if err == nil {
				t.Fatalf("accepted; want refusal naming %s with %q", tc.field, tc.msg)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			for _, want := range []string{tc.field, tc.msg} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

// patched decodes a YAML base object and applies a JSON merge patch to it.
func patched(t *testing.T, base, patch string) *unstructured.Unstructured {
	t.Helper()
	doc, err := yaml.YAMLToJSON([]byte(base))
	if err != nil {
		t.Fatalf("base: %v", err)
	}
	if doc, err = jsonpatch.MergePatch(doc, []byte(patch)); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	obj := &unstructured.Unstructured{}
	if err := json.Unmarshal(doc, &obj.Object); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return obj
}
