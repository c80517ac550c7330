// Command egressgw-uninstall-wait is the chart's uninstall hook Job: it waits until the hook DaemonSet
// has run `egressgw-agent uninstall` on every node, so that helm uninstall returns only then. This file
// only parses, validates and runs; the logic lives in pkg/uninstallwait.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/egressgw/egressgw/pkg/uninstallwait"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

type options struct {
	namespace, daemonSet string
	timeout, poll        time.Duration
	showVersion          bool
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace of the DaemonSet (default: $POD_NAMESPACE)")
	fs.StringVar(&o.daemonSet, "daemonset", "", "name of the DaemonSet to wait for")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait before failing")
	fs.DurationVar(&o.poll, "poll", 2*time.Second, "time between two reads of the DaemonSet")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
}

func (o *options) validate() error {
	var errs []error
	if o.namespace == "" || o.daemonSet == "" {
		errs = append(errs, errors.New("--namespace (or $POD_NAMESPACE) and --daemonset must not be empty"))
	}
	if o.timeout <= 0 || o.poll <= 0 {
		errs = append(errs, fmt.Errorf("--timeout=%s and --poll=%s must be positive", o.timeout, o.poll))
	}
	return errors.Join(errs...)
}

func (o *options) run(ctx context.Context, log *slog.Logger) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes API configuration: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return uninstallwait.Wait(ctx, c, client.ObjectKey{Namespace: o.namespace, Name: o.daemonSet}, o.poll, log)
}

func main() {
	o := &options{}
	fs := flag.NewFlagSet("egressgw-uninstall-wait", flag.ExitOnError)
	o.addFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if o.showVersion {
		fmt.Println("egressgw-uninstall-wait", version)
		return
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "egressgw-uninstall-wait: invalid flags:\n%v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := o.run(ctx, log); err != nil {
		log.Error("egressgw-uninstall-wait failed", "err", err)
		os.Exit(1)
	}
}
