package helmchart

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/egressgw/egressgw/test/envtest"
)

// monitoringTypes are the Prometheus Operator's API types; their CRDs are generated from the Go module
// (the same version the chart's tests decode with) so that the API server checks ServiceMonitors and
// PrometheusRules against their real schemas.
const monitoringTypes = "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

// TestRenderedObjectsAcceptedByAPIServer applies every object of every matrix case, hooks included,
// with server-side dry-run to a real kube-apiserver that has the chart's CRDs and the Prometheus
// Operator's: each must be accepted (server-side apply refuses unknown fields and bad values).
func TestRenderedObjectsAcceptedByAPIServer(t *testing.T) {
	env := envtest.Start(t)
	installMonitoringCRDs(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "egressgw-system"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for _, tc := range matrix {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Render(mustSet(t, tc.sets...), Options{})
			if err != nil {
				t.Fatal(err)
			}
			applied := 0
			for _, o := range append(r.Objects, r.Hooks...) {
				err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o),
					client.FieldOwner("helm"), client.ForceOwnership, client.DryRunAll)
				if err != nil {
					t.Errorf("%s %s refused: %v", o.GetKind(), o.GetName(), err)
					continue
				}
				applied++
			}
			// Every case renders at least the two workloads, the PDB, two ServiceAccounts, the RBAC
			// (2 ClusterRoles and bindings, a Role and its binding) and two Services.
			if applied < 13 {
				t.Errorf("only %d objects accepted; want the whole chart", applied)
			}
			t.Logf("%d objects accepted", applied)
		})
	}
}

func installMonitoringCRDs(t *testing.T, env *envtest.Env) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "tool", "controller-gen", "crd", "paths="+monitoringTypes, "output:crd:dir="+dir)
	cmd.Dir = envtest.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate the Prometheus Operator's CRDs: %v\n%s", err, out)
	}
	var paths []string
	for _, f := range []string{"monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"} {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("controller-gen wrote no %s: %v", f, err)
		}
		paths = append(paths, p)
	}
	if _, err := ctrlenvtest.InstallCRDs(env.Config, ctrlenvtest.CRDInstallOptions{Paths: paths, ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("install the Prometheus Operator's CRDs: %v", err)
	}
}
