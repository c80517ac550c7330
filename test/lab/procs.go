package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/egressgw/egressgw/test/cnilab"
	"github.com/egressgw/egressgw/test/netlab"
)

// MarkerEnv is set in the environment of every process the lab starts (the API server and etcd
// inherit it too), with the lab's state folder as its value: Sweep finds the processes of a lab that was
// killed by it.
const MarkerEnv = "EGRESSGW_LAB"

// binaries are the lab's executables, built from this tree and from the reference plugins' module.
type binaries struct {
	agent, manager, echo string
	uninstallWait        string // the uninstall hook's Job
	cniDir               string // bridge, host-local and egressgw-cni
}

func (l *Lab) build(ctx context.Context) error {
	bin := l.path("bin")
	l.bins = binaries{agent: filepath.Join(bin, "egressgw-agent"), manager: filepath.Join(bin, "egressgw-manager"),
		uninstallWait: filepath.Join(bin, "egressgw-uninstall-wait"), cniDir: filepath.Join(bin, "cni")}
	for out, pkg := range map[string]string{l.bins.agent: "./cmd/agent", l.bins.manager: "./cmd/manager",
		l.bins.uninstallWait: "./cmd/uninstall-wait"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = l.cfg.RepoRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v: %s", pkg, err, b)
		}
	}
	var err error
	if l.bins.echo, err = netlab.BuildEchoServer(ctx, bin); err != nil {
		return err
	}
	if err := cnilab.BuildPlugins(ctx, l.bins.cniDir); err != nil {
		return err
	}
	// The AWS VPC CNI's plugin, as the lab reproduces it (test/vpccni/plugin).
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(l.bins.cniDir, "aws-cni"), "./test/vpccni/cmd/aws-cni")
	cmd.Dir = l.cfg.RepoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build aws-cni: %v: %s", err, b)
	}
	return nil
}

// proc is one process of the lab.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

type procTable map[string]*proc

// startProcess runs bin inside ns (the host's namespace when nil) with its output in logs/<name>.log.
func (l *Lab) startProcess(name string, ns *netlab.Namespace, env []string, bin string, args ...string) (*proc, error) {
	if old := l.procs[name]; old != nil && !old.exited() {
		return nil, fmt.Errorf("%s is already running", name)
	}
	p, err := l.spawn(name, ns, env, bin, args...)
	if err != nil {
		return nil, err
	}
	l.procs[name] = p
	return p, nil
}

// spawn starts a process as startProcess does, without entering it in the lab's table (the stand-in
// controllers keep their pods' processes themselves).
func (l *Lab) spawn(name string, ns *netlab.Namespace, env []string, bin string, args ...string) (*proc, error) {
	log, err := os.OpenFile(l.path("logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	fmt.Fprintf(log, "---- %s: %s %v\n", time.Now().UTC().Format(time.RFC3339Nano), bin, args)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), MarkerEnv+"="+l.cfg.StateDir), env...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: a ^C at the terminal reaches the lab, which stops its processes in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if ns != nil {
		err = ns.Do(cmd.Start)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to grace before it kills the process.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s of %s: killed", p.name, grace, sig)
	}
}

// stopAll stops every process still running, managers first (they act on the others), then agents.
func (l *Lab) stopAll() error {
	var errs []error
	for _, prefix := range []string{"manager", "agent", ""} {
		for name, p := range l.procs {
			if prefix == "" || len(name) >= len(prefix) && name[:len(prefix)] == prefix {
				if err := p.stop(syscall.SIGTERM, 10*time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
