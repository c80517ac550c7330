// Command azuresim serves the Azure Resource Manager simulator of egressgw over HTTPS for the lab: it
// loads a model file, generates a test CA and writes its certificate for clients, listens on an address,
// and logs (and optionally runs a command for) every change of where a private IP lives.
//
//	azuresim -model test/azuresim/testdata/aks.yaml -listen 127.0.0.1:8996 -ca-out /tmp/azuresim-ca.pem \
//	         -operation-latency 5s -on-change 'ip route replace $EGRESSGW_IP/32 via $EGRESSGW_NEXT_HOP'
//
// Point the manager at it with --azure-cloud=custom --azure-arm-endpoint=https://127.0.0.1:8996
// --ca-bundle=/tmp/azuresim-ca.pem; any bearer token is accepted (its text names the caller).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/egressgw/egressgw/test/azuresim"
	"github.com/egressgw/egressgw/test/simkit"
)

type options struct {
	model, listen, caOut, onChange string
	latency, opLatency, retryAfter time.Duration
	azureBuckets                   bool
}

func main() {
	o := options{}
	flag.StringVar(&o.model, "model", "", "estate model file (YAML or JSON), required")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8996", "address to serve ARM on (HTTPS)")
	flag.StringVar(&o.caOut, "ca-out", "azuresim-ca.pem", "file to write the test CA certificate to, for clients")
	flag.StringVar(&o.onChange, "on-change", "", "shell command run on every change of where an IP lives, with EGRESSGW_IP, EGRESSGW_INTERFACE, EGRESSGW_INSTANCE, EGRESSGW_NEXT_HOP (empty: nowhere), EGRESSGW_PREV_INTERFACE and EGRESSGW_PUBLIC_IP set")
	flag.DurationVar(&o.latency, "latency", 0, "delay every answer by this much")
	flag.DurationVar(&o.opLatency, "operation-latency", 0, "how long a NIC write takes to complete (Azure: typically 2-10s)")
	flag.DurationVar(&o.retryAfter, "poll-retry-after", 10*time.Second, "Retry-After sent while an operation runs (the Network resource provider sends 10s; 0: none)")
	flag.BoolVar(&o.azureBuckets, "azure-buckets", false, "throttle with ARM's and the Network resource provider's documented limits")
	flag.Parse()
	simkit.Main("azuresim", func(log *slog.Logger) error { return run(o, log) })
}

func run(o options, log *slog.Logger) error {
	m, err := simkit.LoadModelFlag(o.model, azuresim.LoadModel)
	if err != nil {
		return err
	}
	sim, err := azuresim.New(m, azuresim.Options{Logger: log, OnChange: hook(o.onChange, log)})
	if err != nil {
		return err
	}
	sim.SetLatency(o.latency)
	sim.SetOperationLatency(o.opLatency)
	sim.SetPollRetryAfter(o.retryAfter)
	if o.azureBuckets {
		sim.UseAzureBuckets()
	}
	ca, err := azuresim.NewCA()
	if err != nil {
		return err
	}
	if err := ca.WritePEM(o.caOut); err != nil {
		return fmt.Errorf("write the CA certificate: %w", err)
	}
	cfg, err := ca.ServerConfig()
	if err != nil {
		return err
	}
	ctx, stop := simkit.SignalContext()
	defer stop()
	return simkit.Serve(ctx, "azuresim", o.listen, sim, cfg, log)
}

// hook returns the OnChange callback: with a command, it runs it synchronously, so that a fabric route is
// in place when the operation reports success.
func hook(command string, log *slog.Logger) func(azuresim.Event) {
	if command == "" {
		return nil
	}
	return func(ev azuresim.Event) {
		simkit.RunHook(command, []string{"EGRESSGW_IP=" + ev.IP.String(), "EGRESSGW_INTERFACE=" + ev.Interface, "EGRESSGW_INSTANCE=" + ev.Instance,
			"EGRESSGW_NEXT_HOP=" + simkit.AddrOrEmpty(ev.NextHop), "EGRESSGW_PREV_INTERFACE=" + ev.PrevInterface,
			"EGRESSGW_PUBLIC_IP=" + ev.PublicIP}, log, "ip", ev.IP)
	}
}
