// Package azuresim is an Azure Resource Manager simulator for tests and the lab: ARM's REST protocol over
// HTTPS (the Azure SDK sends bearer tokens only over TLS) for exactly the calls the egressgw Azure provider
// makes — virtual machines and scale set instances (Uniform and Flexible), network interfaces with ETags
// and long-running writes, subnets and public IP addresses — answered in the JSON shapes of the
// armcompute and armnetwork SDK models, with errors in ARM's {"error":{"code","message"}} shape.
//
// It enforces what the Network resource provider enforces for those calls: If-Match against the NIC's
// ETag (412), one write per NIC at a time (429 RetryableErrorDueToAnotherOperation), static private IPs
// inside their subnet, outside Azure's reserved addresses and on one ip configuration per virtual network,
// a public IP on one ip configuration at a time, at most 256 ip configurations per NIC, read-only NICs of
// Uniform scale set instances (405), and RBAC: a role allow-list per caller, with the linked join actions
// a NIC write needs on the subnets, public IPs and load balancer pools it references. Writes are
// long-running operations polled through Azure-AsyncOperation (or Location) with a configurable latency;
// faults can be injected: throttling with Retry-After, another operation in progress, ETag races, failed
// operations, slow answers. Every change of where a private IP lives is reported to Options.OnChange when
// its operation completes.
//
// Use it with NewCA and CA.Serve (HTTPS with a test CA), a Credential as the SDK's TokenCredential, and a
// cloud.Configuration whose ResourceManager endpoint is the server's URL.
package azuresim

import (
	"fmt"
	"github.com/egressgw/egressgw/test/simkit"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options tune a Server. The zero value is a quiet server on the wall clock that allows every action.
type Options struct {
	// Clock drives operation completion and token buckets; tests may freeze or step it. Default time.Now.
	Clock func() time.Time
	// OnChange is called when an operation that changes where a private IP lives completes, in completion
	// order. It must not call back into the server.
	OnChange func(Event)
	// Roles, when not nil, emulates Azure RBAC: the actions each caller (the principal named by its bearer
	// token) may perform. Others get AuthorizationFailed or LinkedAuthorizationFailed (403).
	Roles  map[string][]string
	Logger *slog.Logger
}

// Event is one change of where a private IP lives.
type Event struct {
	IP netip.Addr
	// Interface and Instance are the NIC and VM (or scale set VM) IDs that hold IP now; empty when IP left.
	Interface, Instance string
	// PrevInterface is the NIC that held IP before, if any.
	PrevInterface string
	// PublicIP is the ID of the public IP address associated with IP now, if any.
	PublicIP string
	// NextHop is the primary private address of the NIC holding IP (where a fabric routes it); invalid
	// when IP left.
	NextHop netip.Addr
}

// Server is the simulated ARM endpoint; it implements http.Handler.
type Server struct {
	opts    Options
	fireMu  sync.Mutex     // serializes completions with their OnChange calls, so events arrive in order
	latency simkit.Latency // injected answer latency; its own lock, so that requests wait it unlocked
	mu      sync.Mutex     // guards everything below
	st      *state
	faults  faults
	actions map[string]int
	callers map[string]int
	tokens  map[string]int
	reqs    int
	// latencies of the accepted NIC writes, in order
	latencies []time.Duration
}

// New builds a server from a model.
func New(m Model, opts Options) (*Server, error) {
	st, err := buildState(m)
	if err != nil {
		return nil, err
	}
	opts.Clock, opts.Logger = simkit.OrWallClock(opts.Clock), simkit.OrQuiet(opts.Logger)
	s := &Server{opts: opts, st: st, actions: map[string]int{}, callers: map[string]int{}, tokens: map[string]int{}}
	s.faults = newFaults()
	return s, nil
}

func (s *Server) now() time.Time { return s.opts.Clock() }

// ServeHTTP answers one ARM request; paths outside /subscriptions go to the Entra token endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(strings.ToLower(r.URL.Path), "/subscriptions/") {
		s.Entra().ServeHTTP(w, r)
		return
	}
	s.settle()
	w.Header().Set("x-ms-request-id", s.requestID())
	rt, who, aerr := s.admit(r)
	if aerr == nil {
		aerr = s.wait(r)
	}
	if aerr == nil && s.lose(rt, r) {
		s.opts.Logger.Debug("azuresim: losing the answer", "method", r.Method, "path", r.URL.Path)
		_ = s.serve(httptest.NewRecorder(), r, rt, who)
		cutConnection(w)
		return
	}
	if aerr == nil {
		aerr = s.serve(w, r, rt, who)
	}
	if aerr != nil {
		s.opts.Logger.Debug("azuresim: refused", "method", r.Method, "path", r.URL.Path, "status", aerr.Status, "code", aerr.Code)
		writeError(w, aerr)
	}
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs++
	return fmt.Sprintf("a2e50000-0000-4000-8000-%012x", s.reqs)
}

