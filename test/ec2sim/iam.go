package ec2sim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Policy is an IAM identity policy the simulator enforces (Options.Policy), as EC2 authorizes a request:
// every resource the action touches must be allowed by an Allow statement whose Action, Resource and
// Condition all match, and no Deny statement may match. The condition keys EC2 offers for the actions
// the simulator serves are evaluated: ec2:ResourceTag/<key> (the resource's tags), aws:RequestTag/<key>
// (tags the request sets: TagSpecifications, CreateTags), ec2:CreateAction (for tags set while creating),
// and ec2:Vpc; with the operators StringEquals, StringLike, ArnEquals and ArnLike. A key the request does
// not have fails the condition, as in IAM.
type Policy struct {
	Statement []Statement
}

// Statement is one statement of a Policy.
type Statement struct {
	Sid       string
	Effect    string
	Action    stringList
	Resource  stringList
	Condition map[string]map[string]stringList
}

// stringList is an IAM field that may be one string or a list of them.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// ParsePolicy reads an IAM policy document, refusing condition operators the simulator cannot evaluate.
func ParsePolicy(data []byte) (*Policy, error) {
	var p Policy
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("IAM policy: %w", err)
	}
	for i, st := range p.Statement {
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return nil, fmt.Errorf("IAM policy: statement %d (%s): Effect %q is neither Allow nor Deny", i, st.Sid, st.Effect)
		}
		for op := range st.Condition {
			if !slices.Contains([]string{"StringEquals", "StringLike", "ArnEquals", "ArnLike"}, op) {
				return nil, fmt.Errorf("IAM policy: statement %d (%s): condition operator %s is not emulated", i, st.Sid, op)
			}
		}
	}
	return &p, nil
}

// authz is one authorization EC2 makes for a request: an action on a resource, with its condition keys.
type authz struct {
	action, arn string
	keys        map[string]string
}

// allows reports whether the policy allows every authorization, and the first one it refuses. A resource
// that does not exist (keys nil) is left to the action's own NotFound answer.
func (p *Policy) allows(checks []authz) (authz, bool) {
	for _, c := range checks {
		if c.keys == nil {
			continue
		}
		allowed := false
		for _, st := range p.Statement {
			if !st.matches(c) {
				continue
			}
			if st.Effect == "Deny" {
				return c, false
			}
			allowed = true
		}
		if !allowed {
			return c, false
		}
	}
	return authz{}, true
}

func (st Statement) matches(c authz) bool {
	if !slices.ContainsFunc(st.Action, func(a string) bool { return glob(a, "ec2:"+c.action, true) }) {
		return false
	}
	if !slices.ContainsFunc(st.Resource, func(r string) bool { return glob(r, c.arn, false) }) {
		return false
	}
	for op, keys := range st.Condition {
		for key, want := range keys {
			have, ok := c.keys[key]
			if !ok || !slices.ContainsFunc(want, func(w string) bool { return compare(op, w, have) }) {
				return false
			}
		}
	}
	return true
}

func compare(op, want, have string) bool {
	switch op {
	case "StringEquals", "ArnEquals":
		return want == have
	}
	return glob(want, have, false)
}

// glob matches IAM wildcards: * any run of characters, ? one character; actions ignore case.
func glob(pattern, s string, foldCase bool) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	if foldCase {
		re = "(?i)" + re
	}
	ok, _ := regexp.MatchString(re, s)
	return ok
}

func (s *state) arn(kind, id string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:%s/%s", s.region, s.account, kind, id)
}

// resourceKeys are the condition keys of an existing resource: its tags and its VPC.
func (s *state) resourceKeys(tags map[string]string, vpc string) map[string]string {
	keys := map[string]string{}
	for k, v := range tags {
		keys["ec2:ResourceTag/"+k] = v
	}
	if vpc != "" {
		keys["ec2:Vpc"] = s.arn("vpc", vpc)
	}
	return keys
}

// existing is the authorization of an existing resource; keys stay nil for one that does not exist.
func (s *state) existing(action, kind, id string, exists bool, tags map[string]string, vpc string) authz {
	c := authz{action: action, arn: s.arn(kind, id)}
	if exists {
		c.keys = s.resourceKeys(tags, vpc)
	}
	return c
}

func (s *state) eniAuthz(action, id string) authz {
	n, ok := s.enis[id]
	return s.existing(action, "network-interface", id, ok, n.tags, n.vpc)
}

