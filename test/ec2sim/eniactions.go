package ec2sim

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The network interface lifecycle: CreateNetworkInterface (with ClientToken idempotency),
// AttachNetworkInterface (device index and the instance type's interface limit), ModifyNetworkInterfaceAttribute
// (DeleteOnTermination of an attachment), DetachNetworkInterface, DeleteNetworkInterface (refused while
// attached), and CreateTags.

func (s *state) handleCreateENI(r request) (any, []Event, *APIError) {
	subnetID, aerr := r.required("SubnetId")
	if aerr != nil {
		return nil, nil, aerr
	}
	token := r.form.Get("ClientToken")
	params := fingerprint(r, "ClientToken")
	if used, ok := s.tokens[token]; ok && token != "" {
		if used.params != params {
			return nil, nil, apiErr(CodeIdempotentMismatch, "Client token %s was used before with different parameters.", token)
		}
		return s.createResponse(used.eni, token), nil, nil
	}
	n, aerr := s.newENI(r, subnetID)
	if aerr != nil {
		return nil, nil, aerr
	}
	s.enis[n.id] = n
	s.eniOrder = append(s.eniOrder, n.id)
	for _, ip := range n.ips {
		s.owner[vpcAddr{n.vpc, ip}] = n.id
	}
	if token != "" {
		s.tokens[token] = tokenUse{params: params, eni: n}
	}
	return s.createResponse(n, token), nil, nil
}

func (s *state) createResponse(n eni, token string) *createENIResponse {
	if cur, ok := s.enis[n.id]; ok {
		n = cur
	}
	return &createENIResponse{Interface: s.eniXML(n), ClientToken: token}
}

// newENI builds the interface a create request asks for, checking what EC2 checks.
func (s *state) newENI(r request, subnetID string) (eni, *APIError) {
	sn, ok := s.subnets[subnetID]
	if !ok {
		return eni{}, apiErr(CodeSubnetNotFound, "The subnet ID '%s' does not exist", subnetID)
	}
	groups := r.list("SecurityGroupId")
	if len(groups) == 0 {
		groups = []string{defaultGroupID(sn.vpc)}
	}
	for _, g := range groups {
		if s.groups[g] != sn.vpc {
			return eni{}, apiErr(CodeGroupNotFound, "The security group '%s' does not exist in VPC '%s'", g, sn.vpc)
		}
	}
	tags, aerr := r.tagSpecs("network-interface")
	if aerr != nil {
		return eni{}, aerr
	}
	n := eni{id: s.newID("eni"), subnet: sn.id, vpc: sn.vpc, zone: sn.zone, groups: groups, tags: tags,
		description: r.form.Get("Description")}
	n.mac = macAddress(0x100000 + s.nextID)
	primary, aerr := s.primaryFor(r, sn)
	if aerr != nil {
		return eni{}, aerr
	}
	n.ips = []netip.Addr{primary}
	return n, nil
}

