// Package e2e runs egressgw end to end on the lab (test/lab): the real binaries as processes, a real API
// server, the EC2 simulator, the AWS VPC CNI's rules, pods through libcni, and a firewall that records the
// source of every request. The tests share one lab and run in file order; each asserts on what the
// firewall saw and on the API objects, and logs the figures it measured.
package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/egressgw/egressgw/test/envtest"
	"github.com/egressgw/egressgw/test/lab"
	"github.com/egressgw/egressgw/test/netlab"
)

var (
	theLab     *lab.Lab
	skipReason string
	upErr      error
	progress   bytes.Buffer
)

func TestMain(m *testing.M) {
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root: the lab builds network namespaces, iptables rules and VXLAN devices"
	case os.Getenv("KUBEBUILDER_ASSETS") == "":
		skipReason = "KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(make -s envtest-assets)"
	}
	state := ""
	if skipReason == "" {
		var err error
		if state, err = os.MkdirTemp("", "egressgw-e2e-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		theLab, upErr = lab.Up(context.Background(), lab.Config{Prefix: netlab.RandomPrefix(), StateDir: state,
			Assets: os.Getenv("KUBEBUILDER_ASSETS"), RepoRoot: envtest.RepoRoot(), Out: &progress})
	}
	code := m.Run()
	if theLab != nil {
		if err := theLab.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "close the lab: %v\n", err)
			code = 1
		}
	}
	if code != 0 && state != "" {
		fmt.Fprintf(os.Stderr, "the lab's progress:\n%s\nits logs are kept in %s/logs\n", progress.String(), state)
	} else if state != "" {
		_ = os.RemoveAll(state)
	}
	os.Exit(code)
}

// needLab returns the shared lab, or skips (saying why) or fails when there is none.
func needLab(t *testing.T) *lab.Lab {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if upErr != nil {
		t.Fatalf("the lab did not start: %v\n%s", upErr, progress.String())
	}
	return theLab
}
