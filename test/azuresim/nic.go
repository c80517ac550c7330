package azuresim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
)

// The join actions a NIC write needs on what its ip configurations reference.
const (
	joinSubnet  = "Microsoft.Network/virtualNetworks/subnets/join/action"
	joinPIP     = "Microsoft.Network/publicIPAddresses/join/action"
	joinLBPool  = "Microsoft.Network/loadBalancers/backendAddressPools/join/action"
	joinNSG     = "Microsoft.Network/networkSecurityGroups/join/action"
	writeNICAct = "Microsoft.Network/networkInterfaces/write"
)

// putNIC is a NIC write: checked against the ETag and the NIC's state, the linked permissions and the
// Network resource provider's rules, then accepted as a long-running operation.
func (s *Server) putNIC(w http.ResponseWriter, r *http.Request, rt route, who string) *APIError {
	var body armnetwork.Interface
	data, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil || body.Properties == nil {
		return apiErr(http.StatusBadRequest, CodeInvalidRequestFormat, "Cannot parse the request: %v", err)
	}
	s.mu.Lock()
	n, events, aerr := s.writeNIC(r, rt, who, body)
	var out armnetwork.Interface
	var headers *opHeaders
	if aerr == nil {
		out, headers = s.st.renderNIC(n), s.headersOf(n.op)
	}
	s.mu.Unlock()
	s.fire(events)
	if aerr != nil {
		return aerr
	}
	headers.set(w, r)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) writeNIC(r *http.Request, rt route, who string, body armnetwork.Interface) (*nic, []Event, *APIError) {
	n, ok := s.st.nics[key(rt.id)]
	if !ok || n.uniform {
		return nil, nil, apiErr(http.StatusNotFound, CodeNotFound, "Resource %s not found (the simulator does not create network interfaces).", rt.id)
	}
	if aerr := s.checkPrecondition(r, n); aerr != nil {
		return n, nil, aerr
	}
	next, linked, aerr := s.st.parseConfigs(n, body)
	if aerr != nil {
		return n, nil, aerr
	}
	if aerr := s.authorizeLinked(who, writeNICAct, linked); aerr != nil {
		return n, nil, aerr
	}
	if aerr := s.st.validate(n, next); aerr != nil {
		return n, nil, aerr
	}
	return n, s.accept(n, next), nil
}

// checkPrecondition refuses a write whose If-Match names an older ETag, or that meets a write in progress.
func (s *Server) checkPrecondition(r *http.Request, n *nic) *APIError {
	if k := strings.ToLower(n.name); s.faults.etagRaces[k] > 0 {
		s.faults.etagRaces[k]--
		n.etag = s.st.newETag()
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != n.etag {
		return apiErr(http.StatusPreconditionFailed, CodePreconditionFailed,
			"Precondition failed for resource %s: the If-Match ETag %s does not match the current ETag %s.", n.id, m, n.etag)
	}
	if n.op != nil && n.op.status == statusInProgress {
		e := apiErr(http.StatusTooManyRequests, CodeRetryableAnotherOp,
			"Operation PutNetworkInterfaceOperation (%s) is updating resource %s. The call can be retried after it completes.", n.op.id, n.id)
		e.RetryAfter = s.faults.busyRetryAfter
		return e
	}
	return nil
}

// parseConfigs reads the ip configurations of a NIC write and the linked scopes they need to join.
func (st *state) parseConfigs(n *nic, body armnetwork.Interface) ([]ipConfig, map[string]string, *APIError) {
	linked := map[string]string{}
	if nsg := body.Properties.NetworkSecurityGroup; nsg != nil && nsg.ID != nil {
		linked[*nsg.ID] = joinNSG
	}
	var out []ipConfig
	for _, c := range body.Properties.IPConfigurations {
		cfg, aerr := st.parseConfig(n, c, linked)
		if aerr != nil {
			return nil, nil, aerr
		}
		out = append(out, cfg)
	}
	return out, linked, nil
}

func (st *state) parseConfig(n *nic, c *armnetwork.InterfaceIPConfiguration, linked map[string]string) (ipConfig, *APIError) {
	if c == nil || c.Name == nil || *c.Name == "" || c.Properties == nil {
		return ipConfig{}, apiErr(http.StatusBadRequest, CodeInvalidRequestFormat, "Every ip configuration of %s needs a name and properties.", n.id)
	}
	p := c.Properties
	cfg := ipConfig{name: *c.Name, primary: p.Primary != nil && *p.Primary}
	if p.Subnet == nil || p.Subnet.ID == nil {
		return cfg, apiErr(http.StatusBadRequest, CodeInvalidRequestFormat, "IP configuration %s needs a subnet.", n.ipConfigID(cfg.name))
	}
	sn, ok := st.subnetOf(*p.Subnet.ID)
	if !ok {
		return cfg, invalidReference(*p.Subnet.ID, n.id)
	}
	cfg.subnet, linked[sn.id] = sn.id, joinSubnet
	if p.PublicIPAddress != nil && p.PublicIPAddress.ID != nil {
		pp, ok := st.pips[key(*p.PublicIPAddress.ID)]
		if !ok {
			return cfg, invalidReference(*p.PublicIPAddress.ID, n.id)
		}
		cfg.pip, linked[pp.id] = pp.id, joinPIP
	}
	for _, pool := range p.LoadBalancerBackendAddressPools {
		if pool != nil && pool.ID != nil {
			cfg.pools, linked[*pool.ID] = append(cfg.pools, *pool.ID), joinLBPool
		}
	}
	return st.parseAddress(n, cfg, p)
}

// parseAddress takes a static address as given; a dynamic one keeps the address the configuration had, or
// gets the subnet's next free one.
func (st *state) parseAddress(n *nic, cfg ipConfig, p *armnetwork.InterfaceIPConfigurationPropertiesFormat) (ipConfig, *APIError) {
	cfg.static = p.PrivateIPAllocationMethod != nil && *p.PrivateIPAllocationMethod == armnetwork.IPAllocationMethodStatic
	if cfg.static || p.PrivateIPAddress != nil && *p.PrivateIPAddress != "" {
		ip, err := netip.ParseAddr(deref(p.PrivateIPAddress))
		if err != nil || !ip.Is4() {
			return cfg, apiErr(http.StatusBadRequest, CodeInvalidRequestFormat, "IP configuration %s: privateIPAddress %q is not an IPv4 address.", n.ipConfigID(cfg.name), deref(p.PrivateIPAddress))
		}
		cfg.ip = ip
		return cfg, nil
	}
	if old, ok := n.config(cfg.name); ok && key(old.subnet) == key(cfg.subnet) {
		cfg.ip = old.ip
		return cfg, nil
	}
	return st.allocate(cfg)
}

func (st *state) allocate(cfg ipConfig) (ipConfig, *APIError) {
	sn, _ := st.subnetOf(cfg.subnet)
	for ip := sn.prefix.Addr(); sn.prefix.Contains(ip); ip = ip.Next() {
		if _, _, held := st.holder(sn.vnet, ip); !held && reservedReason(ip, sn.prefix) == "" {
			cfg.ip = ip
			return cfg, nil
		}
	}
	return cfg, apiErr(http.StatusBadRequest, "SubnetIsFull", "Subnet %s has no free address.", sn.id)
}

func invalidReference(ref, by string) *APIError {
	return apiErr(http.StatusBadRequest, CodeInvalidReference, "Resource %s referenced by resource %s was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.", ref, by)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
