// Package cniserver is the agent's side of the protocol with egressgw-cni (package cnirpc has the wire
// types and the plugin's client): a Server on the node's unix socket that calls the agent's Programmer.
package cniserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressgw/egressgw/pkg/cnirpc"
)

// Programmer is what the agent implements for the CNI path. Calls for different sandboxes run
// concurrently; calls for the same ContainerID never overlap and run in the order they arrived (the Server
// serializes them), so a DEL sent after a timed-out ADD runs after that ADD returned.
type Programmer interface {
	// PodAdded programs pod (steering, or the fail-closed drop, or nothing when no policy selects it) before
	// it returns. IPs are reused: programming an address replaces whatever was programmed for it before.
	// It returns an error a person can act on when it cannot; the ADD then fails and the kubelet retries.
	// ctx ends when the plugin gives up.
	PodAdded(ctx context.Context, pod cnirpc.PodIdentity, ips []netip.Addr) error
	// PodDeleted removes what PodAdded programmed for pod.ContainerID (nothing programmed returns nil). An
	// error fails the DEL and the kubelet retries it: return one only when a retry can help.
	PodDeleted(ctx context.Context, pod cnirpc.PodIdentity, ips []netip.Addr) error
}

// PodChecker is optional: a Programmer that implements it answers CHECK; otherwise CHECK succeeds.
type PodChecker interface {
	// PodChecked returns an error when pod's programming is not in place.
	PodChecked(ctx context.Context, pod cnirpc.PodIdentity, ips []netip.Addr) error
}

// ServerConfig configures a Server. Zero values take the defaults named on each field.
type ServerConfig struct {
	// SocketPath is the unix socket to serve; cnirpc.DefaultSocketPath when empty.
	SocketPath string
	// RequestTimeout bounds one Programmer call; 9s when zero, under the plugin's default 10s so that the
	// agent's own message reaches the pod's events rather than the plugin's timeout.
	RequestTimeout time.Duration
	// Logger receives one record per request; slog.Default() when nil.
	Logger *slog.Logger
	// Registerer receives egressgw_cni_request_duration_seconds; no metric when nil.
	Registerer prometheus.Registerer
}

// Server serves the protocol on a unix socket and calls a Programmer.
type Server struct {
	cfg      ServerConfig
	prog     Programmer
	log      *slog.Logger
	latency  *prometheus.HistogramVec
	locks    *keyedMutex
	listener net.Listener
	http     *http.Server
}

// NewServer validates cfg and registers the latency histogram.
func NewServer(cfg ServerConfig, prog Programmer) (*Server, error) {
	if prog == nil {
		return nil, errors.New("cniserver: NewServer needs a Programmer")
	}
	if cfg.SocketPath == "" {
		cfg.SocketPath = cnirpc.DefaultSocketPath
	}
	if !filepath.IsAbs(cfg.SocketPath) {
		return nil, fmt.Errorf("cniserver: socket path %q must be absolute", cfg.SocketPath)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 9 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, prog: prog, log: cfg.Logger.With("component", "cni-server"), locks: newKeyedMutex()}
	latency, err := newLatencyHistogram(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s.latency = latency
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+cnirpc.PathAdd, s.handleAdd)
	mux.HandleFunc("POST "+cnirpc.PathCheck, s.handleCheck)
	mux.HandleFunc("POST "+cnirpc.PathDel, s.handleDel)
	mux.HandleFunc("GET "+cnirpc.PathStatus, s.handleStatus)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// SocketPath is the path the server listens on.
func (s *Server) SocketPath() string { return s.cfg.SocketPath }

// Listen creates the socket: the directory with mode 0700 when it does not exist, a stale socket file
// removed, the socket with mode 0600. Listen before installing the plugin into the CNI configuration so that
// the first ADD finds the socket.
func (s *Server) Listen() error {
	path := s.cfg.SocketPath
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cniserver: creating the socket directory: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("cniserver: listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return fmt.Errorf("cniserver: restricting %s to its owner: %w", path, err)
	}
	s.listener = l
	return nil
}

// removeStaleSocket removes a socket file that nobody serves; it refuses a live socket (another agent) and
// anything that is not a socket.
func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cniserver: inspecting %s: %w", path, err)
	}
	if info.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("cniserver: %s exists and is not a socket (%s): move it away or choose another socket path", path, info.Mode().Type())
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = conn.Close()
		return fmt.Errorf("cniserver: another process serves %s: stop it first", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("cniserver: removing the stale socket %s: %w", path, err)
	}
	return nil
}