// primaryFor is the primary address of a new interface: the one requested, else the subnet's lowest free.
func (s *state) primaryFor(r request, sn subnet) (netip.Addr, *APIError) {
	raw := r.form.Get("PrivateIpAddress")
	if raw == "" {
		free, ok := s.freeAddrs(sn, 1)
		if !ok {
			return netip.Addr{}, apiErr(CodeInsufficientFreeAddresses, "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sn.id)
		}
		return free[0], nil
	}
	ip, err := s.usableIP(raw, sn)
	if err != nil {
		return netip.Addr{}, apiErr(CodeInvalidParameterValue, "Invalid value '%s' for PrivateIpAddress: %v", raw, err)
	}
	return ip, nil
}

func (s *state) handleAttachENI(r request) (any, []Event, *APIError) {
	var ids [3]string
	for i, name := range []string{"NetworkInterfaceId", "InstanceId", "DeviceIndex"} {
		var aerr *APIError
		if ids[i], aerr = r.required(name); aerr != nil {
			return nil, nil, aerr
		}
	}
	device, err := strconv.Atoi(ids[2])
	card, aerr := r.optInt("NetworkCardIndex")
	if err != nil || device < 0 || aerr != nil {
		return nil, nil, apiErr(CodeInvalidParameterValue, "Invalid value '%s' for DeviceIndex or NetworkCardIndex", ids[2])
	}
	n, in, aerr := s.attachable(ids[0], ids[1], device, card)
	if aerr != nil {
		return nil, nil, aerr
	}
	n.instance, n.device, n.card, n.attachment, n.deleteOnTermination = in.id, device, card, s.newID("eni-attach"), false
	s.enis[n.id] = n
	in.enis = append(slices.Clone(in.enis), n.id)
	s.instances[in.id] = in
	var events []Event
	for _, ip := range n.ips {
		events = append(events, Event{IP: ip, VPC: n.vpc, Instance: in.id, Interface: n.id, NextHop: n.ips[0], PrevInterface: n.id,
			MAC: n.mac, Attached: true})
	}
	return &attachENIResponse{AttachmentID: n.attachment, NetworkCardIndex: card}, events, nil
}

// attachable checks what EC2 checks before it attaches interface eniID to instance id.
func (s *state) attachable(eniID, id string, device, card int) (eni, instance, *APIError) {
	n, ok := s.enis[eniID]
	if !ok {
		return eni{}, instance{}, apiErr(CodeENINotFound, "The networkInterface ID '%s' does not exist", eniID)
	}
	in, ok := s.instances[id]
	if !ok {
		return eni{}, instance{}, apiErr(CodeInstanceNotFound, "The instance ID '%s' does not exist", id)
	}
	t := s.types[in.typ]
	switch {
	case in.state != "running" && in.state != "stopped":
		return eni{}, instance{}, apiErr(CodeIncorrectInstanceState, "The instance '%s' is not in a valid state for this operation.", id)
	case n.attachment != "" || n.status(s.now) == "detaching":
		return eni{}, instance{}, apiErr(CodeENIInUse, "Interface: [%s] in use.", eniID)
	case n.zone != in.zone:
		return eni{}, instance{}, apiErr(CodeInvalidParameterValue, "Network interface %s (zone %s) and instance %s (zone %s) are not in the same availability zone.", eniID, n.zone, id, in.zone)
	case card != 0:
		return eni{}, instance{}, apiErr(CodeInvalidParameterValue, "Network card index %d is not valid for instance type %s.", card, in.typ)
	case len(in.enis) >= t.MaxInterfaces:
		return eni{}, instance{}, apiErr(CodeAttachmentLimitExceeded, "Interface count %d exceeds the limit for %s", len(in.enis)+1, in.typ)
	case n.slots() > t.IPv4PerInterface:
		return eni{}, instance{}, apiErr(CodeIPLimitExceeded, "Number of private addresses of %s exceeds the limit for %s.", eniID, in.typ)
	}
	for _, other := range in.enis {
		if o := s.enis[other]; o.device == device && o.card == card {
			return eni{}, instance{}, apiErr(CodeInvalidParameterValue, "Instance '%s' already has an interface attached at device index '%d'.", id, device)
		}
	}
	return n, in, nil
}

func (s *state) handleModifyENI(r request) (any, []Event, *APIError) {
	n, aerr := s.requestENI(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	eniID := n.id
	if d, ok := r.form["Description.Value"]; ok {
		n.description = d[0]
	}
	if att := r.form.Get("Attachment.AttachmentId"); att != "" || r.form.Has("Attachment.DeleteOnTermination") {
		if att == "" || att != n.attachment {
			return nil, nil, apiErr(CodeAttachmentNotFound, "The attachment ID '%s' does not exist", att)
		}
		del, aerr := r.optBool("Attachment.DeleteOnTermination")
		if aerr != nil || del == nil {
			return nil, nil, apiErr(CodeMissingParameter, "The request must contain the parameter Attachment.DeleteOnTermination")
		}
		n.deleteOnTermination = *del
	}
	s.enis[eniID] = n
	return okResponse("ModifyNetworkInterfaceAttribute"), nil, nil
}

func (s *state) handleDetachENI(r request) (any, []Event, *APIError) {
	att, aerr := r.required("AttachmentId")
	if aerr != nil {
		return nil, nil, aerr
	}
	for _, id := range s.eniOrder {
		n := s.enis[id]
		if n.attachment != att {
			continue
		}
		if n.device == 0 && n.card == 0 {
			return nil, nil, apiErr(CodeOperationNotPermitted, "The network interface at device index 0 and networkCard index 0 cannot be detached.")
		}
		in := s.instances[n.instance]
		in.enis = slices.DeleteFunc(slices.Clone(in.enis), func(e string) bool { return e == id })
		s.instances[in.id] = in
		var events []Event
		for _, ip := range n.ips {
			events = append(events, Event{IP: ip, VPC: n.vpc, Interface: n.id, PrevInstance: in.id, PrevInterface: n.id})
		}
		n.instance, n.attachment, n.device, n.card, n.deleteOnTermination = "", "", 0, 0, false
		n.detachedAt = s.now.Add(s.detachDelay)
		s.enis[id] = n
		return okResponse("DetachNetworkInterface"), events, nil
	}
	return nil, nil, apiErr(CodeAttachmentNotFound, "The attachment ID '%s' does not exist", att)
}

func (s *state) handleDeleteENI(r request) (any, []Event, *APIError) {
	n, aerr := s.requestENI(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	if n.status(s.now) != "available" {
		return nil, nil, apiErr(CodeENIInUse, "The network interface '%s' is currently in use.", n.id)
	}
	return okResponse("DeleteNetworkInterface"), s.deleteENI(n, ""), nil
}

func (s *state) handleCreateTags(r request) (any, []Event, *APIError) {
	ids := r.list("ResourceId")
	tags, aerr := r.tagList("Tag")
	if aerr != nil {
		return nil, nil, aerr
	}
	if len(ids) == 0 || len(tags) == 0 {
		return nil, nil, apiErr(CodeMissingParameter, "The request must contain the parameters ResourceId and Tag")
	}
	for _, id := range ids { // all or nothing, as EC2 does
		if _, aerr := s.tagsOf(id); aerr != nil {
			return nil, nil, aerr
		}
	}
	for _, id := range ids {
		s.setTags(id, tags)
	}
	return okResponse("CreateTags"), nil, nil
}

// tagsOf returns the tags of any taggable resource the simulator holds.
func (s *state) tagsOf(id string) (map[string]string, *APIError) {
	kind, _, _ := strings.Cut(id, "-")
	switch kind {
	case "eni":
		if n, ok := s.enis[id]; ok {
			return n.tags, nil
		}
		return nil, apiErr(CodeENINotFound, "The networkInterface ID '%s' does not exist", id)
	case "i":
		if in, ok := s.instances[id]; ok {
			return in.tags, nil
		}
		return nil, apiErr(CodeInstanceNotFound, "The instance ID '%s' does not exist", id)
	case "subnet":
		if sn, ok := s.subnets[id]; ok {
			return sn.tags, nil
		}
		return nil, apiErr(CodeSubnetNotFound, "The subnet ID '%s' does not exist", id)
	case "eipalloc":
		if e, ok := s.eips[id]; ok {
			return e.tags, nil
		}
		return nil, apiErr(CodeAllocationNotFound, "The allocation ID '%s' does not exist", id)
	}
	return nil, apiErr(CodeInvalidID, "The ID '%s' is not valid", id)
}

// setTags adds tags to a resource that tagsOf found; the maps are replaced, never changed in place,
// because delayed-visibility snapshots share them.
func (s *state) setTags(id string, tags map[string]string) {
	cur, _ := s.tagsOf(id)
	merged := maps.Clone(cur)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	switch {
	case strings.HasPrefix(id, "eni-"):
		n := s.enis[id]
		n.tags = merged
		s.enis[id] = n
	case strings.HasPrefix(id, "i-"):
		in := s.instances[id]
		in.tags = merged
		s.instances[id] = in
	case strings.HasPrefix(id, "subnet-"):
		sn := s.subnets[id]
		sn.tags = merged
		s.subnets[id] = sn
	default:
		e := s.eips[id]
		e.tags = merged
		s.eips[id] = e
	}
}

// tagList parses Name.N.Key / Name.N.Value pairs.
func (r request) tagList(name string) (map[string]string, *APIError) {
	out := map[string]string{}
	for i := 1; ; i++ {
		key := fmt.Sprintf("%s.%d.Key", name, i)
		if !r.form.Has(key) {
			return out, nil
		}
		k := r.form.Get(key)
		if k == "" || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, apiErr(CodeInvalidParameterValue, "Tag key '%s' is empty or uses the reserved prefix aws:", k)
		}
		out[k] = r.form.Get(fmt.Sprintf("%s.%d.Value", name, i))
	}
}

// tagSpecs returns the tags of the TagSpecification.N whose ResourceType is resourceType, refusing
// specifications for resource types the action does not create.
func (r request) tagSpecs(resourceType string) (map[string]string, *APIError) {
	out := map[string]string{}
	for i := 1; ; i++ {
		rt := r.form.Get(fmt.Sprintf("TagSpecification.%d.ResourceType", i))
		if rt == "" {
			return out, nil
		}
		if rt != resourceType {
			return nil, apiErr(CodeInvalidParameterValue, "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		tags, aerr := r.tagList(fmt.Sprintf("TagSpecification.%d.Tag", i))
		if aerr != nil {
			return nil, aerr
		}
		maps.Copy(out, tags)
	}
}

// fingerprint is the request's parameters in a canonical order, without the ones named, so that two
// requests compare equal when EC2 would call them the same request.
func fingerprint(r request, without ...string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.form)) {
		if !slices.Contains(without, k) {
			parts = append(parts, k+"="+strings.Join(r.form[k], ","))
		}
	}
	return strings.Join(parts, "&")
}

func defaultGroupID(vpc string) string { return "sg-" + strings.TrimPrefix(vpc, "vpc-") }