// authorizations lists what EC2 authorizes for a request, per the Service Authorization Reference's
// resource types of each action.
func (s *state) authorizations(r request) []authz {
	f := r.form.Get
	switch r.action {
	case "AssignPrivateIpAddresses", "UnassignPrivateIpAddresses", "ModifyNetworkInterfaceAttribute", "DeleteNetworkInterface":
		return []authz{s.eniAuthz(r.action, f("NetworkInterfaceId"))}
	case "AssociateAddress", "DisassociateAddress":
		return s.addressAuthz(r)
	case "CreateNetworkInterface":
		return s.createAuthz(r)
	case "AttachNetworkInterface":
		return []authz{s.instanceAuthz(r.action, f("InstanceId")), s.eniAuthz(r.action, f("NetworkInterfaceId"))}
	case "DetachNetworkInterface":
		for _, id := range s.eniOrder {
			if n := s.enis[id]; n.attachment == f("AttachmentId") {
				return []authz{s.instanceAuthz(r.action, n.instance), s.eniAuthz(r.action, id)}
			}
		}
		return []authz{{action: r.action, arn: s.arn("network-interface", "unknown")}}
	case "CreateTags":
		return s.tagAuthz(r)
	}
	return []authz{{action: r.action, arn: "*", keys: map[string]string{}}} // Describe: no resource-level permissions
}

func (s *state) instanceAuthz(action, id string) authz {
	in, ok := s.instances[id]
	return s.existing(action, "instance", id, ok, in.tags, in.vpc)
}

func (s *state) addressAuthz(r request) []authz {
	alloc, eniID := r.form.Get("AllocationId"), r.form.Get("NetworkInterfaceId")
	if r.action == "DisassociateAddress" {
		for _, id := range s.eipOrder {
			if e := s.eips[id]; e.assoc == r.form.Get("AssociationId") {
				alloc, eniID = id, e.eni
			}
		}
	}
	out := []authz{{action: r.action, arn: s.arn("elastic-ip", alloc), keys: s.resourceKeys(s.eips[alloc].tags, "")}}
	if eniID != "" {
		out = append(out, s.eniAuthz(r.action, eniID))
	}
	return out
}

// createAuthz: the new interface (with the request's tags), its subnet and security groups, and, when the
// request tags the interface, ec2:CreateTags with ec2:CreateAction.
func (s *state) createAuthz(r request) []authz {
	tags, _ := r.tagSpecs("network-interface")
	reqKeys := func(extra map[string]string) map[string]string {
		keys := map[string]string{}
		for k, v := range tags {
			keys["aws:RequestTag/"+k] = v
		}
		for k, v := range extra {
			keys[k] = v
		}
		return keys
	}
	sn := s.subnets[r.form.Get("SubnetId")]
	out := []authz{{action: r.action, arn: s.arn("network-interface", "*"), keys: reqKeys(map[string]string{"ec2:Vpc": s.arn("vpc", sn.vpc)})},
		{action: r.action, arn: s.arn("subnet", sn.id), keys: s.resourceKeys(sn.tags, sn.vpc)}}
	groups := r.list("SecurityGroupId")
	if len(groups) == 0 {
		groups = []string{defaultGroupID(sn.vpc)}
	}
	for _, g := range groups {
		out = append(out, authz{action: r.action, arn: s.arn("security-group", g), keys: s.resourceKeys(nil, s.groups[g])})
	}
	if len(tags) > 0 {
		out = append(out, authz{action: "CreateTags", arn: s.arn("network-interface", "*"), keys: reqKeys(map[string]string{"ec2:CreateAction": r.action})})
	}
	return out
}

func (s *state) tagAuthz(r request) []authz {
	tags, _ := r.tagList("Tag")
	var out []authz
	for _, id := range r.list("ResourceId") {
		kind := map[string]string{"eni": "network-interface", "i": "instance", "subnet": "subnet", "eipalloc": "elastic-ip"}[strings.SplitN(id, "-", 2)[0]]
		existing, _ := s.tagsOf(id)
		keys := s.resourceKeys(existing, "")
		for k, v := range tags {
			keys["aws:RequestTag/"+k] = v
		}
		out = append(out, authz{action: r.action, arn: s.arn(kind, id), keys: keys})
	}
	return out
}
