package vpccni

import (
	"errors"
	"net/netip"
	"slices"
	"time"
)

// ErrNoAvailableIP is the answer to a pod when the pool has no free address, as the CNI's datastore
// answers ErrNoAvailableIPInDataStore.
var ErrNoAvailableIP = errors.New("datastore has no available IP addresses")

// datastore is the pod IP pool of one node: the managed ENIs and the secondary addresses of each, with the
// pod that holds each address. It keeps the CNI datastore's rules: an ENI's primary address is never in
// the pool, an address freed by a pod waits IP_COOLDOWN_PERIOD before another pod gets it, and a pod gets
// the first free address of the first ENI (attach order, then the order addresses joined the pool).
type datastore struct {
	enis     []*eniPool
	cooldown time.Duration
}

type eniPool struct {
	id      string
	device  int // the attachment's device index: 0 is the primary ENI
	primary netip.Addr
	addrs   []*address
}

type address struct {
	ip    netip.Addr
	pod   string    // "" when free
	freed time.Time // when the last pod gave it back
}

func (d *datastore) eni(id string) *eniPool {
	for _, e := range d.enis {
		if e.id == id {
			return e
		}
	}
	return nil
}

func (d *datastore) addENI(id string, primary netip.Addr) *eniPool {
	if e := d.eni(id); e != nil {
		return e
	}
	e := &eniPool{id: id, primary: primary}
	d.enis = append(d.enis, e)
	return e
}

// removeENI drops an ENI that is no longer attached, with its addresses, even those pods hold.
func (d *datastore) removeENI(id string) {
	d.enis = slices.DeleteFunc(d.enis, func(e *eniPool) bool { return e.id == id })
}

func (e *eniPool) find(ip netip.Addr) *address {
	for _, a := range e.addrs {
		if a.ip == ip {
			return a
		}
	}
	return nil
}

// add puts a secondary address into the pool; the primary address never goes in.
func (e *eniPool) add(ip netip.Addr) {
	if ip != e.primary && e.find(ip) == nil {
		e.addrs = append(e.addrs, &address{ip: ip})
	}
}

// del removes an address from the pool; unless forced, one a pod holds stays.
func (e *eniPool) del(ip netip.Addr, force bool) bool {
	a := e.find(ip)
	if a == nil || a.pod != "" && !force {
		return false
	}
	e.addrs = slices.DeleteFunc(e.addrs, func(b *address) bool { return b.ip == ip })
	return true
}

// stats are the pool's totals, as the CNI's GetIPStats counts them.
func (d *datastore) stats() (total, assigned int) {
	for _, e := range d.enis {
		for _, a := range e.addrs {
			total++
			if a.pod != "" {
				assigned++
			}
		}
	}
	return total, assigned
}

// assign gives pod an address: the one it has, else the first free one out of cooldown.
func (d *datastore) assign(pod string, now time.Time) (netip.Addr, *eniPool, error) {
	for _, e := range d.enis {
		for _, a := range e.addrs {
			if a.pod == pod {
				return a.ip, e, nil
			}
		}
	}
	for _, e := range d.enis {
		for _, a := range e.addrs {
			if a.pod == "" && (a.freed.IsZero() || now.Sub(a.freed) > d.cooldown) {
				a.pod = pod
				return a.ip, e, nil
			}
		}
	}
	return netip.Addr{}, nil, ErrNoAvailableIP
}

// release takes pod's address back into the free pool, in cooldown.
func (d *datastore) release(pod string, now time.Time) (netip.Addr, bool) {
	for _, e := range d.enis {
		for _, a := range e.addrs {
			if a.pod == pod {
				a.pod, a.freed = "", now
				return a.ip, true
			}
		}
	}
	return netip.Addr{}, false
}

// freeable are the addresses of an ENI no pod holds, which the CNI may give back to EC2.
func (e *eniPool) freeable() []netip.Addr {
	var out []netip.Addr
	for _, a := range e.addrs {
		if a.pod == "" {
			out = append(out, a.ip)
		}
	}
	return out
}
