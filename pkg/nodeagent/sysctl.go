package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vishvananda/netlink"
)

// DefaultProcSysDir is where the kernel's settings are when the agent's /proc/sys is writable (a
// privileged container, or a process on the node).
const DefaultProcSysDir = "/proc/sys"

// sysctl is one kernel setting: its path under /proc/sys (a device name may hold dots, such as
// eth0.100, so the path keeps slashes) and the value it must have.
type sysctl struct{ path, value string }

// wantSysctls are the kernel settings the datapath needs: forwarding, and loose reverse-path filtering
// on the tunnel device and the egress interface, because packets arrive there with pod or internet
// source addresses whose route points elsewhere (the effective value is the maximum of "all" and the
// device's, so 2 wins over 1).
func (dp *Datapath) wantSysctls(egress netlink.Link) []sysctl {
	want := []sysctl{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/conf/" + dp.cfg.Device + "/rp_filter", "2"},
	}
	if egress != nil {
		want = append(want, sysctl{"net/ipv4/conf/" + egress.Attrs().Name + "/rp_filter", "2"})
	}
	return want
}

// ensureSysctls writes the settings that differ, through the files under the configured proc-sys
// directory, in the datapath's network namespace (a file under /proc/sys/net belongs to the network
// namespace of the thread that opens it).
func (dp *Datapath) ensureSysctls(_ context.Context, egress netlink.Link) (int, error) {
	var n int
	err := dp.inNamespace(func() (err error) {
		n, err = ensureSysctlFiles(dp.cfg.procSysDir(), dp.wantSysctls(egress))
		return err
	})
	return n, err
}

// ensureSysctlFiles reads each setting under dir and writes the ones that differ; it returns how many
// it wrote.
func ensureSysctlFiles(dir string, want []sysctl) (int, error) {
	var n int
	for _, s := range want {
		file := filepath.Join(dir, s.path)
		got, err := os.ReadFile(file)
		if err != nil {
			return n, sysctlError(dir, s, err)
		}
		if string(bytes.TrimSpace(got)) == s.value {
			continue
		}
		if err := writeSysctl(file, s.value); err != nil {
			return n, sysctlError(dir, s, err)
		}
		n++
	}
	return n, nil
}

// writeSysctl writes without O_CREAT or O_TRUNC: the file is the kernel's, and the value goes in one
// write, as the kernel's handlers want it.
func writeSysctl(file, value string) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sysctlError says what to change for the failures a container meets: the runtime's read-only
// /proc/sys, a proc-sys directory without the host's /proc/sys/net mounted, or a missing capability.
func sysctlError(dir string, s sysctl, err error) error {
	hint := ""
	switch {
	case errors.Is(err, syscall.EROFS):
		hint = fmt.Sprintf(": %s is read-only (container runtimes mount /proc/sys read-only in unprivileged containers); mount the host's /proc/sys/net (hostPath) elsewhere and pass --proc-sys-dir, or run privileged", dir)
	case errors.Is(err, os.ErrNotExist) && !dirExists(filepath.Join(dir, "net")):
		hint = fmt.Sprintf(": %s has no net directory; mount the host's /proc/sys/net at %s/net", dir, dir)
	case errors.Is(err, os.ErrPermission):
		hint = ": writing forwarding settings needs CAP_NET_ADMIN"
	}
	return fmt.Errorf("sysctl %s=%s under %s: %w%s", s.path, s.value, dir, err, hint)
}

func dirExists(dir string) bool {
	info, err := os.Stat(dir)
	return err == nil && info.IsDir()
}

// inNamespace runs fn in the datapath's network namespace: the agent's own for HostExec, its Exec's
// for a test namespace. Any other Exec cannot say where it runs, so fn does not run at all rather than
// change the agent's own namespace.
func (dp *Datapath) inNamespace(fn func() error) error {
	switch e := dp.exec.(type) {
	case HostExec, *HostExec:
		return fn()
	case nsDoer:
		return e.Do(fn)
	}
	return fmt.Errorf("the datapath's Exec %T cannot run code in its network namespace (it needs a Do method)", dp.exec)
}
