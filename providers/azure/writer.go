package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/coalesce"
	"github.com/egressgw/egressgw/providers/internal/retry"
)

// edit changes a fresh read of a NIC in place for one Assign or Release. It reports whether it changed
// anything; an error refuses this edit alone.
type edit func(nic *armnetwork.Interface) (bool, error)

// change is one edit waiting for the NIC write that carries it (see submit).
type change = coalesce.Request[edit]

// submit queues an edit of at's NIC and waits for the write that carries it, or for ctx. While a write is
// in flight, new edits queue, and the next write carries all of them: a NIC takes one write at a time
// anyway (Azure answers another with RetryableErrorDueToAnotherOperation). The write runs to the latest
// deadline of its edits even when a caller gives up.
func (p *Provider) submit(ctx context.Context, at attachment, what string, e edit) error {
	done := p.writers.Add(ctx, at.nicID, e, func(ctx context.Context, batch []*change) { p.writeBatch(ctx, at, batch) })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s on node %s: %w: %w", what, at.node, providers.ErrUnavailable, ctx.Err())
	}
}

func (p *Provider) writeBatch(ctx context.Context, at attachment, batch []*change) {
	errs, err := p.readModifyWrite(ctx, at, batch)
	if err != nil && len(batch) > 1 && !providers.Retryable(err) {
		// One edit's refusal (an address in use, a missing public IP) must not fail the others: alone, each
		// meets its own answer, by its own deadline.
		for _, ch := range batch {
			one, cancel := context.WithDeadline(context.Background(), ch.Deadline())
			p.writeBatch(one, at, []*change{ch})
			cancel()
		}
		return
	}
	for i, ch := range batch {
		ch.Answer(errors.Join(errs[i], err))
	}
}

// readModifyWrite applies the batch to a fresh read of the NIC and writes it with the read's ETag; a
// write that meets another writer's change (412) or fails as an operation is redone on a fresh read.
// It returns each edit's own refusal, and the write's error.
func (p *Provider) readModifyWrite(ctx context.Context, at attachment, batch []*change) ([]error, error) {
	for attempt := 0; ; attempt++ {
		nic, err := p.settledNIC(ctx, at)
		if err != nil {
			if isNotFound(err) {
				p.forget(at) // the VM may come back with another NIC: resolve it again next time
			}
			return make([]error, len(batch)), err
		}
		errs, changed := applyAll(&nic, batch)
		if !changed {
			return errs, nil
		}
		err = p.writeNIC(ctx, at, nic)
		switch {
		case err == nil:
			p.log.Info("wrote egress ip configurations", "node", at.node, "nic", at.nicNam, "changes", len(batch))
			return errs, nil
		case errors.Is(err, errETagConflict):
			p.log.Debug("network interface changed since it was read; reading it again", "node", at.node, "nic", at.nicNam)
			continue
		case !providers.Retryable(err):
			return errs, err
		}
		if serr := retry.Sleep(ctx, p.opts.Backoff.Delay(attempt)); serr != nil {
			return errs, fmt.Errorf("%w (gave up: %w)", err, serr)
		}
	}
}

// settledNIC reads the NIC until no write is in progress on it. While one is (provisioningState
// Updating), the NIC already shows that write's outcome, which is not yet true: an edit that finds itself
// done there would report success too early, and a new write would be refused as another operation.
func (p *Provider) settledNIC(ctx context.Context, at attachment) (armnetwork.Interface, error) {
	for {
		nic, err := p.getNIC(ctx, at)
		if err != nil || !updating(nic) {
			return nic, err
		}
		if err := retry.Sleep(ctx, p.opts.PollInterval); err != nil {
			return nic, fmt.Errorf("node %s: NIC %s is still being updated by another operation: %w: %w", at.node, at.nicNam, providers.ErrUnavailable, err)
		}
	}
}

func updating(nic armnetwork.Interface) bool {
	if nic.Properties == nil {
		return false
	}
	ps := nic.Properties.ProvisioningState
	return ps != nil && (*ps == armnetwork.ProvisioningStateUpdating || *ps == armnetwork.ProvisioningStateDeleting)
}

func applyAll(nic *armnetwork.Interface, batch []*change) ([]error, bool) {
	errs := make([]error, len(batch))
	changed := false
	for i, ch := range batch {
		c, err := ch.Edit(nic)
		errs[i], changed = err, changed || c
	}
	return errs, changed
}

// writeNIC PUTs the NIC with If-Match (armnetwork has no option for it, so the header rides on the
// request's context) and waits for the operation, polling at the provider's interval.
func (p *Provider) writeNIC(ctx context.Context, at attachment, nic armnetwork.Interface) error {
	what := "write network interface " + at.nicNam
	put := policy.WithHTTPHeader(ctx, http.Header{"If-Match": []string{deref(nic.Etag)}})
	poller, err := call(put, p, true, what, func(ctx context.Context) (*runtime.Poller[armnetwork.InterfacesClientCreateOrUpdateResponse], error) {
		return p.nics.BeginCreateOrUpdate(ctx, at.nicRG, at.nicNam, nic, nil)
	})
	if err != nil {
		return fmt.Errorf("node %s: %w", at.node, err)
	}
	return p.waitOperation(ctx, at, what, poller)
}

// waitOperation polls a NIC write every PollInterval until it ends. It does not wait for the Retry-After
// of 10 s that the Network resource provider sends with every answer about a running operation (the
// SDK's PollUntilDone would, whatever its Frequency): a failover waits for two such operations.
func (p *Provider) waitOperation(ctx context.Context, at attachment, what string, poller *runtime.Poller[armnetwork.InterfacesClientCreateOrUpdateResponse]) error {
	for !poller.Done() {
		if err := retry.Sleep(ctx, p.opts.PollInterval); err != nil {
			return fmt.Errorf("node %s: %s still running: %w: %w", at.node, what, providers.ErrUnavailable, err)
		}
		if _, err := call(ctx, p, false, "poll "+what, poller.Poll); err != nil {
			return fmt.Errorf("node %s: %w", at.node, err)
		}
	}
	if _, err := poller.Result(ctx); err != nil {
		return fmt.Errorf("node %s: %w", at.node, classify(what+" (operation)", err))
	}
	return nil
}
