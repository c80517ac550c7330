// Package ec2sim is an EC2-compatible API server for tests and the lab: the EC2 Query protocol
// (form-encoded POST, Action and Version, XML answers in the shapes of the EC2 API reference, the
// <Response><Errors> envelope and EC2's HTTP status codes) for exactly the actions the egressgw AWS
// provider calls, over an in-memory VPC loaded from a model file.
//
// It enforces what EC2 enforces for those actions (an IP inside the ENI's subnet and not reserved, the
// per-ENI address limit of the instance type, an IP on one ENI at a time, primary addresses fixed, Elastic
// IPs following their private IP) and answers unknown IDs with EC2's error codes. Faults can be injected:
// throttling with token buckets of EC2's sizes, forced errors, latency, and delayed visibility of writes.
// Every change of where a private IP lives is reported to Options.OnChange.
//
// Use it in tests with httptest.NewServer(sim), and point the SDK at the server's URL (BaseEndpoint or
// AWS_ENDPOINT_URL_EC2). Request signatures are required but not verified.
package ec2sim

import (
	"fmt"
	"github.com/egressgw/egressgw/test/simkit"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// apiVersion is the only EC2 API version the simulator speaks (the one the SDK sends).
const apiVersion = "2016-11-15"

// Options tune a Server. The zero value is a quiet server on the wall clock that allows every action.
type Options struct {
	// Clock drives token buckets and delayed visibility; tests may freeze or step it. Default time.Now.
	Clock func() time.Time
	// OnChange is called after every change of where a private IP lives, in commit order, before the
	// answer is sent. It must not call back into mutating requests.
	OnChange func(Event)
	// AllowedActions, when not nil, emulates an IAM policy: other actions get UnauthorizedOperation (403).
	AllowedActions []string
	// Policy, when not nil, is an IAM policy enforced with its resources and conditions (iam.go).
	Policy *Policy
	// Policies are the IAM policies of other principals, by the access key ID their requests are signed
	// with (a node's instance role beside the manager's role); requests of other keys get Policy.
	Policies map[string]*Policy
	// OnCall, when set, is called with every answered request (calls.go), after OnChange.
	OnCall func(Call)
	// RefuseUnfiltered answers Describe calls without IDs, filters or pagination with an error, so that a
	// test cannot miss one. They are recorded (Unfiltered) either way.
	RefuseUnfiltered bool
	Logger           *slog.Logger
}

// Server is the simulated EC2 endpoint; it implements http.Handler.
type Server struct {
	opts    Options
	writeMu sync.Mutex     // serializes writes with their OnChange calls, so events arrive in commit order
	latency simkit.Latency // injected answer latency; its own lock, so that requests wait it unlocked
	mu      sync.Mutex     // guards everything below
	st      *state
	history []snapshot
	faults  faults
	actions map[string]int
	unfilt  []string
	reqs    int
}

type snapshot struct {
	at time.Time
	st *state
}

// New builds a server from a model.
func New(m Model, opts Options) (*Server, error) {
	st, err := buildState(m)
	if err != nil {
		return nil, err
	}
	opts.Clock, opts.Logger = simkit.OrWallClock(opts.Clock), simkit.OrQuiet(opts.Logger)
	return &Server{opts: opts, st: st, actions: map[string]int{}}, nil
}

func (s *Server) now() time.Time { return s.opts.Clock() }

// ServeHTTP answers one EC2 Query request.
func (s *Server) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	reqID := s.requestID()
	r, aerr := s.admit(hr)
	if aerr == nil {
		aerr = s.wait(hr)
	}
	var body any
	if aerr == nil {
		body, aerr = s.serve(r)
	}
	s.recordCall(hr, r, aerr)
	if aerr != nil {
		s.opts.Logger.Debug("ec2sim: refused", "action", r.action, "code", aerr.Code, "message", aerr.Message)
		writeError(w, aerr, reqID)
		return
	}
	body.(interface{ set(string) }).set(reqID)
	w.Header().Set("X-Amzn-Requestid", reqID)
	writeXML(w, http.StatusOK, body)
}

func (h *head) set(requestID string) {
	h.Xmlns, h.RequestID = xmlns, requestID
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs++
	return fmt.Sprintf("e9a5c0de-0000-4000-8000-%012x", s.reqs)
}

