package azuresim

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// validate applies the Network resource provider's rules to the ip configurations a write asks for.
func (st *state) validate(n *nic, next []ipConfig) *APIError {
	if len(next) == 0 {
		return apiErr(http.StatusBadRequest, CodeInvalidRequestFormat, "Network interface %s needs at least one ip configuration.", n.id)
	}
	if len(next) > MaxIPConfigsPerNIC {
		return apiErr(http.StatusBadRequest, CodeIPConfigLimitReached,
			"Network interface %s has %d ip configurations; a network interface can have at most %d.", n.id, len(next), MaxIPConfigsPerNIC)
	}
	if aerr := checkNames(n, next); aerr != nil {
		return aerr
	}
	seen := map[netip.Addr]string{}
	pips := map[string]string{}
	for _, c := range next {
		if aerr := st.checkAddress(n, c, seen); aerr != nil {
			return aerr
		}
		if aerr := st.checkPublicIP(n, c, pips); aerr != nil {
			return aerr
		}
	}
	return nil
}

func checkNames(n *nic, next []ipConfig) *APIError {
	primaries, names := 0, map[string]bool{}
	for _, c := range next {
		if c.primary {
			primaries++
		}
		if names[strings.ToLower(c.name)] {
			return apiErr(http.StatusBadRequest, CodeDuplicateIPConfigName, "Network interface %s has two ip configurations named %s.", n.id, c.name)
		}
		names[strings.ToLower(c.name)] = true
	}
	if primaries != 1 {
		return apiErr(http.StatusBadRequest, CodeOnePrimaryIPConfig, "Network interface %s must have exactly one primary ip configuration, not %d.", n.id, primaries)
	}
	return nil
}

// checkAddress: inside the subnet, outside Azure's reserved addresses, and held by no other NIC of the
// virtual network (nor twice on this one).
func (st *state) checkAddress(n *nic, c ipConfig, seen map[netip.Addr]string) *APIError {
	sn, _ := st.subnetOf(c.subnet)
	cfgID := n.ipConfigID(c.name)
	if !sn.prefix.Contains(c.ip) {
		return apiErr(http.StatusBadRequest, CodeIPNotInSubnet, "IP configuration %s: private IP address %s is not in subnet %s (%s).", cfgID, c.ip, sn.id, sn.prefix)
	}
	if why := reservedReason(c.ip, sn.prefix); why != "" {
		return apiErr(http.StatusBadRequest, CodeIPInReservedRange, "IP configuration %s: private IP address %s %s.", cfgID, c.ip, why)
	}
	if other, dup := seen[c.ip]; dup {
		return apiErr(http.StatusBadRequest, CodeIPInUse, "IP configuration %s: private IP address %s is also used by %s.", cfgID, c.ip, n.ipConfigID(other))
	}
	seen[c.ip] = c.name
	if h, hc, held := st.holder(sn.vnet, c.ip); held && h != n {
		return apiErr(http.StatusBadRequest, CodeIPInUse, "IP configuration %s: private IP address %s is already in use by %s.", cfgID, c.ip, h.ipConfigID(hc))
	}
	return nil
}

// checkPublicIP: a public IP serves one ip configuration at a time.
func (st *state) checkPublicIP(n *nic, c ipConfig, pips map[string]string) *APIError {
	if c.pip == "" {
		return nil
	}
	cfgID := n.ipConfigID(c.name)
	if other, dup := pips[key(c.pip)]; dup {
		return apiErr(http.StatusBadRequest, CodePublicIPInUse, "Public IP address %s is referenced by %s and %s.", c.pip, n.ipConfigID(other), cfgID)
	}
	pips[key(c.pip)] = c.name
	if h, hc, held := st.pipHolder(c.pip); held && (h != n || !strings.EqualFold(hc, c.name)) {
		return apiErr(http.StatusBadRequest, CodePublicIPInUse, "Public IP address %s is already allocated to %s; it cannot be used by %s.", c.pip, h.ipConfigID(hc), cfgID)
	}
	return nil
}

// reservedReason says why Azure would not hand out ip in prefix ("" when it would): Azure reserves the
// network address, the next three (gateway and DNS) and the broadcast address of every subnet.
func reservedReason(ip netip.Addr, prefix netip.Prefix) string {
	first := prefix.Masked().Addr()
	for range 4 {
		if ip == first {
			return fmt.Sprintf("is one of the addresses Azure reserves in %s", prefix)
		}
		first = first.Next()
	}
	if ip == lastAddr(prefix) {
		return fmt.Sprintf("is the broadcast address of %s, which Azure reserves", prefix)
	}
	return ""
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | (uint32(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
