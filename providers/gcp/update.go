package gcp

import (
	"context"
	"fmt"
	"slices"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/google/uuid"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/retry"
)

// edit computes nic0's new alias ranges from the current ones; done means there is nothing to change.
type edit func(nic *computepb.NetworkInterface) (ranges []*computepb.AliasIpRange, done bool, err error)

// patchAliases sends updateNetworkInterface with only the fingerprint and the alias ranges, the latter
// even when empty, and waits for its operation. Retries of the same request keep its requestId, so that
// a request whose answer was lost is not applied twice.
func (p *Provider) patchAliases(ctx context.Context, at attachment, fingerprint string, ranges []*computepb.AliasIpRange) error {
	reqID := uuid.NewString()
	req := &computepb.UpdateNetworkInterfaceInstanceRequest{Project: at.ref.project, Zone: at.ref.zone, Instance: at.ref.name,
		NetworkInterface: egressNIC, RequestId: &reqID,
		NetworkInterfaceResource: &computepb.NetworkInterface{Fingerprint: &fingerprint, AliasIpRanges: ranges}}
	op, err := call(ctx, p, groupWrite, "instances.updateNetworkInterface", func(ctx context.Context) (*compute.Operation, error) {
		return p.instances.UpdateNetworkInterface(withEmptyFields(ctx, "aliasIpRanges"), req, noRetry)
	})
	if err != nil {
		return fmt.Errorf("node %s (instance %s): %w", at.node, at.ref.key(), err)
	}
	return p.waitOperation(ctx, at, op.Proto())
}

// waitOperation polls the zone operation every PollInterval until it is DONE, and returns its error.
// The wait is bounded by OperationTimeout: an operation on a hung VM, or one being deleted, may never
// finish, and a failover must hear about it rather than wait.
func (p *Provider) waitOperation(ctx context.Context, at attachment, op *computepb.Operation) error {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, p.opts.OperationTimeout)
	defer cancel()
	for op.GetStatus() != computepb.Operation_DONE {
		if err := retry.Sleep(wctx, p.opts.PollInterval); err != nil {
			return p.stuck(at, op, time.Since(start), err)
		}
		next, err := call(wctx, p, groupOperations, "zoneOperations.get", func(ctx context.Context) (*computepb.Operation, error) {
			return p.operations.Get(ctx, &computepb.GetZoneOperationRequest{Project: at.ref.project, Zone: at.ref.zone, Operation: op.GetName()}, noRetry)
		})
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return p.stuck(at, op, time.Since(start), err)
			}
			return fmt.Errorf("node %s: %w", at.node, err)
		}
		op = next
	}
	if err := operationError(op); err != nil {
		return fmt.Errorf("node %s (instance %s): %w", at.node, at.ref.key(), err)
	}
	return nil
}

// stuck reports an operation that did not finish in time. Whether it will still take effect is unknown,
// so the caller must ask the cloud (Locate) before acting on the IP elsewhere.
func (p *Provider) stuck(at attachment, op *computepb.Operation, waited time.Duration, why error) error {
	p.log.Warn("zone operation did not finish", "node", at.node, "instance", at.ref.key(), "operation", op.GetName(),
		"status", op.GetStatus().String(), "waited", waited.Round(time.Millisecond))
	return fmt.Errorf("node %s (instance %s): operation %s is still %s after %s; the VM may be hung or being deleted, and the change may or may not happen: %w (%w)",
		at.node, at.ref.key(), op.GetName(), op.GetStatus(), waited.Round(time.Millisecond), providers.ErrUnavailable, why)
}

// without returns ranges less the /32 of ip, keeping every other range (GKE's pod range) as it is.
func without(ranges []*computepb.AliasIpRange, i int) []*computepb.AliasIpRange {
	return slices.Delete(slices.Clone(ranges), i, i+1)
}