// admit checks what ARM checks before the resource provider acts: a known resource type and method, the
// api-version, the caller's token and role, and injected faults and throttling.
func (s *Server) admit(r *http.Request) (route, string, *APIError) {
	rt, ok := parseRoute(r.URL.Path)
	spec, known := kinds[rt.kind]
	switch {
	case !ok || !known:
		return rt, "", apiErr(http.StatusBadRequest, CodeInvalidResourceType, "The resource type could not be found for path '%s'.", r.URL.Path)
	case !slices.Contains(spec.methods, r.Method):
		return rt, "", apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
	case r.URL.Query().Get("api-version") == "":
		return rt, "", apiErr(http.StatusBadRequest, CodeMissingAPIVersion, "The api-version query parameter (?api-version=) is required for all requests.")
	}
	who, aerr := principal(r)
	if aerr != nil {
		return rt, "", aerr
	}
	action := spec.action + "/read"
	if r.Method != http.MethodGet {
		action = spec.action + "/write"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callers[who]++
	if aerr := s.authorize(who, action, rt.id); aerr != nil {
		return rt, who, aerr
	}
	return rt, who, s.fault(who, action, r.Method)
}

// lose reports whether the answer to this admitted request is to be lost.
func (s *Server) lose(rt route, r *http.Request) bool {
	action := kinds[rt.kind].action + "/read"
	if r.Method != http.MethodGet {
		action = kinds[rt.kind].action + "/write"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loseAnswer(action)
}

// cutConnection closes the client's connection without an answer.
func cutConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// wait applies the injected answer latency, ending early when the client gives up.
func (s *Server) wait(r *http.Request) *APIError {
	if !s.latency.Wait(r.Context()) {
		return apiErr(http.StatusInternalServerError, CodeInternalServerError, "client went away")
	}
	return nil
}

// serve dispatches an admitted request to its handler.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route, who string) *APIError {
	switch {
	case rt.kind == "microsoft.network/networkinterfaces" && r.Method == http.MethodPut:
		return s.putNIC(w, r, rt, who)
	case rt.kind == "microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces" && r.Method == http.MethodPut:
		return apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			"The network interface '%s' belongs to a Uniform virtual machine scale set instance: change it through the scale set's model, not with a PUT.", rt.id)
	case rt.kind == "microsoft.network/networkinterfaces" && rt.collection:
		return s.read(w, func(st *state) (any, *APIError) { return st.listNICs(rt), nil })
	case rt.kind == "microsoft.network/locations/operations":
		return s.getOperation(w, rt)
	case rt.kind == "microsoft.network/locations/operationresults":
		return s.getOperationResult(w, r, rt)
	}
	if rt.collection {
		return apiErr(http.StatusBadRequest, CodeInvalidResourceType, "Listing %s is not simulated.", rt.kind)
	}
	return s.read(w, func(st *state) (any, *APIError) { return st.get(rt) })
}

// read answers a GET from the current state.
func (s *Server) read(w http.ResponseWriter, fn func(*state) (any, *APIError)) *APIError {
	s.mu.Lock()
	body, aerr := fn(s.st)
	s.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// Actions returns how many times each RBAC action was checked, linked join actions included, whatever
// the outcome: the permissions the calls needed.
func (s *Server) Actions() map[string]int { return s.counts(s.actions) }

// Callers returns how many requests each principal made.
func (s *Server) Callers() map[string]int { return s.counts(s.callers) }

// Tokens returns how many tokens each tenant/client pair was issued by Entra.
func (s *Server) Tokens() map[string]int { return s.counts(s.tokens) }

func (s *Server) counts(m map[string]int) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(m)
}
