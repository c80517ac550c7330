// Package uninstallwait waits until a DaemonSet runs a ready pod on every node it is scheduled to. The
// chart's uninstall hook uses it: helm waits for Jobs, not for DaemonSets, so a Job waits until the hook
// DaemonSet has run `egressgw-agent uninstall` on every node (its pods turn ready only afterwards).
package uninstallwait

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RolledOut reports whether every node the DaemonSet's controller scheduled it to runs a ready pod of
// its current generation, and if not, what is still missing (for the log and the error).
func RolledOut(ds *appsv1.DaemonSet) (bool, string) {
	st := ds.Status
	switch {
	case st.ObservedGeneration < ds.Generation:
		return false, fmt.Sprintf("the DaemonSet controller has not seen generation %d yet", ds.Generation)
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d nodes run the current pod", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberReady < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d nodes are done", st.NumberReady, st.DesiredNumberScheduled)
	}
	return true, fmt.Sprintf("%d of %d nodes are done", st.NumberReady, st.DesiredNumberScheduled)
}

// Wait polls the DaemonSet until RolledOut or until ctx ends; the error then says what was missing.
func Wait(ctx context.Context, c client.Reader, key client.ObjectKey, poll time.Duration, log *slog.Logger) error {
	last := "the DaemonSet was not read yet"
	for {
		var ds appsv1.DaemonSet
		err := c.Get(ctx, key, &ds)
		switch {
		case err != nil && ctx.Err() == nil:
			last = fmt.Sprintf("reading DaemonSet %s: %v", key, err)
			log.Warn("cannot read the DaemonSet; retrying", "daemonset", key.String(), "err", err)
		case err == nil:
			done, why := RolledOut(&ds)
			if done {
				log.Info("every node is done", "daemonset", key.String(), "status", why)
				return nil
			}
			if why != last {
				log.Info("waiting", "daemonset", key.String(), "status", why)
			}
			last = why
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("DaemonSet %s not done: %s: %w", key, last, ctx.Err())
		case <-time.After(poll):
		}
	}
}
