// Command egressgw-manager runs the leader-elected manager: it attaches egress IPs to healthy gateway
// nodes through the cloud's API and moves them when a gateway fails. This file only parses, validates,
// wires and runs; the logic lives in pkg/manager.
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

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/egressgw/egressgw/pkg/manager"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

type options struct {
	cloudOptions
	showVersion bool
	logLevel    string
	metricsAddr string
	probeAddr   string
	leader      manager.LeaderElection
	cfg         manager.Config
}

func newOptions() *options {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "egressgw-system"
	}
	return &options{
		cloudOptions: cloudOptions{cloud: "aws"}, logLevel: "info", metricsAddr: ":8080", probeAddr: ":8081",
		leader: manager.DefaultLeaderElection(ns),
		cfg:    manager.DefaultConfig(),
	}
}

func (o *options) addFlags(fs *flag.FlagSet) {
	o.cloudOptions.addFlags(fs)
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, "debug, info, warn or error")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", o.metricsAddr, "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", o.probeAddr, "address of /healthz and /readyz (0 disables it)")
	fs.StringVar(&o.leader.Namespace, "leader-election-namespace", o.leader.Namespace, "namespace of the leader election Lease (default: $POD_NAMESPACE)")
	fs.StringVar(&o.leader.ID, "leader-election-id", o.leader.ID, "name of the leader election Lease")
	fs.DurationVar(&o.leader.LeaseDuration, "lease-duration", o.leader.LeaseDuration, "how long a crashed leader keeps the lease before another replica takes over")
	fs.DurationVar(&o.leader.RenewDeadline, "renew-deadline", o.leader.RenewDeadline, "how long the leader retries renewing before it stops acting")
	fs.DurationVar(&o.leader.RetryPeriod, "retry-period", o.leader.RetryPeriod, "how often replicas try to take or renew the lease; a graceful handover takes about this long")
	c := &o.cfg
	fs.IntVar(&c.AgentHealthPort, "agent-health-port", c.AgentHealthPort, "port of the node agents' health endpoint on each node's InternalIP")
	fs.StringVar(&c.AgentHealthPath, "agent-health-path", c.AgentHealthPath, "HTTP path of the node agents' health endpoint")
	fs.DurationVar(&c.Probe.Interval, "probe-interval", c.Probe.Interval, "time between two probes of a gateway's agent")
	fs.DurationVar(&c.Probe.Timeout, "probe-timeout", c.Probe.Timeout, "timeout of one probe (at most the interval)")
	fs.IntVar(&c.Probe.FailureThreshold, "probe-failures", c.Probe.FailureThreshold, "consecutive failed probes that make a gateway unhealthy")
	fs.IntVar(&c.Probe.SuccessThreshold, "probe-successes", c.Probe.SuccessThreshold, "consecutive successful probes that make it healthy again")
	fs.IntVar(&c.CloudConcurrency, "cloud-concurrency", c.CloudConcurrency, "cloud operations run at once")
	fs.DurationVar(&c.CloudTimeout, "cloud-timeout", c.CloudTimeout, "bound of one cloud operation, retries included")
	fs.DurationVar(&c.CloudResync, "cloud-resync", c.CloudResync, "how often the cloud's truth (IP locations, node capacity) is read again")
	fs.DurationVar(&c.NodeLeaseGrace, "node-lease-grace", c.NodeLeaseGrace,
		"a gateway the probes cannot reach still counts as alive when most probes fail at once, or when no other node can take its IPs, while its Node is Ready and its kubelet renewed its Lease within this time")
}

func (o *options) validate() error {
	errs := []error{o.cloudOptions.validate()}
	if _, err := parseLevel(o.logLevel); err != nil {
		errs = append(errs, err)
	}
	le := o.leader
	if le.Namespace == "" || le.ID == "" {
		errs = append(errs, errors.New("--leader-election-namespace and --leader-election-id must not be empty"))
	}
	if !(le.RetryPeriod > 0 && le.RetryPeriod < le.RenewDeadline && le.RenewDeadline < le.LeaseDuration) {
		errs = append(errs, fmt.Errorf("leader election needs 0 < --retry-period (%s) < --renew-deadline (%s) < --lease-duration (%s)",
			le.RetryPeriod, le.RenewDeadline, le.LeaseDuration))
	}
	errs = append(errs, o.cfg.Validate())
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level=%q: want debug, info, warn or error", s)
	}
	return l, nil
}

func (o *options) run(ctx context.Context) error {
	level, _ := parseLevel(o.logLevel)
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(log)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes API configuration: %w", err)
	}
	provider, err := o.cloudOptions.provider(ctx, slog.New(logr.ToSlogHandler(log)))
	if err != nil {
		return err
	}
	return manager.Run(ctx, cfg, manager.RunOptions{
		Config: o.cfg, LeaderElection: o.leader, Provider: provider, Log: log,
		Registry: metrics.Registry, MetricsAddr: o.metricsAddr, ProbeAddr: o.probeAddr,
	})
}

func main() {
	o := newOptions()
	o.addFlags(flag.CommandLine)
	flag.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	flag.Parse()
	if o.showVersion {
		fmt.Println("egressgw-manager", version)
		return
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "egressgw-manager: invalid flags:\n%v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := o.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "egressgw-manager: %v\n", err)
		os.Exit(1)
	}
}
