package ec2sim

import (
	"maps"
	"slices"
	"strings"
)

// The Describe actions. Each answers from a state (the visible one, which may lag the truth), with IDs and
// filters applied as EC2 does: an unknown ID is an error, a filter that matches nothing is an empty set.

func (s *state) describeInstances(r request) (any, *APIError) {
	ids := r.list("InstanceId")
	if len(ids) > 0 && r.form.Get("MaxResults") != "" {
		return nil, apiErr(CodeInvalidParameterCombo, "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	found, aerr := pickFiltered(r, s.instanceOrder, s.instances, ids, s.instanceFields, notFound(CodeInstanceNotFound, "instance ID"))
	if aerr != nil {
		return nil, aerr
	}
	items, next, aerr := page(r, found, 5, 1000)
	if aerr != nil {
		return nil, aerr
	}
	out := describeInstancesResponse{NextToken: next}
	for _, in := range items {
		res := reservationXML{ReservationID: "r-" + idSuffix(in.id), OwnerID: s.account, Groups: defaultGroup(in.vpc)}
		res.Instances.Items = []instanceXML{s.instanceXML(in)}
		out.Reservations.Items = append(out.Reservations.Items, res)
	}
	return &out, nil
}

func (s *state) describeENIs(r request) (any, *APIError) {
	ids := r.list("NetworkInterfaceId")
	if len(ids) > 0 && r.form.Get("MaxResults") != "" {
		return nil, apiErr(CodeInvalidParameterCombo, "You cannot specify MaxResults and network interface IDs in the same request")
	}
	found, aerr := pickFiltered(r, s.eniOrder, s.enis, ids, s.eniFields, notFound(CodeENINotFound, "networkInterface ID"))
	if aerr != nil {
		return nil, aerr
	}
	items, next, aerr := page(r, found, 5, 1000)
	if aerr != nil {
		return nil, aerr
	}
	out := describeENIsResponse{NextToken: next}
	for _, n := range items {
		out.Interfaces.Items = append(out.Interfaces.Items, s.eniXML(n))
	}
	return &out, nil
}

func (s *state) describeSubnets(r request) (any, *APIError) {
	found, aerr := pickFiltered(r, s.subnetOrder, s.subnets, r.list("SubnetId"), subnetFields, notFound(CodeSubnetNotFound, "subnet ID"))
	if aerr != nil {
		return nil, aerr
	}
	items, next, aerr := page(r, found, 5, 1000)
	if aerr != nil {
		return nil, aerr
	}
	out := describeSubnetsResponse{NextToken: next}
	for _, sn := range items {
		out.Subnets.Items = append(out.Subnets.Items, s.subnetXML(sn))
	}
	return &out, nil
}

func (s *state) describeTypes(r request) (any, *APIError) {
	names := r.list("InstanceType")
	typeFields := func(t InstanceTypeSpec) fields { return fields{"instance-type": {t.Name}} }
	unknown := func(missing []string) *APIError {
		return apiErr(CodeInvalidInstanceType, "The following supplied instance types do not exist: [%s]", strings.Join(missing, ", "))
	}
	found, aerr := pickFiltered(r, slices.Sorted(maps.Keys(s.types)), s.types, names, typeFields, unknown)
	if aerr != nil {
		return nil, aerr
	}
	items, next, aerr := page(r, found, 5, 100)
	if aerr != nil {
		return nil, aerr
	}
	out := describeTypesResponse{NextToken: next}
	for _, t := range items {
		out.Types.Items = append(out.Types.Items, typeXMLOf(t))
	}
	return &out, nil
}

func (s *state) describeAddresses(r request) (any, *APIError) {
	found, aerr := pickFiltered(r, s.eipOrder, s.eips, r.list("AllocationId"), s.addressFields, notFound(CodeAllocationNotFound, "allocation ID"))
	if aerr != nil {
		return nil, aerr
	}
	out := describeAddressesResponse{}
	for _, e := range found {
		out.Addresses.Items = append(out.Addresses.Items, s.addressXML(e))
	}
	return &out, nil
}

// pickFiltered returns, in model order, the items named by ids (all when ids is empty) that match the
// request's filters.
func pickFiltered[T any](r request, order []string, items map[string]T, ids []string, fieldsOf func(T) fields,
	missing func([]string) *APIError) ([]T, *APIError) {
	fs, aerr := r.filters()
	if aerr != nil {
		return nil, aerr
	}
	var unknown []string
	for _, id := range ids {
		if _, ok := items[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		return nil, missing(unknown)
	}
	var out []T
	for _, id := range order {
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		ok, aerr := matchAll(fs, fieldsOf(items[id]))
		if aerr != nil {
			return nil, aerr
		}
		if ok {
			out = append(out, items[id])
		}
	}
	return out, nil
}

// notFound builds EC2's message for unknown IDs: "The instance ID 'i-1' does not exist", or the plural form.
func notFound(code, kind string) func([]string) *APIError {
	return func(ids []string) *APIError {
		if len(ids) == 1 {
			return apiErr(code, "The %s '%s' does not exist", kind, ids[0])
		}
		return apiErr(code, "The %ss '%s' do not exist", kind, strings.Join(ids, ", "))
	}
}
