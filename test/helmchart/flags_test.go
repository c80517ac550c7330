package helmchart

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/egressgw/egressgw/test/envtest"
)

// TestChartFlagsExistInBinaries runs the real binaries with each matrix case's rendered command line
// and environment. Every flag must parse and the whole command line must pass the binary's validation:
// each binary then stops at its first step after validation, reading the Kubernetes API configuration,
// which the test withholds. A flag the binary does not know, or a combination it refuses, exits 2 with
// "invalid flags" instead.
func TestChartFlagsExistInBinaries(t *testing.T) {
	bin := buildBinaries(t, "./cmd/manager", "./cmd/agent", "./cmd/uninstall-wait")
	for _, tc := range matrix {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Render(mustSet(t, tc.sets...), Options{})
			if err != nil {
				t.Fatal(err)
			}
			runRendered(t, bin, managerContainer(t, r), nil)
			runRendered(t, bin, agentContainer(t, r), nil)
			if r.Find("DaemonSet", "egressgw-uninstall") == nil {
				return
			}
			un := mustContainer(t, r, "DaemonSet", "egressgw-uninstall", "uninstall")
			if script := strings.Join(un.Command, " "); !strings.Contains(script, `egressgw-agent uninstall "$@"`) {
				t.Errorf("the uninstall hook's command does not run egressgw-agent uninstall with its args: %s", script)
			}
			// The hook's flags are checked by `run`, which validates the same flags: running
			// `uninstall` here would strip this machine's own datapath.
			runRendered(t, bin, &corev1.Container{Name: "uninstall", Command: []string{"/usr/local/bin/egressgw-agent"},
				Args: append([]string{"run"}, un.Args...)}, map[string]string{"NODE_NAME": "node-a"})
			runRendered(t, bin, mustContainer(t, r, "Job", "egressgw-uninstall-wait", "wait"), nil)
		})
	}
}

// runRendered runs a rendered container's binary (from bin, by the command's base name) with its args
// and env, downward API fields set to plausible values, and no way to reach an API server.
func runRendered(t *testing.T, bin string, c *corev1.Container, extraEnv map[string]string) {
	t.Helper()
	p := ContainerProcess(c, map[string]string{"spec.nodeName": "node-a", "status.hostIP": "127.0.0.1",
		"metadata.namespace": "egressgw-system"})
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "KUBECONFIG=" + filepath.Join(t.TempDir(), "no-kubeconfig")}
	for k, v := range p.Env {
		env = append(env, k+"="+v)
	}
	for k, v := range extraEnv {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(filepath.Join(bin, filepath.Base(p.Argv[0])), p.Argv[1:]...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "kubernetes API configuration") {
		t.Errorf("%s %s: want exit 1 at \"kubernetes API configuration\" (flags valid), got %v:\n%s", c.Name, strings.Join(p.Argv[1:], " "), err, out)
	}
}

// buildBinaries builds the packages into one directory, each binary named as in the images.
func buildBinaries(t *testing.T, pkgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	names := map[string]string{"./cmd/manager": "egressgw-manager", "./cmd/agent": "egressgw-agent",
		"./cmd/uninstall-wait": "egressgw-uninstall-wait", "./cmd/cni": "egressgw-cni"}
	for _, p := range pkgs {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, names[p]), p)
		cmd.Dir = envtest.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", p, err, out)
		}
	}
	return dir
}
