package simkit

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// SignalContext ends on SIGINT or SIGTERM, the way a simulator command is stopped.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Serve serves h on addr (over TLS when tlsConfig is set) until ctx ends, then shuts down, giving
// requests in flight five seconds. name labels the log line.
func Serve(ctx context.Context, name, addr string, h http.Handler, tlsConfig *tls.Config, log *slog.Logger) error {
	srv := &http.Server{Addr: addr, Handler: h, TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	var err error
	if tlsConfig != nil {
		log.Info(name+" serving", "address", "https://"+addr)
		err = srv.ListenAndServeTLS("", "")
	} else {
		log.Info(name+" serving", "address", addr)
		err = srv.ListenAndServe()
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Main is a simulator command's main after its flags are parsed: run with a text logger on stderr, and
// exit 1 with the error logged when it fails.
func Main(name string, run func(*slog.Logger) error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error(name+" stopped", "error", err)
		os.Exit(1)
	}
}

// LoadModelFlag loads the model file named by a command's required -model flag.
func LoadModelFlag[M any](path string, load func(string) (M, error)) (M, error) {
	if path == "" {
		var zero M
		return zero, errors.New("-model is required")
	}
	return load(path)
}
