package cniconf

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Keep holds the entry in the node's CNI configuration until ctx ends: it installs it, then installs it
// again whenever the directory changes (the node's CNI rewrites its file when it restarts: the AWS VPC CNI
// writes 10-aws.conflist on every start, which drops the entry) and every resync interval as a backstop
// for missed events. Pods that start between such a rewrite and the re-install are not chained (the
// window is the time to notice one file event); docs/cni.md says so. Install errors are logged and retried.
func Keep(ctx context.Context, dir string, entry Entry, resync time.Duration, log *slog.Logger) error {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	defer watcher.Close()
	if err := watcher.Add(dir); err != nil {
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	ensure := func(reason string) {
		change, err := Install(dir, entry)
		switch {
		case err != nil:
			log.Error("egressgw-cni is not in the CNI configuration", "dir", dir, "reason", reason, "err", err)
		case change.Action != Unchanged:
			log.Info("egressgw-cni put into the CNI configuration", "file", change.File, "action", change.Action, "reason", reason)
		}
	}
	ensure("start")
	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-watcher.Events:
			if !ok {
				return fmt.Errorf("watching %s: the watcher closed", dir)
			}
			ensure("changed: " + ev.Name)
		case err := <-watcher.Errors:
			log.Warn("watching the CNI configuration directory", "dir", dir, "err", err)
		case <-ticker.C:
			ensure("resync")
		}
	}
}
