package manager

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// ensureFinalizers puts the release finalizer on every live gateway, so that deleting one waits until
// its IPs are back in the cloud's hands. The optimistic lock keeps other owners' finalizers. It returns
// the gateways it could not patch, with the error: their IPs wait, the other gateways' do not.
func (c *Controller) ensureFinalizers(ctx context.Context, snap *snapshot) map[string]error {
	failed := map[string]error{}
	for _, gw := range snap.live {
		if controllerutil.ContainsFinalizer(gw, FinalizerReleaseIPs) {
			continue
		}
		if err := c.patchFinalizer(ctx, gw, controllerutil.AddFinalizer); err != nil {
			failed[gw.Name] = err
		}
	}
	return failed
}

// finishDeletions lets deleted gateways go once none of their IPs is held any more.
func (c *Controller) finishDeletions(ctx context.Context, snap *snapshot) error {
	var errs []error
	for _, gw := range snap.gateways {
		if gw.DeletionTimestamp == nil || !controllerutil.ContainsFinalizer(gw, FinalizerReleaseIPs) || !c.released(snap.ips[gw.Name]) {
			continue
		}
		c.log.Info("gateway deleted: all its egress IPs are released", "gateway", gw.Name)
		errs = append(errs, c.patchFinalizer(ctx, gw, controllerutil.RemoveFinalizer))
	}
	return errors.Join(errs...)
}

// released reports whether no IP of a deleted gateway is held any more, other than by a live gateway
// that also lists it.
func (c *Controller) released(ips gatewayIPs) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ip := range ips.claimed() {
		if st := c.ips[ip]; st != nil && st.gateway == "" && (!st.located || st.node != "" || st.target != "") {
			return false
		}
	}
	return true
}

func (c *Controller) patchFinalizer(ctx context.Context, gw *egressgwv1.EgressGateway, change func(client.Object, string) bool) error {
	if err := c.fence(); err != nil {
		return fmt.Errorf("finalizer of gateway %s: %w", gw.Name, err)
	}
	patched := gw.DeepCopy()
	change(patched, FinalizerReleaseIPs)
	err := c.client.Patch(ctx, patched, client.MergeFromWithOptions(gw, client.MergeFromWithOptimisticLock{}))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalizer of gateway %s: %w", gw.Name, err)
	}
	return nil
}
