package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

	restarted.podSeen(newPodInfo(testPod("pay", "a", "n1", "10.244.1.11", pay)))
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

// TestClusterInformerRetiresOnlyRemoteOverlayEntries: on a gateway candidate the cluster-wide informer
// may show a local pod's status before the local informer does; it must not retire that pod's overlay
// entry (the view reads local pods from the local informer, which has no IP yet), only the entries of
// pods announced from other nodes.
func TestClusterInformerRetiresOnlyRemoteOverlayEntries(t *testing.T) {
	a := &Agent{opts: Options{Node: "n1"}, overlay: newCNIOverlay()}
	local, remote := newPodInfo(testPod("pay", "a", "n1", "", pay)), newPodInfo(testPod("pay", "b", "n2", "", pay))
	for _, p := range []*PodInfo{local, remote} {
		if err := a.overlay.add("s-"+p.Name, p, ips("10.244.1.11")); err != nil {
			t.Fatal(err)
		}
	}
	a.remotePodEvent(local, newPodInfo(testPod("pay", "a", "n1", "10.244.1.11", pay)))
	a.remotePodEvent(remote, newPodInfo(testPod("pay", "b", "n2", "10.244.1.11", pay)))
	if got := mergedIPs(a.overlay, []*PodInfo{local}, "a"); !slices.Equal(got, ips("10.244.1.11")) {
		t.Errorf("local pod's entry retired by the cluster-wide informer: the view gives it %v", got)
	}
	if added, _ := a.overlay.size(); added != 1 {
		t.Errorf("%d overlay entries left, want the local pod's only", added)
	}
}
