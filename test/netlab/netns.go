// Package netlab builds small networks out of Linux network namespaces on the real kernel: nodes with pods,
// a fabric router that plays the cloud network (it routes secondary IPs to the node holding them and,
// like a cloud's source/destination check, drops packets a host sends from an address it was not
// given), and an external host running a server that reports the client address it saw. The datapath
// tests use it, and so can a whole-system lab.
//
// Everything it creates lives in named namespaces whose names start with a caller-chosen prefix; Close
// deletes them, and nothing is ever changed in the caller's own namespace. It needs root.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Namespace is one named network namespace (visible to `ip netns exec NAME`).
type Namespace struct {
	// Name is the name under /var/run/netns.
	Name string
	// NL is a netlink handle bound to the namespace: no thread switch is needed to use it.
	NL *netlink.Handle

	handle netns.NsHandle
}

// RandomPrefix returns a short random name prefix ("eg" and 6 hex digits) so that concurrent runs never
// collide on namespace names.
func RandomPrefix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "eg" + hex.EncodeToString(b)
}

// NewNamespace creates the named namespace with its loopback up. It fails if the name is taken, so it
// never adopts someone else's namespace.
func NewNamespace(ctx context.Context, name string) (*Namespace, error) {
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	ns := &Namespace{Name: name}
	if err := ns.open(); err != nil {
		_ = ns.Close()
		return nil, err
	}
	return ns, nil
}

func (ns *Namespace) open() error {
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns.Name, err)
	}
	ns.handle = h
	if ns.NL, err = netlink.NewHandleAt(h); err != nil {
		return fmt.Errorf("netlink handle in %s: %w", ns.Name, err)
	}
	lo, err := ns.NL.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("%s: lo: %w", ns.Name, err)
	}
	return ns.NL.LinkSetUp(lo)
}

// Close deletes the namespace. The kernel removes its links, routes and firewall state with it; processes
// still running inside keep it alive until they exit, so stop them first.
func (ns *Namespace) Close() error {
	if ns.NL != nil {
		ns.NL.Close()
	}
	if ns.handle.IsOpen() {
		_ = ns.handle.Close()
	}
	out, err := exec.Command("ip", "netns", "delete", ns.Name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns delete %s: %v: %s", ns.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Do runs fn on an OS thread switched into the namespace, so that sockets fn opens and processes it starts
// belong to the namespace. The thread is switched back before it is released; if that fails the thread
// stays locked, and the runtime discards it when the goroutine ends.
func (ns *Namespace) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- ns.doLocked(fn) }()
	return <-errc
}

func (ns *Namespace) doLocked(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns.handle); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", ns.Name, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime kills it with the goroutine instead of reusing it.
		return errors.Join(fnErr, fmt.Errorf("leave %s: %w", ns.Name, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Run runs a command inside the namespace with stdin as its input and returns its standard output; the
// error carries standard error. It forks from a thread inside the namespace, which costs no more than a
// plain exec (no `ip netns exec` wrapper).
func (ns *Namespace) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	err := ns.Do(func() error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		return cmd.Run()
	})
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %v in %s: %w: %s", name, args, ns.Name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// RunLines runs each line (a command and its arguments) inside the namespace and stops at the first
// failure.
func (ns *Namespace) RunLines(ctx context.Context, lines ...[]string) error {
	for _, l := range lines {
		if _, err := ns.Run(ctx, nil, l[0], l[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// Start starts a long-running command inside the namespace. The caller stops it (cmd.Process.Kill and
// cmd.Wait) before closing the namespace.
func (ns *Namespace) Start(name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	err := ns.Do(cmd.Start)
	return cmd, err
}
