package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/envtest"
)

// TestEgressInterfaceStatusValidation writes status.nodes[].egressInterface through the status
// subresource, as the manager does, and checks that the API server keeps a good one and refuses bad
// ones with a message naming the field.
func TestEgressInterfaceStatusValidation(t *testing.T) {
	env := envtest.Start(t)
	ctx := context.Background()
	gw := &egressgwv1.EgressGateway{
		ObjectMeta: metav1.ObjectMeta{Name: "eni"},
		Spec: egressgwv1.EgressGatewaySpec{
			NodeSelector: egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"egressgw.io/gateway": "true"}},
			EgressIPs:    []egressgwv1.EgressIP{{IP: "10.0.1.50"}},
		},
	}
	if err := env.Client.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	good := egressgwv1.EgressInterface{MAC: "02:aa:bb:cc:dd:ee", Address: "10.0.1.17/24", Router: "10.0.1.1"}
	if err := writeInterface(ctx, env.Client, gw, good); err != nil {
		t.Fatalf("valid egress interface refused: %v", err)
	}
	got := &egressgwv1.EgressGateway{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(gw), got); err != nil {
		t.Fatal(err)
	}
	if e := got.Status.Nodes[0].EgressInterface; e == nil || *e != good {
		t.Fatalf("stored egress interface %+v, want %+v", e, good)
	}
	cases := []struct {
		name string
		in   egressgwv1.EgressInterface
		msg  string
	}{
		{"mac upper case", egressgwv1.EgressInterface{MAC: "02:AA:BB:CC:DD:EE", Address: "10.0.1.17/24", Router: "10.0.1.1"}, "status.nodes[0].egressInterface.mac"},
		{"address without prefix", egressgwv1.EgressInterface{MAC: good.MAC, Address: "10.0.1.17", Router: "10.0.1.1"}, "address must be the interface's IPv4 address and its subnet's prefix length"},
		{"router not an address", egressgwv1.EgressInterface{MAC: good.MAC, Address: good.Address, Router: "gateway"}, "router must be an IPv4 address"},
		{"router outside the subnet", egressgwv1.EgressInterface{MAC: good.MAC, Address: good.Address, Router: "10.0.2.1"}, "router must lie inside the subnet of address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := writeInterface(ctx, env.Client, gw, tc.in)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want an Invalid error containing %q, got %v", tc.msg, err)
			}
		})
	}
}

func writeInterface(ctx context.Context, c client.Client, gw *egressgwv1.EgressGateway, e egressgwv1.EgressInterface) error {
	cur := &egressgwv1.EgressGateway{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(gw), cur); err != nil {
		return err
	}
	cur.Status.Nodes = []egressgwv1.GatewayNodeStatus{{Name: "gw-1", Healthy: true, EgressInterface: &e}}
	return c.Status().Update(ctx, cur)
}
