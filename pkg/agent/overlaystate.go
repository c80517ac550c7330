package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The CNI overlay is the only thing the agent knows that neither the API server nor the kernel says: a
// pod's IPs between its CNI ADD and the kubelet's status write. An agent that restarts in that window
// would otherwise come back without the pod, and its first apply would take the pod out of the
// steering sets: the pod's packets would leave with the node's address until the status arrived. So
// the overlay is written to a small file in the agent's run directory on every change, before ADD
// returns, and read back before the first apply.

// OverlayFileName is the overlay's file in Options.StateDir.
const OverlayFileName = "cni-overlay.json"

// overlayFile is the overlay on disk.
type overlayFile struct {
	Version  int                     `json:"version"`
	Added    []savedPod              `json:"added,omitempty"`
	Released map[string][]netip.Addr `json:"released,omitempty"`
}

type savedPod struct {
	ContainerID string            `json:"containerID"`
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	UID         types.UID         `json:"uid,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Node        string            `json:"node"`
	IPs         []netip.Addr      `json:"ips"`
	At          time.Time         `json:"at"`
}

const overlayFileVersion = 1

// persistTo makes every later change of the overlay write it to path ("" keeps it in memory only).
func (o *cniOverlay) persistTo(path string, log *slog.Logger) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.path, o.log = path, log
}

// saveLocked writes the overlay to its file (write a temporary file, then rename: a reader never sees
// half a file). It runs under o.mu, so writes happen in the order of the changes.
func (o *cniOverlay) saveLocked() error {
	if o.path == "" {
		return nil
	}
	f := overlayFile{Version: overlayFileVersion, Released: maps.Clone(o.released)}
	for _, a := range o.added {
		p := a.pod
		f.Added = append(f.Added, savedPod{ContainerID: a.containerID, Namespace: p.Namespace, Name: p.Name, UID: p.UID,
			Labels: p.Labels, Node: p.NodeName, IPs: p.IPs, At: a.at})
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := o.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("saving the CNI overlay: %w", err)
	}
	if err := os.Rename(tmp, o.path); err != nil {
		return fmt.Errorf("saving the CNI overlay: %w", err)
	}
	return nil
}

// saveOrLog is saveLocked for changes no caller can refuse (informer events, pruning).
func (o *cniOverlay) saveOrLog() {
	if err := o.saveLocked(); err != nil && o.log != nil {
		o.log.Error("cannot save the CNI overlay; a restart of the agent before the kubelet reports the pods it holds would forget them", "err", err)
	}
}

// load reads the overlay back from its file; a missing file is an empty overlay. It returns how many
// pods it restored.
func (o *cniOverlay) load() (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.path == "" {
		return 0, nil
	}
	data, err := os.ReadFile(o.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the CNI overlay: %w", err)
	}
	var f overlayFile
	if err := json.Unmarshal(data, &f); err != nil {
		return 0, fmt.Errorf("reading the CNI overlay %s: %w", o.path, err)
	}
	if f.Version != overlayFileVersion {
		return 0, fmt.Errorf("the CNI overlay %s has version %d; this agent reads version %d", o.path, f.Version, overlayFileVersion)
	}
	for _, s := range f.Added {
		p := &PodInfo{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, UID: s.UID, Labels: s.Labels},
			NodeName: s.Node, Phase: overlayPhase, IPs: s.IPs}
		o.added[p.key()] = overlayPod{containerID: s.ContainerID, pod: p, at: s.At}
	}
	maps.Copy(o.released, f.Released)
	return len(f.Added), nil
}

// overlayPath is the overlay's file in dir, which it creates; "" when dir is "".
func overlayPath(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	return filepath.Join(dir, OverlayFileName), nil
}
