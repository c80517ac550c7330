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
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/egressgw/egressgw/test/gcpsim"
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
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(o, log); err != nil {
		log.Error("gcpsim stopped", "error", err)
		os.Exit(1)
	}
}

func run(o options, log *slog.Logger) error {
	if o.model == "" {
		return errors.New("-model is required")
	}
	m, err := gcpsim.LoadModel(o.model)
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go settle(ctx, sim)
	return serve(ctx, o.listen, sim, log)
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

// serve runs the HTTP server until ctx ends.
func serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("gcpsim serving", "address", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// hook returns the OnChange callback: with a command, it runs it synchronously, so that a fabric route
// is in place before the operation is reported DONE.
func hook(command string, log *slog.Logger) func(gcpsim.Event) {
	return func(ev gcpsim.Event) {
		log.Info("gcpsim: alias moved", "ip", ev.IP, "to", ev.Instance, "zone", ev.Zone, "from", ev.PrevInstance)
		if command == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		nextHop := ""
		if ev.NextHop.IsValid() {
			nextHop = ev.NextHop.String()
		}
		cmd.Env = append(os.Environ(), "EGRESSGW_IP="+ev.IP.String(), "EGRESSGW_INSTANCE="+ev.Instance, "EGRESSGW_ZONE="+ev.Zone,
			"EGRESSGW_INTERFACE="+ev.Interface, "EGRESSGW_NEXT_HOP="+nextHop, "EGRESSGW_PREV_INSTANCE="+ev.PrevInstance,
			"EGRESSGW_PREV_ZONE="+ev.PrevZone)
		if out, err := cmd.CombinedOutput(); err != nil {
			log.Error("on-change command failed", "ip", ev.IP, "error", err, "output", fmt.Sprintf("%q", out))
		}
	}
}
