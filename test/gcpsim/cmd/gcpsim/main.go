// Command gcpsim serves the Compute Engine simulator of egressgw over HTTP for the lab: it loads a
// project model file, listens on an address, and logs (and optionally runs a command for) every change
// of where an alias /32 lives. Point the provider at it with --gcp-endpoint=http://<address>/ and any
// static bearer token.
//
//	gcpsim -model test/gcpsim/testdata/project.yaml -listen 127.0.0.1:8996 -operation-latency 3s \
//	       -on-change 'ip route replace $EGRESSGW_IP/32 via $EGRESSGW_NEXT_HOP'  # (delete when NEXT_HOP is empty)
package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/egressgw/egressgw/test/gcpsim"
	"github.com/egressgw/egressgw/test/simkit"
)

type options struct {
	model, listen, onChange string
	latency, opLatency      time.Duration
	readQuota, writeQuota   int
}

func main() {
	var o options
	flag.StringVar(&o.model, "model", "", "project model file (YAML or JSON), required")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8996", "address to serve the compute API on")
	flag.StringVar(&o.onChange, "on-change", "", "shell command run on every change of where an alias /32 lives, with EGRESSGW_IP, EGRESSGW_INSTANCE, EGRESSGW_ZONE, EGRESSGW_INTERFACE, EGRESSGW_NEXT_HOP (empty: nowhere), EGRESSGW_PREV_INSTANCE and EGRESSGW_PREV_ZONE set")
	flag.DurationVar(&o.latency, "latency", 0, "delay every answer by this much")
	flag.DurationVar(&o.opLatency, "operation-latency", 0, "time from a write to its zone operation being DONE (Compute Engine: about 2-5s)")
	flag.IntVar(&o.readQuota, "read-quota", 0, "read requests per minute before 403 rateLimitExceeded (0: unlimited)")
	flag.IntVar(&o.writeQuota, "write-quota", 0, "write requests per minute before 403 rateLimitExceeded (0: unlimited)")
	flag.Parse()
	simkit.Main("gcpsim", func(log *slog.Logger) error { return run(o, log) })
}

func run(o options, log *slog.Logger) error {
	m, err := simkit.LoadModelFlag(o.model, gcpsim.LoadModel)
	if err != nil {
		return err
	}
	sim, err := gcpsim.New(m, gcpsim.Options{Logger: log, OnChange: hook(o.onChange, log)})
	if err != nil {
		return err
	}
	sim.SetLatency(o.latency)
	sim.SetOperationLatency(o.opLatency)
	sim.SetRateQuota(gcpsim.QuotaRead, o.readQuota)
	sim.SetRateQuota(gcpsim.QuotaWrite, o.writeQuota)
	ctx, stop := simkit.SignalContext()
	defer stop()
	go settle(ctx, sim)
	return simkit.Serve(ctx, "gcpsim", o.listen, sim, nil, log)
}

// settle completes due operations on a ticker, so that OnChange fires when an operation's time comes
// even while no client polls it.
func settle(ctx context.Context, sim *gcpsim.Server) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sim.Settle()
		}
	}
}

// hook returns the OnChange callback: with a command, it runs it synchronously, so that a fabric route
// is in place before the operation is reported DONE.
func hook(command string, log *slog.Logger) func(gcpsim.Event) {
	return func(ev gcpsim.Event) {
		log.Info("gcpsim: alias moved", "ip", ev.IP, "to", ev.Instance, "zone", ev.Zone, "from", ev.PrevInstance)
		if command == "" {
			return
		}
		simkit.RunHook(command, []string{"EGRESSGW_IP=" + ev.IP.String(), "EGRESSGW_INSTANCE=" + ev.Instance, "EGRESSGW_ZONE=" + ev.Zone,
			"EGRESSGW_INTERFACE=" + ev.Interface, "EGRESSGW_NEXT_HOP=" + simkit.AddrOrEmpty(ev.NextHop),
			"EGRESSGW_PREV_INSTANCE=" + ev.PrevInstance, "EGRESSGW_PREV_ZONE=" + ev.PrevZone}, log, "ip", ev.IP)
	}
}
