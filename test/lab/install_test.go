package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/envtest"
	"github.com/egressgw/egressgw/test/lab"
	"github.com/egressgw/egressgw/test/netlab"
)

// TestHelmInstallUpgradeUninstall drives the chart's whole life through helm's Go SDK on a lab (AWS):
// helm install (Up), the egress IP placed and a pod's traffic leaving with it; helm upgrade with
// another log level, the agents and managers rolled to it and still working; the gateways deleted (the
// manager releases their IPs in the EC2 simulator), then helm uninstall: its post-delete hook runs on
// every node, after which no node's kernel keeps anything of egressgw (its footprint is what it was
// before the agents ran), the CNI configuration is back, and the hook's objects are deleted.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	l, state := helmLab(t, lab.AWS)
	ctx := context.Background()
	t.Run("a failing Job", func(t *testing.T) { failingJob(t, l) })

	t.Run("upgrade", func(t *testing.T) {
		if err := l.HelmUpgrade(ctx, map[string]any{"agent": map[string]any{"logLevel": "debug"}, "manager": map[string]any{"logLevel": "debug"}}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"agent-node1", "agent-node4", "manager-1", "manager-2"} {
			args, err := l.CommandLine(name)
			if err != nil || !slices.Contains(args, "--log-level=debug") {
				t.Errorf("%s after the upgrade runs %v (%v); want --log-level=debug", name, args, err)
			}
		}
		expectEgressIP(t, l, "after helm upgrade")
	})

	t.Run("uninstall", func(t *testing.T) { uninstallLeavesNothing(t, l, state) })
}

// TestHelmUninstallOnGCPAndAzure: on the other two clouds' labs too, helm uninstall (after the gateways'
// deletion released their IPs in the cloud's simulator) leaves no node with anything of egressgw.
func TestHelmUninstallOnGCPAndAzure(t *testing.T) {
	for _, cloud := range []string{lab.GCP, lab.Azure} {
		t.Run(cloud, func(t *testing.T) {
			l, state := helmLab(t, cloud)
			uninstallLeavesNothing(t, l, state)
		})
	}
}

// helmLab starts a lab of cloud, installed by helm install, with the egress IP placed and a pod's traffic
// leaving with it. It is closed when the test ends, its progress and hook logs printed if it failed.
func helmLab(t *testing.T, cloud string) (*lab.Lab, string) {
	t.Helper()
	switch {
	case os.Geteuid() != 0:
		t.Skip("needs root: the lab builds network namespaces, iptables rules and VXLAN devices")
	case os.Getenv("KUBEBUILDER_ASSETS") == "":
		t.Skip("KUBEBUILDER_ASSETS is not set: export KUBEBUILDER_ASSETS=$(make -s envtest-assets)")
	}
	out := &bytes.Buffer{}
	state := t.TempDir()
	if keep := os.Getenv("EGRESSGW_KEEP_STATE"); keep != "" {
		state = filepath.Join(keep, cloud) // the lab's logs (helm.log, controllers.log) kept for reading afterwards
	}
	l, err := lab.Up(context.Background(), lab.Config{Prefix: netlab.RandomPrefix(), StateDir: state, Cloud: cloud,
		Assets: os.Getenv("KUBEBUILDER_ASSETS"), RepoRoot: envtest.RepoRoot(), Out: out})
	if err != nil {
		t.Fatalf("the lab did not start: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			t.Logf("the lab's progress:\n%s", out.String())
			logs, _ := filepath.Glob(filepath.Join(state, "logs", "*.log"))
			for _, f := range logs {
				if b, _ := os.ReadFile(f); strings.Contains(filepath.Base(f), "uninstall") || strings.Contains(filepath.Base(f), "controllers") {
					t.Logf("%s:\n%s", filepath.Base(f), lastBytes(b, 3000))
				}
			}
		}
	})
	if st, err := l.HelmStatus(); err != nil || st != "deployed" {
		t.Fatalf("helm status after the lab's install: %q, %v; want deployed", st, err)
	}
	expectEgressIP(t, l, "after helm install")
	return l, state
}

