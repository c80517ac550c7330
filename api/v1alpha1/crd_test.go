package v1alpha1_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/envtest"
)

// TestExamplesAccepted creates every manifest of examples/ in the API server and reads it back: the
// examples must be valid, use no field the schema does not know, and survive a round trip unchanged.
func TestExamplesAccepted(t *testing.T) {
	env := envtest.Start(t)
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(envtest.RepoRoot(), "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			for _, doc := range splitYAML(t, file) {
				want := typedFromYAML(t, doc)
				ensureNamespace(t, env.Client, want.GetNamespace())
				if err := env.Client.Create(ctx, want); err != nil {
					t.Fatalf("create: %v", err)
				}
				got := want.DeepCopyObject().(client.Object)
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
					t.Fatalf("read back: %v", err)
				}
				if !reflect.DeepEqual(specOf(t, want), specOf(t, got)) {
					t.Errorf("spec changed on the way through the API server:\nsent %s\ngot  %s", specOf(t, want), specOf(t, got))
				}
			}
		})
	}
}

func splitYAML(t *testing.T, file string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
	return docs
}

// typedFromYAML decodes strictly into the egressgw type of the document, so that a misspelled field in
// an example fails here instead of being dropped silently by the API server.
func typedFromYAML(t *testing.T, doc []byte) client.Object {
	t.Helper()
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatal(err)
	}
	var obj client.Object
	switch meta.Kind {
	case "EgressGateway":
		obj = &egressgwv1.EgressGateway{}
	case "EgressPolicy":
		obj = &egressgwv1.EgressPolicy{}
	default:
		t.Fatalf("example of unknown kind %q", meta.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("example does not match the Go types: %v", err)
	}
	return obj
}

func specOf(t *testing.T, obj client.Object) string {
	t.Helper()
	u, err := runtimeToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(u["spec"])
	return string(spec)
}

func runtimeToUnstructured(obj client.Object) (map[string]any, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var u map[string]any
	return u, json.Unmarshal(data, &u)
}

func ensureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	if name == "" {
		return
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("namespace %s: %v", name, err)
	}
}

// TestStatusOnlyThroughSubresource checks that the status of both kinds is ignored on create and on
// updates of the main resource, and written only through /status, which in turn ignores the spec.
func TestStatusOnlyThroughSubresource(t *testing.T) {
	env := envtest.Start(t)
	ctx := context.Background()
	gw := sampleGateway("status")
	gw.Status.ObservedGeneration = 7
	if err := env.Client.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	requireGatewayStatus(t, env.Client, "status", 0)

	gw.Status.ObservedGeneration = 8
	gw.Spec.EgressIPs = append(gw.Spec.EgressIPs, egressgwv1.EgressIP{IP: "10.0.3.50"})
	if err := env.Client.Update(ctx, gw); err != nil {
		t.Fatal(err)
	}
	requireGatewayStatus(t, env.Client, "status", 0)

	gw.Status.ObservedGeneration = 2
	gw.Spec.EgressIPs = gw.Spec.EgressIPs[:1]
	if err := env.Client.Status().Update(ctx, gw); err != nil {
		t.Fatal(err)
	}
	got := requireGatewayStatus(t, env.Client, "status", 2)
	if len(got.Spec.EgressIPs) != 3 {
		t.Errorf("a status update changed the spec: %d egress IPs, want the 3 of the last spec update", len(got.Spec.EgressIPs))
	}

	pol := samplePolicy("status")
	pol.Status.SelectedPods = 3
	if err := env.Client.Create(ctx, pol); err != nil {
		t.Fatal(err)
	}
	if pol.Status.SelectedPods != 0 {
		t.Errorf("create kept the status: selectedPods=%d", pol.Status.SelectedPods)
	}
	pol.Status.SelectedPods = -1
	err := env.Client.Status().Update(ctx, pol)
	if err == nil || !strings.Contains(err.Error(), "status.selectedPods") || !strings.Contains(err.Error(), "greater than or equal to 0") {
		t.Errorf("a negative selectedPods must be refused with a message naming it, got %v", err)
	}
}

func requireGatewayStatus(t *testing.T, c client.Client, name string, generation int64) *egressgwv1.EgressGateway {
	t.Helper()
	got := &egressgwv1.EgressGateway{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ObservedGeneration != generation {
		t.Fatalf("status.observedGeneration = %d, want %d", got.Status.ObservedGeneration, generation)
	}
	return got
}

func sampleGateway(name string) *egressgwv1.EgressGateway {
	return &egressgwv1.EgressGateway{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: egressgwv1.EgressGatewaySpec{
			NodeSelector: egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"egressgw.io/gateway": "true"}},
			EgressIPs:    []egressgwv1.EgressIP{{IP: "10.0.1.50"}, {IP: "10.0.2.50", PublicIP: "eipalloc-0abc1234def567890"}},
		},
	}
}

