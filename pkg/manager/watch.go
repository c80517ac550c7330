package manager

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// watch asks for a sync on every change that can alter a decision. Changes the manager makes itself
// (status) and the constant churn of Node heartbeats are filtered out, so that a large cluster does not
// keep the loop busy.
func (c *Controller) watch(ctx context.Context) error {
	filters := []struct {
		obj     client.Object
		changed func(old, new client.Object) bool
	}{
		{&egressgwv1.EgressGateway{}, specOrLifecycleChanged},
		{&egressgwv1.EgressPolicy{}, specOrLifecycleChanged},
		{&corev1.Namespace{}, labelsChanged},
		{&corev1.Node{}, nodeChanged},
	}
	for _, f := range filters {
		inf, err := c.informers.GetInformer(ctx, f.obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", f.obj, err)
		}
		changed := f.changed
		_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.kick() },
			DeleteFunc: func(any) { c.kick() },
			UpdateFunc: func(old, new any) {
				o, ok1 := old.(client.Object)
				n, ok2 := new.(client.Object)
				if !ok1 || !ok2 || changed(o, n) {
					c.kick()
				}
			},
		})
		if err != nil {
			return fmt.Errorf("watch %T: %w", f.obj, err)
		}
	}
	return nil
}

func specOrLifecycleChanged(old, new client.Object) bool {
	return old.GetGeneration() != new.GetGeneration() ||
		!old.GetDeletionTimestamp().Equal(new.GetDeletionTimestamp()) ||
		!slices.Equal(old.GetFinalizers(), new.GetFinalizers()) ||
		labelsChanged(old, new)
}

func labelsChanged(old, new client.Object) bool {
	return !maps.Equal(old.GetLabels(), new.GetLabels())
}

// nodeChanged reports changes of what eligibility, placement and probing read from a Node.
func nodeChanged(old, new client.Object) bool {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := new.(*corev1.Node)
	if !ok1 || !ok2 {
		return true
	}
	return specOrLifecycleChanged(o, n) ||
		o.Spec.Unschedulable != n.Spec.Unschedulable ||
		o.Spec.ProviderID != n.Spec.ProviderID ||
		!equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) ||
		!equality.Semantic.DeepEqual(o.Status.Addresses, n.Status.Addresses) ||
		nodeReady(o) != nodeReady(n)
}
