package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldOwner is the manager's name in server-side apply.
const FieldOwner = "egressgw-manager"

// statusWriteTimeout bounds one status write. The API client has no timeout of its own (its watches
// last minutes), and a write hanging on a blackholed API server would hold the loop, and with it every
// later decision, for as long as the brownout lasts. A write takes milliseconds; one that fails is made
// again by the next sync.
const statusWriteTimeout = 2 * time.Second

// applyStatus sets the whole status of an object with server-side apply. Fields the manager set before
// and leaves out now are removed, whatever the cache held, so a stale cache cannot make a write lose
// part of the status. A deleted object is not an error.
func (c *Controller) applyStatus(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey, status any) error {
	if err := c.fence(); err != nil {
		return fmt.Errorf("status of %s %s: %w", gvk.Kind, key, err)
	}
	data, err := json.Marshal(status)
	if err != nil {
		return err
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": fields}}
	u.SetGroupVersionKind(gvk)
	u.SetName(key.Name)
	u.SetNamespace(key.Namespace)
	ctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
	defer cancel()
	err = c.client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("status of %s %s: %w", gvk.Kind, key, err)
	}
	return nil
}