// Serve answers requests until ctx ends, then stops accepting, lets running requests finish (for at most
// RequestTimeout) and removes the socket. It calls Listen when Listen was not called.
func (s *Server) Serve(ctx context.Context) error {
	if s.listener == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.log.Info("serving CNI requests", "socket", s.cfg.SocketPath)
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.listener) }()
	select {
	case err := <-errc:
		return fmt.Errorf("cniserver: serving %s: %w", s.cfg.SocketPath, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	defer cancel()
	err := s.http.Shutdown(shutdownCtx)
	<-errc
	_ = s.listener.Close() // unlinks the socket; http.Serve may not have taken the listener yet
	if err != nil {
		return fmt.Errorf("cniserver: shutting down: %w", err)
	}
	return nil
}

// Start is Listen (unless already called) and Serve in the background until ctx ends; wait returns once
// the server has stopped, with Serve's error.
func (s *Server) Start(ctx context.Context) (wait func() error, err error) {
	if s.listener == nil {
		if err := s.Listen(); err != nil {
			return nil, err
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	return func() error { return <-done }, nil
}

func (s *Server) handleAdd(w http.ResponseWriter, r *http.Request) {
	var req cnirpc.AddRequest
	s.serveAdd(w, r, "add", &req, func(ctx context.Context) error { return s.prog.PodAdded(ctx, req.Pod, req.IPs) })
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) {
	var req cnirpc.AddRequest
	s.serveAdd(w, r, "check", &req, func(ctx context.Context) error {
		if checker, ok := s.prog.(PodChecker); ok {
			return checker.PodChecked(ctx, req.Pod, req.IPs)
		}
		return nil
	})
}

func (s *Server) serveAdd(w http.ResponseWriter, r *http.Request, op string, req *cnirpc.AddRequest, call func(context.Context) error) {
	s.serve(w, r, op, req, func() (cnirpc.PodIdentity, error) { return req.Pod, req.Validate() }, call)
}

func (s *Server) handleDel(w http.ResponseWriter, r *http.Request) {
	var req cnirpc.DelRequest
	s.serve(w, r, "del", &req, func() (cnirpc.PodIdentity, error) { return req.Pod, req.Pod.Validate() },
		func(ctx context.Context) error { return s.prog.PodDeleted(ctx, req.Pod, req.IPs) })
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct{}{})
}

// serve decodes a bounded body into req, validates it, runs call under the sandbox's lock and the request
// timeout, and answers 200, 400 (bad request) or 500 (the Programmer's error), timing it all.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, op string, req any, validate func() (cnirpc.PodIdentity, error), call func(context.Context) error) {
	start := time.Now()
	if err := decodeBody(w, r, req); err != nil {
		s.finish(w, op, start, cnirpc.PodIdentity{}, http.StatusBadRequest, err)
		return
	}
	pod, err := validate()
	if err != nil {
		s.finish(w, op, start, pod, http.StatusBadRequest, fmt.Errorf("bad %s request: %w", op, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	unlock, err := s.locks.lock(ctx, pod.ContainerID)
	if err != nil {
		s.finish(w, op, start, pod, http.StatusServiceUnavailable, fmt.Errorf("waiting for an earlier request for the same sandbox: %w", err))
		return
	}
	defer unlock()
	if err := call(ctx); err != nil {
		s.finish(w, op, start, pod, http.StatusInternalServerError, err)
		return
	}
	s.finish(w, op, start, pod, http.StatusOK, nil)
}

func decodeBody(w http.ResponseWriter, r *http.Request, into any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, cnirpc.MaxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("decoding the request body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("decoding the request body: more than one JSON value")
	}
	return nil
}

func (s *Server) finish(w http.ResponseWriter, op string, start time.Time, pod cnirpc.PodIdentity, status int, err error) {
	elapsed := time.Since(start)
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.latency.WithLabelValues(op, result).Observe(elapsed.Seconds())
	attrs := []any{"op", op, "pod", pod.Namespace + "/" + pod.Name, "containerID", pod.ShortID(), "status", status, "duration", elapsed}
	if err != nil {
		s.log.Warn("CNI request failed", append(attrs, "err", err)...)
		writeJSON(w, status, cnirpc.ErrorResponse{Error: cnirpc.BoundMessage(err.Error())})
		return
	}
	s.log.Debug("CNI request served", attrs...)
	writeJSON(w, status, struct{}{})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
