package agent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// The agent uses client-go informers directly rather than controller-runtime's cache (docs/agent.md):
// the cluster-wide pod informer of a gateway candidate is started and stopped on its own while the
// other informers run, the view builder reads the indexers' objects in place (the cache's List copies
// every object it returns), and an agent needs none of a controller manager's machinery. The list and
// watch calls go through a controller-runtime client so that the egressgw types need no generated
// clientset.

// listWatch lists and watches one type through c, with opts' field selector applied to both.
func listWatch(c client.WithWatch, newList func() client.ObjectList, fieldSelector fields.Selector) *toolscache.ListWatch {
	options := func(o metav1.ListOptions) *client.ListOptions {
		if fieldSelector != nil {
			o.FieldSelector = fieldSelector.String()
		}
		return &client.ListOptions{Raw: &o}
	}
	return &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (k8sruntime.Object, error) {
			l := newList()
			return l, c.List(ctx, l, options(o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, newList(), options(o))
		},
	}
}

// newInformer builds an informer with a namespace index and the transform applied before objects are
// stored.
func newInformer(lw toolscache.ListerWatcher, example k8sruntime.Object, transform toolscache.TransformFunc) (toolscache.SharedIndexInformer, error) {
	inf := toolscache.NewSharedIndexInformer(lw, example, 0,
		toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	if err := inf.SetTransform(transform); err != nil {
		return nil, fmt.Errorf("informer transform for %T: %w", example, err)
	}
	return inf, nil
}

func policyInformer(c client.WithWatch) (toolscache.SharedIndexInformer, error) {
	return newInformer(listWatch(c, func() client.ObjectList { return &egressgwv1.EgressPolicyList{} }, nil),
		&egressgwv1.EgressPolicy{}, stripMeta)
}

func gatewayInformer(c client.WithWatch) (toolscache.SharedIndexInformer, error) {
	return newInformer(listWatch(c, func() client.ObjectList { return &egressgwv1.EgressGatewayList{} }, nil),
		&egressgwv1.EgressGateway{}, stripMeta)
}

func nodeInformer(c client.WithWatch) (toolscache.SharedIndexInformer, error) {
	return newInformer(listWatch(c, func() client.ObjectList { return &corev1.NodeList{} }, nil), &corev1.Node{}, stripNode)
}

func serviceCIDRInformer(c client.WithWatch) (toolscache.SharedIndexInformer, error) {
	return newInformer(listWatch(c, func() client.ObjectList { return &networkingv1.ServiceCIDRList{} }, nil),
		&networkingv1.ServiceCIDR{}, stripMeta)
}

// podInformer watches the pods of one node (node != "") or of the whole cluster (node == ""). It
// receives Pods (the reflector checks the type) and stores PodInfos (the transform).
func podInformer(c client.WithWatch, node string) (toolscache.SharedIndexInformer, error) {
	var sel fields.Selector
	if node != "" {
		sel = fields.OneTermEqualSelector("spec.nodeName", node)
	}
	return newInformer(listWatch(c, func() client.ObjectList { return &corev1.PodList{} }, sel), &corev1.Pod{}, stripPod)
}

// waitForSync waits until every informer has synced, or ctx ends.
func waitForSync(ctx context.Context, infs ...toolscache.SharedIndexInformer) error {
	synced := make([]toolscache.InformerSynced, len(infs))
	for i, inf := range infs {
		synced[i] = inf.HasSynced
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("informer caches did not sync: %w", context.Cause(ctx))
	}
	return nil
}

// listAll returns every object of an informer's store as T.
func listAll[T any](inf toolscache.SharedIndexInformer) []T {
	items := inf.GetStore().List()
	out := make([]T, 0, len(items))
	for _, it := range items {
		if o, ok := it.(T); ok {
			out = append(out, o)
		}
	}
	return out
}

// byNamespace returns the objects of an informer in one namespace, as they are stored (not copied).
func byNamespace[T any](inf toolscache.SharedIndexInformer, ns string) []T {
	items, err := inf.GetIndexer().ByIndex(toolscache.NamespaceIndex, ns)
	if err != nil {
		return nil
	}
	out := make([]T, 0, len(items))
	for _, it := range items {
		if o, ok := it.(T); ok {
			out = append(out, o)
		}
	}
	return out
}
