package nodeagent

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
)

// Exec runs the command-line tools the datapath drives (nft, iptables-save, iptables-restore, ipset,
// sysctl) in the node's network namespace, feeding stdin and returning standard output. The agent uses
// HostExec; tests point it into a test namespace.
type Exec interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
}

// HostExec runs commands in the agent's own namespace (the host's, for a host-network agent).
type HostExec struct{}

// Run implements Exec; the error includes the command's standard error.
func (HostExec) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %v: %w: %s", name, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}
