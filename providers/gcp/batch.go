package gcp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/coalesce"
	"github.com/egressgw/egressgw/providers/internal/retry"
)

// A node's nic0 is one object written whole (its alias list) with a fingerprint, so concurrent writes to
// it conflict: each but one gets 412 and starts over, and with zone operations of 2-5s, ten IPs failing
// over to one gateway one after the other would take ten operations. Instead, writes to one node queue,
// and the queue's runner applies all the edits waiting at that moment in one read-modify-write: one
// PATCH and one operation for the lot.

// request is one edit waiting for its node's batch.
type request = coalesce.Request[edit]

// editAliases applies fn to nic0's alias ranges, together with the edits other callers queued for the
// same node meanwhile (see editBatch; the queue waits Options.BatchWindow before a node's first batch, so
// that the edits a failover sends at once make one batch). It returns when its edit is done, or when ctx
// ends: the edit may then still happen, as after a lost answer.
func (p *Provider) editAliases(ctx context.Context, at attachment, what string, fn edit) error {
	done := p.queues.Add(ctx, at.ref.key(), fn, func(ctx context.Context, batch []*request) { p.editBatch(ctx, at, batch) })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// The batch shares the deadline and stops at it too: a moment more gives the caller its answer,
	// which says why the deadline came (throttled, unavailable) as the contract wants.
	select {
	case err := <-done:
		return err
	case <-time.After(answerGrace):
		return fmt.Errorf("%s on node %s: %w", what, at.node, ctx.Err())
	}
}

// answerGrace is how long a caller whose context ended still waits for the batch's answer.
const answerGrace = 100 * time.Millisecond

// editBatch is the read-modify-write of nic0's alias ranges for a batch of edits: read the NIC (ranges and
// fingerprint), apply every edit in turn (an edit that fails, or has nothing to do, is answered at once
// and leaves the others alone), PATCH the result with that fingerprint, and wait for the operation. A
// fingerprint conflict or a busy VM starts over from a fresh read, so no concurrent change is overwritten.
// When the operation refuses a batch of several edits, each is tried alone, so one bad IP does not fail
// the others.
func (p *Provider) editBatch(ctx context.Context, at attachment, batch []*request) {
	for attempt := 0; ; attempt++ {
		nic, err := p.readNIC(ctx, at)
		if err != nil {
			coalesce.Answer(batch, err)
			return
		}
		ranges, active := applyEdits(nic, batch)
		if len(active) == 0 {
			return
		}
		err = p.patchAliases(ctx, at, nic.GetFingerprint(), ranges)
		switch {
		case errors.Is(err, errRetryEdit):
			d := p.opts.Backoff.Delay(attempt)
			p.log.Debug("writing nic0 again", "node", at.node, "edits", len(active), "attempt", attempt+1, "delay", d, "error", err)
			if serr := retry.Sleep(ctx, d); serr != nil {
				coalesce.Answer(active, fmt.Errorf("gave up: %w: %w (%w)", providers.ErrUnavailable, err, serr))
				return
			}
			batch = active
		case err != nil && len(active) > 1 && !providers.Retryable(err):
			for _, r := range active {
				p.editBatch(ctx, at, []*request{r})
			}
			return
		default:
			coalesce.Answer(active, err)
			return
		}
	}
}

// applyEdits runs each edit on the ranges the previous ones left, answering those that fail or have
// nothing to do; it returns the final ranges and the edits that changed them.
func applyEdits(nic *computepb.NetworkInterface, batch []*request) ([]*computepb.AliasIpRange, []*request) {
	ranges := nic.AliasIpRanges
	var active []*request
	for _, r := range batch {
		view := &computepb.NetworkInterface{Name: nic.Name, NetworkIP: nic.NetworkIP, AliasIpRanges: ranges}
		next, done, err := r.Edit(view)
		switch {
		case err != nil:
			r.Answer(err)
		case done:
			r.Answer(nil)
		default:
			ranges, active = next, append(active, r)
		}
	}
	return ranges, active
}