// admit parses and records a request and checks what EC2 checks before it acts: the protocol, the
// signature's presence, the (emulated) IAM policy, and injected faults and throttling.
func (s *Server) admit(hr *http.Request) (request, *APIError) {
	if err := hr.ParseForm(); err != nil {
		return request{}, apiErr("MalformedQueryString", "%v", err)
	}
	r := request{action: hr.Form.Get("Action"), form: hr.Form}
	if aerr := s.checkProtocol(hr, r); aerr != nil {
		return r, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions[r.action]++
	if s.opts.AllowedActions != nil && !slices.Contains(s.opts.AllowedActions, r.action) {
		return r, apiErr(CodeUnauthorizedOperation, "You are not authorized to perform this operation (ec2:%s).", r.action)
	}
	if p := s.policyFor(accessKeyOf(hr)); p != nil {
		if c, ok := p.allows(s.st.authorizations(r)); !ok {
			return r, apiErr(CodeUnauthorizedOperation, "You are not authorized to perform this operation. User is not authorized to perform: ec2:%s on resource: %s because no identity-based policy allows the ec2:%s action", c.action, c.arn, c.action)
		}
	}
	if handlers[r.action].read != nil && !filtered(r) {
		s.unfilt = append(s.unfilt, r.action)
		if s.opts.RefuseUnfiltered {
			return r, apiErr(codeUnfilteredNotPermitted, "%s without IDs, filters or MaxResults", r.action)
		}
	}
	return r, s.fault(r)
}

func (s *Server) checkProtocol(hr *http.Request, r request) *APIError {
	switch {
	case r.action == "":
		return apiErr("MissingAction", "The request must contain the parameter Action")
	case hr.Form.Get("Version") == "":
		return apiErr(CodeMissingParameter, "The request must contain the parameter Version")
	case hr.Form.Get("Version") != apiVersion:
		return apiErr(CodeInvalidParameterValue, "This simulator speaks API version %s, not %s", apiVersion, hr.Form.Get("Version"))
	case hr.Header.Get("Authorization") == "":
		return apiErr(CodeMissingAuthToken, "Request is missing Authentication Token")
	}
	if _, ok := handlers[r.action]; !ok {
		return apiErr(CodeInvalidAction, "The action %s is not valid for this web service.", r.action)
	}
	return nil
}

// wait applies the injected latency, ending early when the client gives up.
func (s *Server) wait(hr *http.Request) *APIError {
	if !s.latency.Wait(hr.Context()) {
		return apiErr(CodeInternalError, "client went away")
	}
	return nil
}

func (s *Server) serve(r request) (any, *APIError) {
	h := handlers[r.action]
	if h.read != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.visible()
		st.now = s.now()
		return h.read(st, r)
	}
	return s.write(r, h.write)
}

// SetDetachDelay makes a detached interface stay "detaching" for d, as EC2 detaches asynchronously: until
// then it can be neither attached again nor deleted (InvalidNetworkInterface.InUse).
func (s *Server) SetDetachDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.detachDelay = d
}

// write applies a mutation to the true state, records it for delayed visibility, then reports the events.
func (s *Server) write(r request, fn func(*state, request) (any, []Event, *APIError)) (any, *APIError) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	s.st.now = s.now()
	body, events, aerr := fn(s.st, r)
	if aerr == nil && s.faults.visibility > 0 {
		s.history = append(s.history, snapshot{at: s.now(), st: s.st.clone()})
	}
	s.mu.Unlock()
	for _, ev := range events {
		s.opts.Logger.Info("ec2sim: IP moved", "ip", ev.IP, "to", ev.Interface, "instance", ev.Instance, "from", ev.PrevInterface)
		if s.opts.OnChange != nil {
			s.opts.OnChange(ev)
		}
	}
	return body, aerr
}

// visible is the state Describe calls see: the newest snapshot at least the visibility delay old. The
// caller holds s.mu.
func (s *Server) visible() *state {
	if s.faults.visibility <= 0 || len(s.history) == 0 {
		return s.st
	}
	cutoff := s.now().Add(-s.faults.visibility)
	i := len(s.history) - 1
	for i > 0 && s.history[i].at.After(cutoff) {
		i--
	}
	s.history = s.history[i:]
	return s.history[0].st
}

// TerminateInstance ends an instance as EC2 does: its network interfaces are deleted with every address
// on them (OnChange reports each), Elastic IPs on them are disassociated, and the instance stays visible
// as terminated.
func (s *Server) TerminateInstance(id string) error {
	_, aerr := s.write(request{}, func(st *state, _ request) (any, []Event, *APIError) {
		events, aerr := st.terminate(id)
		return nil, events, aerr
	})
	if aerr != nil {
		return aerr
	}
	return nil
}

// Holder is where the simulator has a private IP.
type Holder struct {
	Instance, Interface string
	Primary             bool
	// ElasticIP is the allocation ID of the Elastic IP associated with the IP, if any.
	ElasticIP string
}

// Where returns the true (not the delayed) holder of ip, in any VPC of the model.
func (s *Server) Where(ip netip.Addr) (Holder, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.st.eniOrder {
		n := s.st.enis[id]
		if i := slices.Index(n.ips, ip); i >= 0 {
			alloc, _ := s.st.eipOf(n.id, ip)
			return Holder{Instance: n.instance, Interface: n.id, Primary: i == 0, ElasticIP: alloc}, true
		}
	}
	return Holder{}, false
}

// HoldersOf returns every interface holding ip, in any VPC: never more than one while the simulator
// keeps EC2's rule that an address lives on one interface at a time. Tests check that rule with it.
func (s *Server) HoldersOf(ip netip.Addr) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range s.st.eniOrder {
		if slices.Contains(s.st.enis[id].ips, ip) {
			out = append(out, id)
		}
	}
	return out
}

// Actions returns how many requests of each action the server has received, whatever their outcome.
func (s *Server) Actions() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.actions))
	for k, v := range s.actions {
		out[k] = v
	}
	return out
}

// Unfiltered returns the Describe actions received without IDs, filters or pagination, in order.
func (s *Server) Unfiltered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.unfilt)
}
