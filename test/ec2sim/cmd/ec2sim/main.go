// Command ec2sim serves the EC2 simulator of egressgw over HTTP for the lab: it loads a VPC model file,
// listens on an address, and logs (and optionally runs a command for) every change of where an IP lives.
// Point the SDK at it with AWS_ENDPOINT_URL_EC2=http://<address>.
//
//	ec2sim -model test/ec2sim/testdata/vpc.yaml -listen 127.0.0.1:8995 -aws-buckets \
//	       -on-change 'ip route replace $EGRESSGW_IP/32 via $EGRESSGW_NEXT_HOP'  # (delete when NEXT_HOP is empty)
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/egressgw/egressgw/test/ec2sim"
	"github.com/egressgw/egressgw/test/simkit"
)

type options struct {
	model, listen, onChange, policy string
	awsBuckets                      bool
	latency, visibility             time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.model, "model", "", "VPC model file (YAML or JSON), required")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8995", "address to serve the EC2 API on")
	flag.StringVar(&o.onChange, "on-change", "", "shell command run on every change of where an IP lives, with EGRESSGW_IP, EGRESSGW_INSTANCE, EGRESSGW_INTERFACE and EGRESSGW_NEXT_HOP (empty: nowhere), EGRESSGW_PREV_INSTANCE, EGRESSGW_PREV_INTERFACE set")
	flag.BoolVar(&o.awsBuckets, "aws-buckets", false, "throttle with EC2's real token bucket sizes")
	flag.StringVar(&o.policy, "iam-policy", "", "enforce this IAM policy file, conditions included (e.g. examples/aws/iam-policy.json)")
	flag.DurationVar(&o.latency, "latency", 0, "delay every answer by this much")
	flag.DurationVar(&o.visibility, "visibility-delay", 0, "Describe calls show writes only after this delay")
	flag.Parse()
	simkit.Main("ec2sim", func(log *slog.Logger) error { return run(o, log) })
}

func run(o options, log *slog.Logger) error {
	m, err := simkit.LoadModelFlag(o.model, ec2sim.LoadModel)
	if err != nil {
		return err
	}
	opts := ec2sim.Options{Logger: log, OnChange: hook(o.onChange, log)}
	if o.policy != "" {
		data, err := os.ReadFile(o.policy)
		if err != nil {
			return err
		}
		if opts.Policy, err = ec2sim.ParsePolicy(data); err != nil {
			return fmt.Errorf("-iam-policy %s: %w", o.policy, err)
		}
	}
	sim, err := ec2sim.New(m, opts)
	if err != nil {
		return err
	}
	if o.awsBuckets {
		sim.UseAWSBuckets()
	}
	sim.SetLatency(o.latency)
	sim.SetVisibilityDelay(o.visibility)
	ctx, stop := simkit.SignalContext()
	defer stop()
	return simkit.Serve(ctx, "ec2sim", o.listen, sim, nil, log)
}

// hook returns the OnChange callback: the simulator already logs each change; with a command, it also
// runs it (synchronously, so the change is in place before EC2 answers, as a fabric route must be).
func hook(command string, log *slog.Logger) func(ec2sim.Event) {
	if command == "" {
		return nil
	}
	return func(ev ec2sim.Event) {
		simkit.RunHook(command, []string{"EGRESSGW_IP=" + ev.IP.String(), "EGRESSGW_INSTANCE=" + ev.Instance,
			"EGRESSGW_INTERFACE=" + ev.Interface, "EGRESSGW_NEXT_HOP=" + simkit.AddrOrEmpty(ev.NextHop),
			"EGRESSGW_PREV_INSTANCE=" + ev.PrevInstance, "EGRESSGW_PREV_INTERFACE=" + ev.PrevInterface}, log, "ip", ev.IP)
	}
}
