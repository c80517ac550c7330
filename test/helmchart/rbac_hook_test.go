package helmchart

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/egressgw/egressgw/pkg/uninstallwait"
	"github.com/egressgw/egressgw/test/envtest"
)

// TestUninstallWaitUnderTheChartRBAC runs the uninstall hook's waiter (pkg/uninstallwait.Wait, what
// cmd/uninstall-wait runs in the hook's Job) with a token of the hook's ServiceAccount, bound only by
// the hook's Role: it sees the hook DaemonSet done. Then with each verb of the Role removed in turn, its
// read is forbidden.
func TestUninstallWaitUnderTheChartRBAC(t *testing.T) {
	env := envtest.Start(t)
	r, err := Render(mustSet(t, awsOK), Options{Namespace: releaseNamespace})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, env, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}})
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
		o := r.Find(kind, "egressgw-uninstall")
		if o == nil {
			t.Fatalf("the chart's uninstall hook renders no %s egressgw-uninstall", kind)
		}
		if err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner("helm")); err != nil {
			t.Fatalf("apply %s: %v", kind, err)
		}
	}
	ds, err := r.DaemonSet("egressgw-uninstall")
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, env, ds)
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
		UpdatedNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1}
	if err := env.Client.Status().Update(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(serviceAccountConfig(t, env, "egressgw-uninstall"), client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	wait := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return uninstallwait.Wait(ctx, c, client.ObjectKeyFromObject(ds), 100*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	if err := wait(); err != nil {
		t.Fatalf("under the hook's RBAC the waiter did not see the DaemonSet done: %v", err)
	}
	full := roleRules(t, env, "Role", releaseNamespace, "egressgw-uninstall")
	forEachVerb(full, func(rule rbacv1.PolicyRule, verb string, reduced []rbacv1.PolicyRule) {
		t.Run(fmt.Sprintf("without %v %v %s", rule.APIGroups, rule.Resources, verb), func(t *testing.T) {
			setRoleRules(t, env, "Role", releaseNamespace, "egressgw-uninstall", reduced)
			defer setRoleRules(t, env, "Role", releaseNamespace, "egressgw-uninstall", full)
			if err := wait(); err == nil || !strings.Contains(err.Error(), "forbidden") {
				t.Errorf("the waiter without this verb: %v; want its read forbidden", err)
			}
		})
	})
}