// uninstallLeavesNothing deletes the gateways, runs helm uninstall and checks that every node's kernel is
// as it was before the agents ran, the CNI configuration is restored and the release's objects are gone.
func uninstallLeavesNothing(t *testing.T, l *lab.Lab, state string) {
	t.Helper()
	ctx := context.Background()
	if lines, err := l.Forbidden(); err != nil || len(lines) > 0 {
		t.Errorf("requests refused to the chart's ServiceAccounts before the uninstall (%v): %v", err, lines)
	}
	deleteGateways(t, l)
	began := time.Now()
	res, err := l.HelmUninstall(5 * time.Minute)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	t.Logf("helm uninstall took %s on 4 nodes (release deleted, hook DaemonSet on every node, its Job done, hook objects deleted); helm: %s",
		took.Round(10*time.Millisecond), res.Info)
	for _, name := range []string{"agent-node1", "agent-node2", "agent-node3", "agent-node4", "manager-1", "manager-2"} {
		if l.Running(name) {
			t.Errorf("%s still runs after its workload was deleted", name)
		}
	}
	for _, n := range l.Topo.Nodes {
		diffs, err := l.FootprintChanges(ctx, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(diffs) > 0 {
			t.Errorf("%s's kernel after helm uninstall differs from before egressgw:\n  %s", n.Name, strings.Join(diffs, "\n  "))
		}
		checkCNIRestored(t, state, n.Name)
	}
	checkObjectsGone(t, l)
	if errs := l.ControllerErrors(); len(errs) > 0 {
		t.Errorf("the lab's controllers: %v", errs)
	}
	// Helm deletes the release's RBAC with its workloads: the managers' last requests before they stop
	// may be refused, as in a cluster. The hook's must not.
	lines, err := l.Forbidden()
	for _, line := range lines {
		if strings.HasPrefix(line, "egressgw-uninstall") {
			t.Errorf("the uninstall hook's request refused: %s", line)
		}
	}
	if err != nil {
		t.Error(err)
	}
}

// expectEgressIP: payments' pod on node4 reaches the firewall from gw-pay's egress IP.
func expectEgressIP(t *testing.T, l *lab.Lab, when string) {
	t.Helper()
	ctx := context.Background()
	pod := l.PodByName("payments", "pay-node4")
	if err := l.WaitFor(ctx, 30*time.Second, "payments/pay-node4 leaves with "+lab.PayIP.String()+" "+when, func() (bool, string) {
		got, err := pod.Ask(ctx, "tcp", netlab.ServerIP, fmt.Sprintf("helm-%d", time.Now().UnixNano()), time.Second)
		return err == nil && got == lab.PayIP, fmt.Sprintf("the firewall saw %v (%v)", got, err)
	}); err != nil {
		t.Error(err)
	}
}

// deleteGateways deletes the EgressGateways as docs/upgrade-uninstall.md says to before helm uninstall:
// the manager releases their IPs (finalizer), and the cloud's simulator then holds none of them.
func deleteGateways(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	if err := l.Client.DeleteAllOf(ctx, &egressgwv1.EgressGateway{}); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitFor(ctx, time.Minute, "every EgressGateway gone (its IPs released by the manager)", func() (bool, string) {
		var list egressgwv1.EgressGatewayList
		if err := l.Client.List(ctx, &list); err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 0, fmt.Sprintf("%d left", len(list.Items))
	}); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []netip.Addr{lab.PayIP, lab.ReportsIP} {
		if where, held := l.Cloud.Where(ip); held || l.Cloud.Holders(ip) > 0 {
			t.Errorf("the cloud simulator still has %s on %s after its gateway was deleted", ip, where)
		}
	}
	if err := l.WaitFor(ctx, time.Minute, "the dedicated ENIs deleted", func() (bool, string) {
		enis := l.Cloud.ENIs()
		return len(enis) == 0, fmt.Sprintf("still attached: %v", enis)
	}); err != nil {
		t.Error(err)
	}
}

// checkCNIRestored: the node's CNI configuration chains no egressgw-cni and its binary is gone.
func checkCNIRestored(t *testing.T, state, node string) {
	t.Helper()
	confs, _ := filepath.Glob(filepath.Join(state, "nodes", node, "net.d", "*"))
	for _, f := range confs {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "egressgw") {
			t.Errorf("%s's %s still names egressgw:\n%s", node, filepath.Base(f), b)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "nodes", node, "bin", "egressgw-cni")); !os.IsNotExist(err) {
		t.Errorf("%s's CNI bin directory still holds egressgw-cni (%v)", node, err)
	}
}

