package cniconf

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// TestKeepReinstallsAfterTheCNIRewritesItsFile: the node's CNI writes its conflist again (as the AWS VPC
// CNI does on every start) and the entry comes back without waiting for the resync.
func TestKeepReinstallsAfterTheCNIRewritesItsFile(t *testing.T) {
	dir := t.TempDir()
	original := awsStyleConflist(t)
	path := writeConf(t, dir, "10-aws.conflist", original, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Keep(ctx, dir, testEntry, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() { cancel(); <-done })

	waitForEntry(t, path)
	// The CNI copies its file over ours in place (cmd/aws-vpc-cni copies /tmp/10-aws.conflist), no entry.
	if err := os.WriteFile(path, original, 0o644); err != nil {
		t.Fatal(err)
	}
	waitForEntry(t, path)
}

func waitForEntry(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if types := pluginTypes(t, path); types[len(types)-1] == PluginType {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the entry did not come back into %s", path)
}
