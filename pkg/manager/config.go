// Package manager is the egressgw manager's control loop: it watches EgressGateways, EgressPolicies and
// Nodes, probes the gateway agents, decides placement with pkg/failover, moves IPs through a provider,
// and reports what it does in status, Events and metrics. It runs only on the elected leader.
package manager

import (
	"errors"
	"fmt"
	"time"

	"github.com/egressgw/egressgw/pkg/agenthealth"
	"github.com/egressgw/egressgw/pkg/failover"
)

// Config holds the manager loop's settings; cmd/manager fills it from flags.
type Config struct {
	// AgentHealthPort is the port of the agents' health endpoint on each node's InternalIP.
	AgentHealthPort int
	// AgentHealthPath is the HTTP path of that endpoint.
	AgentHealthPath string
	// Probe sets the gateway probes.
	Probe failover.ProberConfig
	// CloudConcurrency is how many cloud operations run at once.
	CloudConcurrency int
	// CloudTimeout bounds one cloud operation, retries included.
	CloudTimeout time.Duration
	// CloudResync is how often the cloud's truth (where IPs live, node capacity) is read again.
	CloudResync time.Duration
	// CloudSettle is how long after our own confirmed change a read of the cloud is distrusted for
	// that IP: cloud reads are eventually consistent and may not show a write of the last seconds.
	CloudSettle time.Duration
	// RetryMin and RetryMax bound the waits between attempts of whatever fails (nextAttempt, backoff.go).
	RetryMin, RetryMax time.Duration
	// StartupProbeWait is how long a new leader waits for the first verdicts of the gateway probes
	// before it places IPs, so that it does not move IPs away from gateways it has not probed yet.
	StartupProbeWait time.Duration
	// NodeLeaseGrace is how recently a node's kubelet must have renewed its Lease (kube-node-lease) for
	// the manager to believe the node alive when its own probes of the node fail (see suspectIsolation).
	// Kubelets renew every 10 s; 20 s tolerates one late renewal.
	NodeLeaseGrace time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		AgentHealthPort:  agenthealth.DefaultPort,
		AgentHealthPath:  agenthealth.DefaultPath,
		Probe:            failover.DefaultProberConfig(),
		CloudConcurrency: 8,
		CloudTimeout:     30 * time.Second,
		CloudResync:      time.Minute,
		CloudSettle:      5 * time.Second,
		RetryMin:         200 * time.Millisecond,
		RetryMax:         30 * time.Second,
		StartupProbeWait: 2 * time.Second,
		NodeLeaseGrace:   20 * time.Second,
	}
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.AgentHealthPort > 0 && c.AgentHealthPort < 65536, "agent health port %d is not a TCP port", c.AgentHealthPort)
	check(len(c.AgentHealthPath) > 0 && c.AgentHealthPath[0] == '/', "agent health path %q must start with /", c.AgentHealthPath)
	check(c.CloudConcurrency >= 1, "cloud concurrency %d must be at least 1", c.CloudConcurrency)
	check(c.CloudTimeout > 0, "cloud timeout must be positive")
	check(c.CloudResync >= time.Second, "cloud resync %s is below 1s and would exhaust the cloud's rate limits", c.CloudResync)
	check(c.CloudSettle >= 0 && c.CloudSettle < c.CloudResync, "cloud settle time %s must be between 0 and the cloud resync period", c.CloudSettle)
	check(c.RetryMin > 0 && c.RetryMax >= c.RetryMin, "retry backoff must satisfy 0 < min (%s) <= max (%s)", c.RetryMin, c.RetryMax)
	check(c.StartupProbeWait >= 0, "startup probe wait must not be negative")
	check(c.NodeLeaseGrace >= 0, "node lease grace must not be negative")
	check(c.Probe.Interval >= 0 && c.Probe.Timeout >= 0 && c.Probe.FailureThreshold >= 0 && c.Probe.SuccessThreshold >= 0,
		"probe settings must not be negative")
	return errors.Join(errs...)
}
