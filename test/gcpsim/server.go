// Package gcpsim is a Compute Engine API server for tests and the lab: the compute v1 REST protocol
// (JSON bodies, the {"error": {...}} envelope with HTTP statuses and reasons, zone operations) for exactly
// the methods the egressgw GCP provider calls (instances.get, instances.updateNetworkInterface,
// instances.aggregatedList, subnetworks.get, zoneOperations.get and wait), over an in-memory project
// loaded from a model file.
//
// It enforces what Compute Engine enforces for those methods: updateNetworkInterface is a PATCH (a field
// left out is unchanged; an explicitly empty aliasIpRanges removes every alias range) that needs the
// NIC's current fingerprint (412 conditionNotMet otherwise) and runs as a zone operation whose effect
// appears when it is DONE; requestId makes a repeated request return the first one's operation; alias
// ranges lie inside the subnetwork's primary range or a named secondary range, avoid reserved addresses,
// belong to one NIC of the network at a time (IP_IN_USE_BY_ANOTHER_RESOURCE inside the operation) and
// number at most the per-interface limit; a second write while an operation runs on the instance is 400
// resourceNotReady.
//
// Faults: errors by method (429/403 rateLimitExceeded, 5xx, anything), per-minute rate quotas, answer
// latency, operation latency, operation errors, stale fingerprints (a concurrent writer), hung VMs whose
// operations never finish, and VMs being deleted. Callers present OAuth bearer tokens (plain HTTP is
// fine); Options.AllowedPermissions and Options.Callers emulate IAM, and Permissions reports which
// permission each call needed.
//
// Use it in tests with httptest.NewServer(sim) and point the client at the server's URL with
// option.WithEndpoint.
package gcpsim

import (
	"github.com/egressgw/egressgw/test/simkit"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options tune a Server. The zero value is a quiet server on the wall clock that allows every caller
// everything.
type Options struct {
	// Clock drives operation latency, rate quotas and deletions; tests may step it. Default time.Now.
	Clock func() time.Time
	// OnChange is called, with the server locked, after every change of where an alias /32 lives, in
	// commit order. It must not call the server.
	OnChange func(Event)
	// AllowedPermissions, when not nil, are the IAM permissions every caller has; other calls get 403.
	AllowedPermissions []string
	// Callers, when not nil, are the only bearer tokens accepted (others get 401), each with its own
	// permissions (nil: every permission); it overrides AllowedPermissions.
	Callers map[string][]string
	Logger  *slog.Logger
}

// Server is the simulated compute endpoint; it implements http.Handler.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	latency simkit.Latency // injected answer latency; its own lock, so that requests wait it unlocked
	mu      sync.Mutex     // guards everything below
	st      *state
	ops     map[string]*operation // by zone/name
	opSeq   []string
	reqIDs  map[string]*operation // by requestId
	faults  faults
	calls   map[string]int // by method
	perms   map[string]int // by permission
}

// New builds a server from a model.
func New(m Model, opts Options) (*Server, error) {
	st, err := buildState(m)
	if err != nil {
		return nil, err
	}
	opts.Clock, opts.Logger = simkit.OrWallClock(opts.Clock), simkit.OrQuiet(opts.Logger)
	s := &Server{opts: opts, st: st, ops: map[string]*operation{}, reqIDs: map[string]*operation{},
		calls: map[string]int{}, perms: map[string]int{}}
	s.faults = newFaults()
	s.mux = s.routes()
	return s, nil
}

func (s *Server) now() time.Time { return s.opts.Clock() }

// ServeHTTP answers one compute REST request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// handler serves one method once the request is admitted; it runs with s.mu held.
type handler func(s *Server, r *http.Request, caller string) (any, *APIError)

const prefix = "/compute/v1/projects/{project}/"

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	add := func(pattern, method, permission string, h handler) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, method, permission, h) })
	}
	add("GET "+prefix+"zones/{zone}/instances/{instance}", "instances.get", "compute.instances.get", (*Server).getInstance)
	add("PATCH "+prefix+"zones/{zone}/instances/{instance}/updateNetworkInterface", "instances.updateNetworkInterface",
		"compute.instances.updateNetworkInterface", (*Server).updateNetworkInterface)
	add("GET "+prefix+"aggregated/instances", "instances.aggregatedList", "compute.instances.list", (*Server).aggregatedInstances)
	add("GET "+prefix+"regions/{region}/subnetworks/{subnetwork}", "subnetworks.get", "compute.subnetworks.get", (*Server).getSubnetwork)
	add("GET "+prefix+"zones/{zone}/operations/{operation}", "zoneOperations.get", "compute.zoneOperations.get", (*Server).getOperation)
	add("POST "+prefix+"zones/{zone}/operations/{operation}/wait", "zoneOperations.wait", "compute.zoneOperations.get", (*Server).waitOperation)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apiErr(http.StatusNotFound, ReasonNotFound, "The simulator does not serve %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// serve admits a request (credentials, project, IAM, injected faults, rate quotas), waits the answer
// latency, then runs the handler.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, method, permission string, h handler) {
	caller, aerr := s.admit(r, method, permission)
	if aerr == nil {
		aerr = s.wait(r)
	}
	var body any
	if aerr == nil {
		s.mu.Lock()
		s.settle()
		body, aerr = h(s, r, caller)
		if aerr == nil && s.faults.lost.Take(method) { // done, but the answer never reaches the client
			aerr = apiErr(http.StatusServiceUnavailable, ReasonBackendError, "Injected by the simulator after the request took effect.")
		}
		s.mu.Unlock()
	}
	if aerr != nil {
		s.opts.Logger.Debug("gcpsim: refused", "method", method, "status", aerr.Status, "reason", aerr.Reason, "message", aerr.Message)
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) admit(r *http.Request, method, permission string) (string, *APIError) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", apiErr(http.StatusUnauthorized, ReasonRequired, "Request is missing required authentication credential. Expected OAuth 2 access token.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	if _, known := s.opts.Callers[token]; s.opts.Callers != nil && !known {
		return "", apiErr(http.StatusUnauthorized, "authError", "Request had invalid authentication credentials.")
	}
	if p := r.PathValue("project"); p != s.st.project {
		return "", notFound("projects/" + p)
	}
	if aerr := s.authorize(token, permission, r.URL.Path); aerr != nil {
		return "", aerr
	}
	return token, s.fault(method)
}

// authorize records that the call needed permission and refuses it when the caller lacks it. The
// caller holds s.mu.
func (s *Server) authorize(token, permission, resource string) *APIError {
	s.perms[permission]++
	allowed := s.opts.AllowedPermissions
	if s.opts.Callers != nil {
		allowed = s.opts.Callers[token]
	}
	if allowed != nil && !slices.Contains(allowed, permission) {
		resource = strings.TrimPrefix(resource, "/compute/v1/")
		return apiErr(http.StatusForbidden, ReasonForbidden, "Required '%s' permission for '%s'", permission, resource)
	}
	return nil
}

// wait applies the injected answer latency, ending early when the client gives up.
func (s *Server) wait(r *http.Request) *APIError {
	if !s.latency.Wait(r.Context()) {
		return apiErr(http.StatusServiceUnavailable, ReasonBackendError, "client went away")
	}
	return nil
}
