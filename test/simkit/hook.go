package simkit

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"time"
)

// RunHook runs a command's -on-change shell command with env added to its environment, synchronously
// (so that a fabric route is in place before the simulator answers), for at most ten seconds. A failure
// is logged, not returned: the simulated cloud has already made the change.
func RunHook(command string, env []string, log *slog.Logger, about ...any) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Error("on-change command failed", append(about, "error", err, "output", fmt.Sprintf("%q", out))...)
	}
}

// AddrOrEmpty is a's text, or "" when a is not valid (an IP that left: no next hop).
func AddrOrEmpty(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
