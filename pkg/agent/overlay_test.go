package agent

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func ips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// mergedIPs is what the view sees of pod name in namespace pay after the overlay.
func mergedIPs(o *cniOverlay, cached []*PodInfo, name string) []netip.Addr {
	for _, p := range o.merge("pay", cached) {
		if p.Name == name {
			return p.IPs
		}
	}
	return nil
}

func TestCNIOverlay(t *testing.T) {
	cachedNoIP := newPodInfo(testPod("pay", "a", "n1", "", pay))
	cachedOld := newPodInfo(testPod("pay", "a", "n1", "10.244.1.10", pay))

	t.Run("ADD before the kubelet writes the IP", func(t *testing.T) {
		o := newCNIOverlay()
		o.add("s1", cachedNoIP, ips("10.244.1.11"))
		if got := mergedIPs(o, []*PodInfo{cachedNoIP}, "a"); !slices.Equal(got, ips("10.244.1.11")) {
			t.Errorf("view sees %v", got)
		}
		o.merge("pay", []*PodInfo{newPodInfo(testPod("pay", "a", "n1", "10.244.1.11", pay))}) // a sync reads the status
		if added, _ := o.size(); added != 0 {
			t.Errorf("entry kept after the Pod showed the same IPs")
		}
	})
	t.Run("DEL releases the IP while the Pod still lists it", func(t *testing.T) {
		o := newCNIOverlay()
		if !o.remove("pay/a", "s1", ips("10.244.1.10"), cachedOld) {
			t.Fatal("nothing changed")
		}
		if got := mergedIPs(o, []*PodInfo{cachedOld}, "a"); len(got) != 0 {
			t.Errorf("released IP still in the view: %v", got)
		}
		if !slices.Equal(cachedOld.IPs, ips("10.244.1.10")) {
			t.Errorf("the cached object was changed: %v", cachedOld.IPs)
		}
		o.merge("pay", []*PodInfo{newPodInfo(testPod("pay", "a", "n1", "10.244.1.12", pay))}) // a new sandbox's IP
		if _, released := o.size(); released != 0 {
			t.Errorf("release kept after the Pod showed other IPs")
		}
	})
	t.Run("DEL of an old sandbox after the new one's ADD", func(t *testing.T) {
		o := newCNIOverlay()
		o.add("new", cachedOld, ips("10.244.1.12"))
		o.remove("pay/a", "old", nil, cachedOld) // no IPs in the DEL: the cached ones are the old sandbox's, but a newer one exists
		if got := mergedIPs(o, []*PodInfo{cachedOld}, "a"); !slices.Equal(got, ips("10.244.1.12")) {
			t.Errorf("view sees %v, want the new sandbox's IP", got)
		}
		o.remove("pay/a", "old", ips("10.244.1.10", "10.244.1.12"), cachedOld) // a DEL naming the new IP too
		if got := mergedIPs(o, []*PodInfo{cachedOld}, "a"); !slices.Equal(got, ips("10.244.1.12")) {
			t.Errorf("an old sandbox's DEL took the new sandbox's IP: %v", got)
		}
	})
	t.Run("the cache's newer labels win over those ADD read", func(t *testing.T) {
		o := newCNIOverlay()
		o.add("s1", cachedNoIP, ips("10.244.1.11"))
		relabelled := newPodInfo(testPod("pay", "a", "n1", "", other))
		got := o.merge("pay", []*PodInfo{relabelled})
		if len(got) != 1 || got[0].Labels["app"] != "web" || !slices.Equal(got[0].IPs, ips("10.244.1.11")) {
			t.Errorf("merged %+v, want the cached labels with the CNI IPs", got)
		}
	})
	t.Run("prune", func(t *testing.T) {
		o := newCNIOverlay()
		o.add("s1", cachedNoIP, ips("10.244.1.11"))
		o.remove("pay/b", "s2", ips("10.244.1.20"), nil)
		now := time.Now()
		o.prune(func(string) bool { return false }, now)
		if added, released := o.size(); added != 1 || released != 0 {
			t.Errorf("after a prune at once: %d added (want 1: too young), %d released (want 0)", added, released)
		}
		o.prune(func(string) bool { return false }, now.Add(overlayTTL+time.Second))
		if added, _ := o.size(); added != 0 {
			t.Errorf("an ADD whose pod never arrived is kept past the TTL")
		}
	})
	t.Run("terminal cached pod replaced by a new sandbox", func(t *testing.T) {
		o := newCNIOverlay()
		done := testPod("pay", "a", "n1", "10.244.1.10", pay)
		done.Status.Phase = corev1.PodSucceeded
		o.add("s2", newPodInfo(done), ips("10.244.1.13"))
		got := o.merge("pay", []*PodInfo{newPodInfo(done)})
		if len(got) != 1 || !got[0].canSend() || !slices.Equal(got[0].IPs, ips("10.244.1.13")) {
			t.Errorf("merged %+v", got)
		}
	})
}

func (o *cniOverlay) size() (added, released int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.added), len(o.released)
}
