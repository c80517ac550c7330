// Command lab runs egressgw's lab (package test/lab): the whole system on one machine, cloud simulated.
//
//	lab [run]   build the lab, show what the firewall sees, kill the active gateway, measure, clean up
//	lab up      build the lab and leave it running in the background (lab down removes it)
//	lab down    stop a lab started with up, and remove whatever a killed lab left behind
//
// It needs root and KUBEBUILDER_ASSETS (the Makefile's lab targets set it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/egressgw/egressgw/test/lab"
)

type options struct {
	stateDir, prefix, repo, cloud string
	failovers                     int
	realistic                     bool
}

func main() {
	o := options{}
	fs := flag.NewFlagSet("lab", flag.ExitOnError)
	fs.StringVar(&o.stateDir, "state", "/tmp/egressgw-lab", "folder of the lab's binaries, kubeconfigs and logs")
	fs.StringVar(&o.prefix, "prefix", lab.DefaultPrefix, "first part of the lab's network namespace names")
	fs.StringVar(&o.repo, "repo", ".", "the egressgw repository")
	fs.IntVar(&o.failovers, "failovers", 1, "gateway deaths to measure (run only)")
	fs.StringVar(&o.cloud, "cloud", lab.AWS, "the cloud to simulate: aws, gcp or azure")
	fs.BoolVar(&o.realistic, "realistic-latency", false, "make the cloud simulator as slow as the cloud (aws: "+lab.RealisticLatencies[lab.AWS]+
		"; gcp: "+lab.RealisticLatencies[lab.GCP]+"; azure: "+lab.RealisticLatencies[lab.Azure]+")")
	cmd, args := "run", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	_ = fs.Parse(args)
	var err error
	if o.repo, err = filepath.Abs(o.repo); err == nil {
		switch cmd {
		case "run":
			err = run(o)
		case "up":
			err = up(o)
		case "serve":
			err = serve(o)
		case "down":
			err = down(o)
		default:
			err = fmt.Errorf("unknown command %q: want run, up or down", cmd)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		os.Exit(1)
	}
}

func config(o options) lab.Config {
	return lab.Config{Prefix: o.prefix, StateDir: o.stateDir, Assets: os.Getenv("KUBEBUILDER_ASSETS"), RepoRoot: o.repo, Out: os.Stdout, Cloud: o.cloud, RealisticLatency: o.realistic}
}

// sweep removes what an earlier lab left, saying what it found.
func sweep(o options) error {
	removed, err := lab.Sweep(o.prefix, o.stateDir)
	if len(removed) > 0 {
		fmt.Printf("removed what an earlier lab left behind: %s\n", strings.Join(removed, ", "))
	}
	return err
}

func run(o options) (err error) {
	if err := sweep(o); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := lab.Up(ctx, config(o))
	if err != nil {
		return err
	}
	defer func() {
		l.Printf("stop the lab: pods (CNI DEL), managers, agents, API server, namespaces ...")
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
			return
		}
		l.Printf("  nothing left behind")
	}()
	return lab.Demonstrate(ctx, l, os.Stdout, o.failovers)
}

func pidFile(o options) string   { return filepath.Join(o.stateDir, "lab.pid") }
func readyFile(o options) string { return filepath.Join(o.stateDir, "ready") }

// up starts `lab serve` in the background and waits until it says the lab is ready.
func up(o options) error {
	if err := down(o); err != nil {
		return err
	}
	if err := os.MkdirAll(o.stateDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(o.stateDir, "lab.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "serve", "-state", o.stateDir, "-prefix", o.prefix, "-repo", o.repo, "-cloud", o.cloud)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(pidFile(o), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Printf("starting the lab in the background (pid %d); its progress: %s\n", cmd.Process.Pid, logPath)
	printed := 0
	for {
		data, _ := os.ReadFile(logPath)
		lines := strings.SplitAfter(string(data), "\n")
		for ; printed < len(lines)-1; printed++ {
			fmt.Print(lines[printed])
		}
		if ready, err := os.ReadFile(readyFile(o)); err == nil {
			fmt.Print(string(ready))
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the lab stopped while starting (%v): see %s", err, logPath)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serve builds the lab and keeps it until SIGTERM.
func serve(o options) error {
	_ = os.Remove(readyFile(o))
	if err := sweep(o); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := lab.Up(ctx, config(o))
	if err != nil {
		return err
	}
	defer l.Close()
	lab.PrintChecks(os.Stdout, l.RunChecks(ctx, l.Checks()))
	if err := os.WriteFile(readyFile(o), []byte(lab.Explore(l)), 0o644); err != nil {
		return err
	}
	<-ctx.Done()
	l.Printf("stopping the lab")
	return nil
}

// down stops a lab started by up and sweeps what any lab of this prefix left.
func down(o options) error {
	if data, err := os.ReadFile(pidFile(o)); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && syscall.Kill(pid, syscall.SIGTERM) == nil {
			fmt.Printf("stopping the lab (pid %d) ...\n", pid)
			for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil; {
				time.Sleep(200 * time.Millisecond)
			}
		}
		_ = os.Remove(pidFile(o))
	}
	_ = os.Remove(readyFile(o))
	return sweep(o)
}
