package gcpsim

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"
)

func (s *Server) instanceOf(r *http.Request) (*instance, *APIError) {
	zone, name := r.PathValue("zone"), r.PathValue("instance")
	in := s.st.instances[zone+"/"+name]
	if in == nil {
		return nil, notFound("projects/" + s.st.project + "/zones/" + zone + "/instances/" + name)
	}
	return in, nil
}

func (s *Server) getInstance(r *http.Request, _ string) (any, *APIError) {
	in, aerr := s.instanceOf(r)
	if aerr != nil {
		return nil, aerr
	}
	return s.st.renderInstance(in), nil
}

func (s *Server) getSubnetwork(r *http.Request, _ string) (any, *APIError) {
	region, name := r.PathValue("region"), r.PathValue("subnetwork")
	sn := s.st.subnets[region+"/"+name]
	if sn == nil {
		return nil, notFound("projects/" + s.st.project + "/regions/" + region + "/subnetworks/" + name)
	}
	return s.st.renderSubnet(sn), nil
}

func (s *Server) operationOf(r *http.Request) (*operation, *APIError) {
	zone, name := r.PathValue("zone"), r.PathValue("operation")
	op := s.ops[zone+"/"+name]
	if op == nil {
		return nil, notFound("projects/" + s.st.project + "/zones/" + zone + "/operations/" + name)
	}
	return op, nil
}

func (s *Server) getOperation(r *http.Request, _ string) (any, *APIError) {
	op, aerr := s.operationOf(r)
	if aerr != nil {
		return nil, aerr
	}
	return s.renderOperation(op), nil
}

// waitLimit is how long zoneOperations.wait holds a request before it answers with a running operation,
// as the API does (about two minutes).
const waitLimit = 2 * time.Minute

// waitOperation answers when the operation is DONE, after waitLimit, or when the client leaves. It
// releases the lock while it waits.
func (s *Server) waitOperation(r *http.Request, _ string) (any, *APIError) {
	op, aerr := s.operationOf(r)
	if aerr != nil {
		return nil, aerr
	}
	deadline := time.Now().Add(waitLimit)
	for op.status != OpDone && time.Now().Before(deadline) && r.Context().Err() == nil {
		s.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		s.mu.Lock()
		s.settle()
	}
	return s.renderOperation(op), nil
}

// aggregatedInstances lists every instance of the project, grouped by zone, maxResults (default 500) per
// page. Filters are not simulated and refused, so a provider that relies on one notices.
func (s *Server) aggregatedInstances(r *http.Request, _ string) (any, *APIError) {
	q := r.URL.Query()
	if q.Get("filter") != "" {
		return nil, invalid("filter", "filters are not simulated")
	}
	size, offset := 500, 0
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return nil, invalid("maxResults", "%q: want 1 to 500", v)
		}
		size = n
	}
	if v := q.Get("pageToken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, invalid("pageToken", "%q is not a token of this list", v)
		}
		offset = n
	}
	all := s.sortedInstances()
	end := min(len(all), offset+size)
	items := map[string]map[string][]instanceJSON{}
	for _, in := range all[min(offset, end):end] {
		key := "zones/" + in.zone
		if items[key] == nil {
			items[key] = map[string][]instanceJSON{}
		}
		items[key]["instances"] = append(items[key]["instances"], s.st.renderInstance(in))
	}
	out := map[string]any{"kind": "compute#instanceAggregatedList", "id": "projects/" + s.st.project + "/aggregated/instances",
		"items": items, "selfLink": linkBase + "projects/" + s.st.project + "/aggregated/instances"}
	if end < len(all) {
		out["nextPageToken"] = strconv.Itoa(end)
	}
	return out, nil
}

func (s *Server) sortedInstances() []*instance {
	var out []*instance
	for _, key := range s.st.order {
		out = append(out, s.st.instances[key])
	}
	slices.SortStableFunc(out, func(a, b *instance) int { return cmp.Compare(a.zone, b.zone) })
	return out
}
