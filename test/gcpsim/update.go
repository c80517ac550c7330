package gcpsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
)

// uuidForm is the form the API requires of a requestId.
var uuidForm = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// unchangeable are NetworkInterface fields this method cannot change here; sent with their current
// value they are accepted, as the API does with a full NIC object read back from instances.get.
var unchangeable = []string{"name", "network", "subnetwork", "networkIP", "stackType", "kind"}

// updateNetworkInterface is instances.updateNetworkInterface: a PATCH of one NIC, with the NIC's
// fingerprint, run as a zone operation.
func (s *Server) updateNetworkInterface(r *http.Request, caller string) (any, *APIError) {
	reqID := r.URL.Query().Get("requestId")
	if reqID != "" && !uuidForm.MatchString(reqID) {
		return nil, invalid("requestId", "%q is not a valid UUID", reqID)
	}
	if op := s.reqIDs[reqID]; reqID != "" && op != nil {
		return s.renderOperation(op), nil // a retry of a request already taken: its operation, nothing new
	}
	in, aerr := s.instanceOf(r)
	if aerr != nil {
		return nil, aerr
	}
	n, body, aerr := s.patchTarget(r, in)
	if aerr != nil {
		return nil, aerr
	}
	aliases, changed, aerr := s.newAliases(r, caller, n, body)
	if aerr != nil {
		return nil, aerr
	}
	if in.busy != "" {
		return nil, apiErr(http.StatusBadRequest, ReasonResourceNotReady, "The resource '%s' is not ready", s.st.instanceLink(in)[len(linkBase):])
	}
	op := s.startOperation(in, "updateNetworkInterface", caller, func() *OperationError {
		if !changed {
			return nil
		}
		if oerr := s.st.checkInUse(n, aliases); oerr != nil {
			return oerr
		}
		before := n.aliases
		n.aliases, n.fingerprint = aliases, s.st.fingerprint()
		s.report(in, n, before, aliases)
		return nil
	})
	if reqID != "" {
		s.reqIDs[reqID] = op
	}
	return s.renderOperation(op), nil
}

// patchTarget finds the NIC named by the networkInterface parameter and reads the body as a field map
// (to tell an absent field from an empty one), checking the fingerprint and unchangeable fields.
func (s *Server) patchTarget(r *http.Request, in *instance) (*nic, map[string]json.RawMessage, *APIError) {
	name := r.URL.Query().Get("networkInterface")
	if name == "" {
		return nil, nil, apiErr(http.StatusBadRequest, ReasonRequired, "Required parameter 'networkInterface' is missing")
	}
	i := slices.IndexFunc(in.nics, func(n *nic) bool { return n.name == name })
	if i < 0 {
		return nil, nil, invalid("networkInterface", "instance %s has no network interface %q", in.name, name)
	}
	n := in.nics[i]
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return nil, nil, apiErr(http.StatusBadRequest, "parseError", "Invalid JSON payload received. %v", err)
	}
	var fp string
	if raw, ok := body["fingerprint"]; !ok || json.Unmarshal(raw, &fp) != nil || fp == "" {
		return nil, nil, apiErr(http.StatusBadRequest, ReasonRequired, "Required field 'resource.fingerprint' not specified")
	}
	if s.faults.staleFingerprints > 0 { // another writer changed the NIC just before this request
		s.faults.staleFingerprints--
		n.fingerprint = s.st.fingerprint()
	}
	if fp != n.fingerprint {
		return nil, nil, apiErr(http.StatusPreconditionFailed, ReasonConditionNotMet, "Supplied fingerprint does not match current metadata fingerprint.")
	}
	current := s.st.renderInstance(in).NetworkInterfaces[i]
	cur, _ := json.Marshal(current)
	var curFields map[string]json.RawMessage
	_ = json.Unmarshal(cur, &curFields)
	for _, f := range unchangeable {
		if raw, ok := body[f]; ok && !bytes.Equal(compact(raw), compact(curFields[f])) {
			return nil, nil, invalid("resource."+f, "%s cannot be changed by updateNetworkInterface in the simulator", f)
		}
	}
	return n, body, nil
}

// newAliases is the NIC's alias list after the PATCH: unchanged when aliasIpRanges is absent (or null),
// the given list (possibly empty) otherwise. Setting alias ranges also needs compute.subnetworks.use.
func (s *Server) newAliases(r *http.Request, caller string, n *nic, body map[string]json.RawMessage) ([]alias, bool, *APIError) {
	raw, ok := body["aliasIpRanges"]
	if !ok || string(compact(raw)) == "null" {
		return n.aliases, false, nil
	}
	if aerr := s.authorize(caller, "compute.subnetworks.use", s.st.subnetLink(n.subnet)[len(linkBase):]); aerr != nil {
		return nil, false, aerr
	}
	var specs []aliasJSON
	if err := json.Unmarshal(raw, &specs); err != nil {
		return nil, false, invalid("resource.aliasIpRanges", "%v", err)
	}
	aliases, aerr := s.st.checkAliases(n, specs)
	return aliases, aerr == nil, aerr
}

func compact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}