func samplePolicy(name string) *egressgwv1.EgressPolicy {
	return &egressgwv1.EgressPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: egressgwv1.EgressPolicySpec{
			GatewayName:      "payments",
			DestinationCIDRs: []string{"192.0.2.0/24", "198.51.100.0/24"},
		},
	}
}

// TestPrinterColumns reads both kinds as the Table that kubectl get renders, after the manager-like
// status writes a test does by hand, and checks the columns and the cells.
func TestPrinterColumns(t *testing.T) {
	env := envtest.Start(t)
	ctx := context.Background()
	gw := sampleGateway("payments")
	mustCreate(t, env.Client, gw)
	now := metav1.Now()
	gw.Status = egressgwv1.EgressGatewayStatus{
		ObservedGeneration: 1, EgressIPCount: 2, AssignedIPCount: 2, HealthyNodeCount: 3,
		Conditions: []metav1.Condition{{Type: egressgwv1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: "AllAssigned", Message: "2 of 2 egress IPs assigned", LastTransitionTime: now}},
		Assignments: []egressgwv1.IPAssignment{
			{IP: "10.0.1.50", Node: "ip-10-0-1-17", State: egressgwv1.AssignmentAssigned, Since: &now},
			{IP: "10.0.2.50", PublicIP: "54.1.2.3", Node: "ip-10-0-2-9", State: egressgwv1.AssignmentAssigned, Since: &now},
		},
	}
	if err := env.Client.Status().Update(ctx, gw); err != nil {
		t.Fatal(err)
	}
	ensureNamespace(t, env.Client, "payments")
	pol := samplePolicy("to-card-db")
	pol.Namespace = "payments"
	mustCreate(t, env.Client, pol)
	pol.Status = egressgwv1.EgressPolicyStatus{EgressIP: "10.0.1.50", GatewayNode: "ip-10-0-1-17", SelectedPods: 12,
		Conditions: []metav1.Condition{{Type: egressgwv1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: "GatewayMoving", Message: "moving", LastTransitionTime: now}}}
	if err := env.Client.Status().Update(ctx, pol); err != nil {
		t.Fatal(err)
	}

	checkTable(t, env.Config, "/apis/egressgw.io/v1alpha1/egressgateways", map[string]string{
		"Name": "payments", "IPs": "2", "Assigned": "2", "Healthy Nodes": "3", "Ready": "True",
		"Reason": "AllAssigned", "Age": "",
	})
	// The cluster-wide path is what `kubectl get egp -A` asks for.
	checkTable(t, env.Config, "/apis/egressgw.io/v1alpha1/egresspolicies", map[string]string{
		"Name": "to-card-db", "Gateway": "payments", "Egress IP": "10.0.1.50", "Node": "ip-10-0-1-17", "Pods": "12",
		"Ready": "False", "Reason": "GatewayMoving", "Destinations": `["192.0.2.0/24","198.51.100.0/24"]`, "Age": "",
	})
}

func mustCreate(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %s: %v", obj.GetName(), err)
	}
}

// checkTable fetches path as a meta.k8s.io Table with one row and compares every column with want (an
// empty want only checks that the column exists, for values that change, like Age).
func checkTable(t *testing.T, cfg *rest.Config, path string, want map[string]string) {
	t.Helper()
	table := getTable(t, cfg, path)
	if len(table.Rows) != 1 {
		t.Fatalf("%s: %d rows, want 1", path, len(table.Rows))
	}
	if len(table.ColumnDefinitions) != len(want) {
		t.Errorf("%s: %d columns %v, want %d", path, len(table.ColumnDefinitions), columnNames(table), len(want))
	}
	for i, col := range table.ColumnDefinitions {
		wantCell, ok := want[col.Name]
		if !ok {
			t.Errorf("%s: unexpected column %q", path, col.Name)
			continue
		}
		got := cellString(table.Rows[0].Cells[i])
		if wantCell != "" && got != wantCell {
			t.Errorf("%s: column %q = %q, want %q", path, col.Name, got, wantCell)
		}
	}
}

func getTable(t *testing.T, cfg *rest.Config, path string) *metav1.Table {
	t.Helper()
	rc, err := rest.UnversionedRESTClientFor(withJSON(cfg))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rc.Get().AbsPath(path).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(context.Background())
	if err != nil {
		t.Fatalf("GET %s as Table: %v", path, err)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(raw, table); err != nil {
		t.Fatalf("decode Table: %v", err)
	}
	return table
}

func withJSON(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &metav1.SchemeGroupVersion
	c.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	return c
}

func columnNames(table *metav1.Table) []string {
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	return names
}

func cellString(cell any) string {
	switch v := cell.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}
