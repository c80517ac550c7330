package manager_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
)

// managerRules are the chart's manager permissions (charts/egressgw/templates/rbac-manager.yaml) that are
// cluster-wide.
var managerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"egressgw.io"}, Resources: []string{"egressgateways"}, Verbs: []string{"get", "list", "watch", "patch"}},
	{APIGroups: []string{"egressgw.io"}, Resources: []string{"egresspolicies"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"egressgw.io"}, Resources: []string{"egressgateways/status", "egresspolicies/status"}, Verbs: []string{"patch"}},
	{APIGroups: []string{""}, Resources: []string{"nodes", "namespaces"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
}

// grant gives user the rules, cluster-wide when namespace is empty, else in that namespace.
func (c *cluster) grant(user, name, namespace string, rules []rbacv1.PolicyRule) {
	c.t.Helper()
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: user, APIGroup: rbacv1.GroupName}}
	meta := metav1.ObjectMeta{Name: name, Namespace: namespace}
	if namespace == "" {
		c.create(&rbacv1.ClusterRole{ObjectMeta: meta, Rules: rules})
		c.create(&rbacv1.ClusterRoleBinding{ObjectMeta: meta, Subjects: subject, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}})
		return
	}
	c.create(&rbacv1.Role{ObjectMeta: meta, Rules: rules})
	c.create(&rbacv1.RoleBinding{ObjectMeta: meta, Subjects: subject, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}})
}

// TestMissingPermissionIsNamed runs the manager as a user with the chart's permissions but the Role on
// the kubelets' Leases in kube-node-lease (as a hand-made RBAC or a failed upgrade leaves it): the manager
// cannot sync its cache and places nothing, and it must say why: /readyz fails on "permissions" and a
// Warning Event on its Lease names the verb, resource and namespace. Once granted, it places the IP.
func TestMissingPermissionIsNamed(t *testing.T) {
	cloud := fakeCloud([]int{1, 1}, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(2)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	const user = "egressgw-test-manager"
	c.grant(user, "egressgw-manager", "", managerRules)
	c.grant(user, "egressgw-manager-leader", "default", []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	})
	c.apiConfig = c.env.AddUser(t, user)
	probes := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.startManager("m1", func(o *manager.RunOptions) { o.ProbeAddr = probes })

	c.eventually("/readyz to fail on the permissions check", func() (bool, string) {
		code, body := readyz(probes)
		return code != http.StatusOK && strings.Contains(body, "[-]permissions failed"), fmt.Sprintf("%d %s", code, body)
	})
	want := "list leases (API group coordination.k8s.io) in namespace kube-node-lease"
	c.eventually("an Event naming the missing permission", func() (bool, string) {
		var list corev1.EventList
		if err := c.env.Client.List(context.Background(), &list, client.InNamespace("default")); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Reason == "PermissionDenied" && e.Type == corev1.EventTypeWarning && e.InvolvedObject.Kind == "Lease" &&
				e.InvolvedObject.Name == "egressgw-manager" && strings.Contains(e.Message, want) {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return false, strings.Join(seen, "\n")
	})
	if a := assignment(c.gateway("gw"), "10.0.1.50"); a.Node != "" {
		t.Fatalf("placed without its cache: %+v", a)
	}

	c.grant(user, "egressgw-manager-node-leases", manager.NodeLeaseNamespace, []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch"}}})
	c.eventually("the IP placed once the permission is granted", func() (bool, string) {
		a := assignment(c.gateway("gw"), "10.0.1.50")
		return a.State == egressgwv1.AssignmentAssigned, fmt.Sprintf("%+v", a)
	})
	c.eventually("/readyz to pass", func() (bool, string) {
		code, body := readyz(probes)
		return code == http.StatusOK, body
	})
}

func readyz(addr string) (int, string) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