// checkObjectsGone: the release's and the hook's objects are deleted (hook-delete-policy
// hook-succeeded), the release record too; the CRDs stay (helm never deletes crds/).
func checkObjectsGone(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	ns := lab.SystemNamespace
	gone := []struct {
		obj  client.Object
		name string
	}{
		{&appsv1.DaemonSet{}, "egressgw-agent"}, {&appsv1.Deployment{}, "egressgw-manager"},
		{&rbacv1.ClusterRole{}, "egressgw-agent"}, {&rbacv1.ClusterRole{}, "egressgw-manager"},
		{&corev1.ServiceAccount{}, "egressgw-agent"}, {&corev1.ServiceAccount{}, "egressgw-manager"},
		{&appsv1.DaemonSet{}, "egressgw-uninstall"}, {&batchv1.Job{}, "egressgw-uninstall-wait"},
		{&corev1.ServiceAccount{}, "egressgw-uninstall"}, {&rbacv1.Role{}, "egressgw-uninstall"}, {&rbacv1.RoleBinding{}, "egressgw-uninstall"},
	}
	for _, g := range gone {
		err := l.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: g.name}, g.obj)
		if !apierrors.IsNotFound(err) {
			t.Errorf("%T %s after helm uninstall: %v; want it deleted", g.obj, g.name, err)
		}
	}
	var secrets corev1.SecretList
	if err := l.Client.List(ctx, &secrets, client.InNamespace(ns), client.MatchingLabels{"owner": "helm"}); err != nil || len(secrets.Items) > 0 {
		t.Errorf("helm's release records after uninstall: %d (%v); want none", len(secrets.Items), err)
	}
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	if err := l.Client.Get(ctx, client.ObjectKey{Name: "egressgateways.egressgw.io"}, crd); err != nil {
		t.Errorf("the EgressGateway CRD after helm uninstall: %v; helm leaves crds/ in place", err)
	}
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// failingJob: a Job whose pod fails goes through the stand-in Job controller's failure path as helm
// would see it: a second pod after the back-off (backoffLimit 1), then FailureTarget and Failed with
// BackoffLimitExceeded (the API server accepts the steps), failed 2, no completionTime.
func failingJob(t *testing.T, l *lab.Lab) {
	ctx := context.Background()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: lab.SystemNamespace, Name: "lab-failing"}, Spec: batchv1.JobSpec{
		BackoffLimit: ptr.To[int32](1),
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "fail", Image: "busybox", Command: []string{"/bin/sh", "-c", "exit 3"}}}}},
	}}
	if err := l.Client.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)) }()
	var got batchv1.Job
	if err := l.WaitFor(ctx, time.Minute, "the Job Failed", func() (bool, string) {
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(job), &got); err != nil {
			return false, err.Error()
		}
		for _, c := range got.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		return false, fmt.Sprintf("status %+v", got.Status)
	}); err != nil {
		t.Fatal(err)
	}
	st := got.Status
	var types []string
	for _, c := range st.Conditions {
		types = append(types, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	want := []string{"FailureTarget=True/BackoffLimitExceeded", "Failed=True/BackoffLimitExceeded"}
	if !slices.Equal(types, want) || st.Failed != 2 || st.Succeeded != 0 || st.Active != 0 || st.StartTime == nil || st.CompletionTime != nil {
		t.Errorf("the failed Job's status: conditions %v, failed %d, succeeded %d, active %d, startTime %v, completionTime %v; want %v, 2, 0, 0, set, none",
			types, st.Failed, st.Succeeded, st.Active, st.StartTime, st.CompletionTime, want)
	}
}
