package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sweep removes what a lab with this prefix and state folder left behind when it was killed: processes
// that carry its marker (agents, managers, the firewall's server, kube-apiserver, etcd) and network
// namespaces whose names start with the prefix. It returns what it removed.
func Sweep(prefix, stateDir string) ([]string, error) {
	var removed, scratch []string
	var errs []error
	marker := []byte(MarkerEnv + "=" + stateDir + "\x00")
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	self := os.Getpid()
	for _, path := range procs {
		pid, err := strconv.Atoi(strings.Split(path, "/")[2])
		if err != nil || pid == self || pid == os.Getppid() {
			continue
		}
		env, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, marker...)) {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			removed = append(removed, fmt.Sprintf("process %d (%s)", pid, strings.TrimSpace(string(comm))))
			scratch = append(scratch, envtestScratch(cmdline)...)
		}
	}
	if len(removed) > 0 {
		time.Sleep(200 * time.Millisecond) // let the kernel reap them before their namespaces go
	}
	for _, dir := range scratch {
		if err := os.RemoveAll(dir); err == nil {
			removed = append(removed, "folder "+dir)
		}
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix+"-") {
			continue
		}
		if out, err := exec.Command("ip", "netns", "delete", e.Name()).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns delete %s: %v: %s", e.Name(), err, out))
			continue
		}
		removed = append(removed, "network namespace "+e.Name())
	}
	return removed, errors.Join(errs...)
}

// envtestScratch are the temporary folders (etcd's data, the API server's certificates) an envtest process
// was started with, which its own Stop would have removed.
func envtestScratch(cmdline []byte) []string {
	var dirs []string
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		for _, flag := range []string{"--data-dir=", "--cert-dir="} {
			dir, ok := strings.CutPrefix(arg, flag)
			if ok && strings.HasPrefix(filepath.Base(dir), "k8s_test_framework_") && filepath.Dir(dir) == filepath.Clean(os.TempDir()) {
				dirs = append(dirs, dir)
			}
		}
	}
	return dirs
}
