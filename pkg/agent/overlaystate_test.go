package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCNIOverlaySurvivesARestart: what an overlay with a file holds after each change is what a new
// overlay reads back from it, and the file goes empty when the kubelet's status retires the entry.
func TestCNIOverlaySurvivesARestart(t *testing.T) {
	path, err := overlayPath(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	o := newCNIOverlay()
	o.persistTo(path, nil)
	noIP := newPodInfo(testPod("pay", "a", "n1", "", pay))
	if err := o.add("s1", noIP, ips("10.244.1.11")); err != nil {
		t.Fatal(err)
	}
	o.remove("pay/b", "s9", ips("10.244.1.20"), nil)

	restarted := newCNIOverlay()
	restarted.persistTo(path, nil)
	if n, err := restarted.load(); err != nil || n != 1 {
		t.Fatalf("load: %d pods, %v", n, err)
	}
	if got := mergedIPs(restarted, nil, "a"); !slices.Equal(got, ips("10.244.1.11")) {
		t.Errorf("restarted overlay gives pod a %v, want 10.244.1.11", got)
	}
	merged := restarted.merge("pay", nil)
	if len(merged) != 1 || merged[0].Labels["app"] != "pay" || merged[0].NodeName != "n1" || merged[0].UID != noIP.UID {
		t.Errorf("restarted pod %+v lost what selection reads", merged)
	}
	cachedB := newPodInfo(testPod("pay", "b", "n1", "10.244.1.20", pay))
	if got := mergedIPs(restarted, []*PodInfo{cachedB}, "b"); len(got) != 0 {
		t.Errorf("released IP of pod b came back as %v", got)
	}

	restarted.merge("pay", []*PodInfo{newPodInfo(testPod("pay", "a", "n1", "10.244.1.11", pay))})
	again := newCNIOverlay()
	again.persistTo(path, nil)
	if n, _ := again.load(); n != 0 {
		t.Errorf("%d pods read back after the status retired the entry", n)
	}
}

func TestCNIOverlayFileErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, OverlayFileName)
	for name, content := range map[string]string{"corrupt": "{", "future version": `{"version":7}`} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		o := newCNIOverlay()
		o.persistTo(path, nil)
		if _, err := o.load(); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s file: error %v, want one naming %s", name, err, path)
		}
	}
	// A state directory the agent cannot write fails the ADD, with the file in the message.
	o := newCNIOverlay()
	o.persistTo(filepath.Join(dir, "missing", OverlayFileName), nil)
	if err := o.add("s1", newPodInfo(testPod("pay", "a", "n1", "", pay)), ips("10.244.1.11")); err == nil || !strings.Contains(err.Error(), "saving the CNI overlay") {
		t.Errorf("add with an unwritable file: %v", err)
	}
}

// TestOverlayRetiresFromTheViewsOwnPods: the informer's status event must not retire a pod's CNI entry
// by itself. A sync that read the pod just before the event (no IP yet) and merges after it would
// otherwise see the pod without an address, and its packets left unsteered until the next sync (2 of
// 36,570 datagrams seen with a wrong source in one run of TestPodStartsThroughTheReferencePlugins).
// The entry goes when a merge sees the Pod with the same IPs. On a gateway candidate, the cluster-wide
// informer's deletion of this node's pod does not drop its entry either (the local informer decides).
func TestOverlayRetiresFromTheViewsOwnPods(t *testing.T) {
	a := &Agent{opts: Options{Node: "n1"}, overlay: newCNIOverlay(), pending: pendingPods{since: map[string]time.Time{}}}
	noIP, withIP := newPodInfo(testPod("pay", "a", "n1", "", pay)), newPodInfo(testPod("pay", "a", "n1", "10.244.1.11", pay))
	if err := a.overlay.add("s1", noIP, ips("10.244.1.11")); err != nil {
		t.Fatal(err)
	}
	snapshot := []*PodInfo{noIP}  // what a sync read from the informer's store
	a.localPodEvent(noIP, withIP) // the status update arrives meanwhile
	if got := mergedIPs(a.overlay, snapshot, "a"); !slices.Equal(got, ips("10.244.1.11")) {
		t.Errorf("the sync's view gives the pod %v after the status event, want its CNI IP", got)
	}
	a.remotePodEvent(withIP, nil) // the cluster-wide informer saw it deleted first
	if got := mergedIPs(a.overlay, snapshot, "a"); !slices.Equal(got, ips("10.244.1.11")) {
		t.Errorf("the cluster-wide informer's deletion dropped this node's entry: %v", got)
	}
	if got := mergedIPs(a.overlay, []*PodInfo{withIP}, "a"); !slices.Equal(got, ips("10.244.1.11")) {
		t.Errorf("view of the updated pod: %v", got)
	}
	if added, _ := a.overlay.size(); added != 0 {
		t.Errorf("%d overlay entries left after a merge saw the Pod with the same IPs, want 0", added)
	}
}
