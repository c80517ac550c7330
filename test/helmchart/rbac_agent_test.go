package helmchart

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/egressgw/egressgw/test/envtest"
)

// agentReads are the API calls the agent makes (pkg/agent/informers.go: a list and a watch per
// informer, its own pods by field selector and every pod while a gateway candidate; pkg/agent/cni.go:
// a GET of the pod a CNI ADD names). The agent writes nothing.
var agentReads = []struct {
	resource  schema.GroupVersionResource
	namespace string
	verb      string // list, watch, get
	options   metav1.ListOptions
}{
	{schema.GroupVersionResource{Group: "egressgw.io", Version: "v1alpha1", Resource: "egresspolicies"}, "", "list", metav1.ListOptions{}},
	{schema.GroupVersionResource{Group: "egressgw.io", Version: "v1alpha1", Resource: "egresspolicies"}, "", "watch", metav1.ListOptions{}},
	{schema.GroupVersionResource{Group: "egressgw.io", Version: "v1alpha1", Resource: "egressgateways"}, "", "list", metav1.ListOptions{}},
	{schema.GroupVersionResource{Group: "egressgw.io", Version: "v1alpha1", Resource: "egressgateways"}, "", "watch", metav1.ListOptions{}},
	{schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, "", "list", metav1.ListOptions{}},
	{schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, "", "watch", metav1.ListOptions{}},
	{schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "servicecidrs"}, "", "list", metav1.ListOptions{}},
	{schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "servicecidrs"}, "", "watch", metav1.ListOptions{}},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "", "list", metav1.ListOptions{FieldSelector: "spec.nodeName=node-a"}},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "", "watch", metav1.ListOptions{FieldSelector: "spec.nodeName=node-a"}},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "", "list", metav1.ListOptions{}},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "", "watch", metav1.ListOptions{}},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "default", "get", metav1.ListOptions{}},
}

// TestAgentReadsUnderTheChartRBAC makes every API call of the agent with a token of the chart's agent
// ServiceAccount: all are allowed; then, with each verb of each rule of its ClusterRole removed in turn,
// some call is forbidden. (The agent itself needs root and a node's network namespace; the lab runs it under this
// token.)
func TestAgentReadsUnderTheChartRBAC(t *testing.T) {
	env := envtest.Start(t)
	r, err := Render(mustSet(t, awsOK), Options{Namespace: releaseNamespace})
	if err != nil {
		t.Fatal(err)
	}
	applyRBAC(t, env, r)
	dc, err := dynamic.NewForConfig(serviceAccountConfig(t, env, "egressgw-agent"))
	if err != nil {
		t.Fatal(err)
	}
	if refused := refusedAgentReads(dc); len(refused) > 0 {
		t.Fatalf("under the chart's RBAC the agent may not: %s", strings.Join(refused, "; "))
	}
	full := roleRules(t, env, "ClusterRole", "", "egressgw-agent")
	forEachVerb(full, func(rule rbacv1.PolicyRule, verb string, reduced []rbacv1.PolicyRule) {
		t.Run(fmt.Sprintf("without %v %v %s", rule.APIGroups, rule.Resources, verb), func(t *testing.T) {
			setRoleRules(t, env, "ClusterRole", "", "egressgw-agent", reduced)
			defer setRoleRules(t, env, "ClusterRole", "", "egressgw-agent", full)
			if refused := refusedAgentReads(dc); len(refused) == 0 {
				t.Error("every agent call is still allowed: the verb is not needed")
			} else {
				t.Logf("refused without it: %s", strings.Join(refused, "; "))
			}
		})
	})
}

// refusedAgentReads makes each call and returns those the API server refused as forbidden (a pod that
// does not exist is an allowed GET).
func refusedAgentReads(dc dynamic.Interface) []string {
	var refused []string
	for _, c := range agentReads {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ri := dc.Resource(c.resource).Namespace(c.namespace)
		var err error
		switch c.verb {
		case "list":
			_, err = ri.List(ctx, c.options)
		case "watch":
			var w interface{ Stop() }
			if w, err = ri.Watch(ctx, c.options); err == nil {
				w.Stop()
			}
		case "get":
			_, err = ri.Get(ctx, "some-pod", metav1.GetOptions{})
		}
		cancel()
		if apierrors.IsForbidden(err) {
			refused = append(refused, fmt.Sprintf("%s %s %s", c.verb, c.resource.Resource, c.options.FieldSelector))
		}
	}
	return refused
}
