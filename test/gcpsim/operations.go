package gcpsim

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// Operation statuses of the API.
const (
	OpPending = "PENDING"
	OpRunning = "RUNNING"
	OpDone    = "DONE"
)

// operation is one zone operation. Its effect (apply) takes place when it completes: a write is not
// visible in instances.get until its operation is DONE, as on Compute Engine.
type operation struct {
	id              uint64
	name, zone, typ string
	instance        string // key zone/name of the target
	targetID        uint64
	targetLink      string
	user            string
	inserted, ended time.Time
	latency         time.Duration
	status          string
	apply           func() *OperationError
	err             *OperationError
}

// Event is one change of where an egress address lives: an alias /32 added to or removed from a NIC.
type Event struct {
	IP netip.Addr
	// Instance, Zone and Interface hold the IP now; empty when it was removed.
	Instance, Zone, Interface string
	// NextHop is the primary IP of the NIC now holding it (where a fabric routes the /32); invalid when
	// removed.
	NextHop netip.Addr
	// PrevInstance and PrevZone held it before; empty when it was nowhere.
	PrevInstance, PrevZone string
}

// startOperation records a new operation on in. It completes at once when the latency is zero.
func (s *Server) startOperation(in *instance, typ, user string, apply func() *OperationError) *operation {
	op := &operation{id: s.st.newID(), zone: in.zone, typ: typ, instance: in.zone + "/" + in.name, targetID: in.id,
		targetLink: s.st.instanceLink(in), user: user,
		inserted: s.now(), latency: s.operationLatency(), status: OpPending, apply: apply}
	op.name = fmt.Sprintf("operation-%d-%012x", op.inserted.UnixMilli(), op.id)
	s.ops[op.zone+"/"+op.name] = op
	s.opSeq = append(s.opSeq, op.zone+"/"+op.name)
	in.busy = op.name
	s.settle()
	return op
}

// settle moves every operation whose time has come to DONE, applying its effect, and finishes
// deletions. The caller holds s.mu.
func (s *Server) settle() {
	now := s.now()
	for _, key := range s.st.order {
		if in := s.st.instances[key]; in != nil && in.deleteWhenOperationsDone && !now.Before(s.faults.deletions[key]) {
			s.removeInstance(key)
		}
	}
	for _, op := range s.opOrder() {
		if op.status == OpDone {
			continue
		}
		in := s.st.instances[op.instance]
		switch {
		case in == nil:
			s.finish(op, now, &OperationError{Code: CodeResourceNotFound, Message: fmt.Sprintf("The resource '%s' was not found", op.instance), status: 404})
		case in.hung:
			op.status = OpRunning
		case now.Sub(op.inserted) >= op.latency:
			s.finish(op, now, s.outcome(op))
			in.busy = ""
		case now.Sub(op.inserted) >= op.latency/10:
			op.status = OpRunning
		}
	}
}

// outcome is an injected operation error, or the effect of the operation.
func (s *Server) outcome(op *operation) *OperationError {
	if q := s.faults.opErrors; len(q) > 0 {
		s.faults.opErrors = q[1:]
		status := http.StatusBadRequest
		if q[0] == CodeInternalError {
			status = http.StatusInternalServerError
		}
		return &OperationError{Code: q[0], Message: "Injected by the simulator: " + q[0], status: status}
	}
	return op.apply()
}

func (s *Server) finish(op *operation, now time.Time, err *OperationError) {
	op.status, op.ended, op.err = OpDone, now, err
}

// opOrder returns the operations oldest first, so effects apply in the order they were requested.
func (s *Server) opOrder() []*operation {
	out := make([]*operation, 0, len(s.opSeq))
	for _, key := range s.opSeq {
		out = append(out, s.ops[key])
	}
	return out
}

func (s *Server) renderOperation(op *operation) operationJSON {
	out := operationJSON{Kind: "compute#operation", ID: strconv.FormatUint(op.id, 10), Name: op.name, Zone: s.st.zoneLink(op.zone),
		OperationType: op.typ, TargetLink: op.targetLink,
		TargetID: strconv.FormatUint(op.targetID, 10), Status: op.status, User: op.user, InsertTime: op.inserted.Format(time.RFC3339Nano),
		SelfLink: s.st.zoneLink(op.zone) + "/operations/" + op.name}
	if op.status != OpPending {
		out.StartTime = op.inserted.Format(time.RFC3339Nano)
	}
	if op.status == OpDone {
		out.Progress, out.EndTime = 100, op.ended.Format(time.RFC3339Nano)
	}
	if op.err != nil {
		out.Error = &opErrorJSON{Errors: []opErrorItem{{Code: op.err.Code, Message: op.err.Message}}}
		out.HTTPErrorStatusCode, out.HTTPErrorMessage = op.err.status, httpMessage(op.err.status)
	}
	return out
}

func httpMessage(status int) string {
	switch status {
	case 400:
		return "BAD REQUEST"
	case 404:
		return "NOT FOUND"
	}
	return "INTERNAL SERVER ERROR"
}

// removeInstance deletes an instance: its addresses are free again (OnChange reports its /32 aliases).
func (s *Server) removeInstance(key string) {
	in := s.st.instances[key]
	for _, n := range in.nics {
		s.report(in, n, n.aliases, nil)
	}
	delete(s.st.instances, key)
	delete(s.faults.deletions, key)
	for i, k := range s.st.order {
		if k == key {
			s.st.order = append(s.st.order[:i:i], s.st.order[i+1:]...)
			break
		}
	}
}

// report calls OnChange for each /32 alias that n gained or lost between before and after.
func (s *Server) report(in *instance, n *nic, before, after []alias) {
	if s.opts.OnChange == nil {
		return
	}
	has := func(list []alias, p netip.Prefix) bool {
		for _, a := range list {
			if a.prefix == p {
				return true
			}
		}
		return false
	}
	for _, a := range before {
		if a.prefix.Bits() == 32 && !has(after, a.prefix) {
			s.opts.OnChange(Event{IP: a.prefix.Addr(), PrevInstance: in.name, PrevZone: in.zone})
		}
	}
	for _, a := range after {
		if a.prefix.Bits() == 32 && !has(before, a.prefix) {
			s.opts.OnChange(Event{IP: a.prefix.Addr(), Instance: in.name, Zone: in.zone, Interface: n.name, NextHop: n.ip})
		}
	}
}
