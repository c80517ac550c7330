// Package cniconf installs egressgw-cni into the node's CNI configuration and removes it again: the entry
// is appended as the last plugin of the configuration the runtime uses, every other byte of that file is
// kept, and removal restores the file byte for byte (docs/cni.md). The agent calls Install on start (and may
// call it again at any time: it is idempotent and writes nothing when the entry is in place) and Uninstall
// from `egressgw-agent uninstall`.
package cniconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Default directories of the CNI configuration and binaries (EKS, AKS, kubeadm); GKE keeps binaries in
// /home/kubernetes/bin.
const (
	DefaultConfDir = "/etc/cni/net.d"
	DefaultBinDir  = "/opt/cni/bin"
)

// PluginType is the "type" of the entry, and the binary's name.
const PluginType = "egressgw-cni"

// backupSuffix marks the copy of a single-plugin .conf that Install converted; runtimes load only .conf,
// .conflist and .json files, so they never read it.
const backupSuffix = ".egressgw-backup"

// Entry is the plugin's entry in the conflist; empty fields are left out (the plugin's defaults apply).
type Entry struct {
	SocketPath    string `json:"socketPath,omitempty"`
	AddTimeout    string `json:"addTimeout,omitempty"`
	DeleteTimeout string `json:"deleteTimeout,omitempty"`
	LogLevel      string `json:"logLevel,omitempty"`
}

// JSON is the entry as it is written, on one line, "type" first.
func (e Entry) JSON() []byte {
	data, _ := json.Marshal(struct {
		Type string `json:"type"`
		Entry
	}{PluginType, e})
	return data
}

// Action is what Install or Uninstall did to a file.
type Action string

// Actions.
const (
	Unchanged Action = "unchanged" // the entry was in place (Install) or absent (Uninstall): nothing written
	Appended  Action = "appended"  // the entry was appended to an existing conflist
	Updated   Action = "updated"   // an entry with other settings, or not last, was replaced by the entry, last
	Converted Action = "converted" // a single-plugin .conf became a .conflist with the entry; the .conf is kept aside
	Removed   Action = "removed"   // the entry was cut out of a conflist
	Restored  Action = "restored"  // a converted .conf was put back and its .conflist deleted
)

// Change says which file an action touched.
type Change struct {
	File   string
	Action Action
}

// configFiles are the files a runtime considers, in the order it considers them: containerd (go-cni's
// loadFromConfDir) and CRI-O list .conf, .conflist and .json files and take the first in lexical order.
func configFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the CNI configuration directory %s: %w", dir, err)
	}
	var files []string
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".conf", ".conflist", ".json":
			if !e.IsDir() {
				files = append(files, e.Name())
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

// Install puts entry last in the plugins of the node's CNI configuration (the first file in dir) and says
// what it did. Run twice, it writes nothing the second time.
func Install(dir string, entry Entry) (Change, error) {
	files, err := configFiles(dir)
	if err != nil {
		return Change{}, err
	}
	if len(files) == 0 {
		return Change{}, fmt.Errorf("no CNI configuration in %s yet: the node's network plugin writes it when it starts; retry then, or set the configuration directory", dir)
	}
	first := filepath.Join(dir, files[0])
	if strings.HasSuffix(first, ".conflist") {
		return installIntoList(first, entry)
	}
	return convertConf(dir, files, entry)
}

func installIntoList(path string, entry Entry) (Change, error) {
	data, mode, err := readFile(path)
	if err != nil {
		return Change{}, err
	}
	updated, action, err := withEntryLast(data, entry.JSON())
	if err != nil {
		return Change{}, fmt.Errorf("%s: %w", path, err)
	}
	if action == Unchanged {
		return Change{File: path, Action: Unchanged}, nil
	}
	if err := writeFileAtomic(path, updated, mode); err != nil {
		return Change{}, err
	}
	return Change{File: path, Action: action}, nil
}

// withEntryLast returns data with entry as its last plugin, and what that took.
func withEntryLast(data, entry []byte) ([]byte, Action, error) {
	arr, err := locatePlugins(data)
	if err != nil {
		return nil, "", err
	}
	if len(arr.elements) == 0 {
		return nil, "", errors.New("the plugins list is empty: the runtime refuses it, and egressgw-cni cannot run without an interface plugin before it")
	}
	last := arr.elements[len(arr.elements)-1]
	if i := indexOf(arr.types, PluginType); i >= 0 {
		if i == len(arr.elements)-1 && bytes.Equal(data[last.start:last.end], entry) && countOf(arr.types, PluginType) == 1 {
			return data, Unchanged, nil
		}
		without, _, err := removePlugins(data, PluginType)
		if err != nil {
			return nil, "", err
		}
		if arr, err = locatePlugins(without); err != nil {
			return nil, "", err
		}
		return appendPlugin(without, arr, entry), Updated, nil
	}
	return appendPlugin(data, arr, entry), Appended, nil
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// convertConf handles a single-plugin .conf (or .json) that the runtime would use: a .conf cannot chain, so
// it becomes <base>.conflist wrapping the .conf's bytes as its first plugin, with the entry after it. The
// .conf's bytes are kept in a hidden backup for Uninstall, and the .conf is removed so the list is the first
// file. The CNI that wrote the .conf may write it again; the next Install converts it again.
func convertConf(dir string, files []string, entry Entry) (Change, error) {
	confPath := filepath.Join(dir, files[0])
	listName := strings.TrimSuffix(files[0], filepath.Ext(files[0])) + ".conflist"
	if err := checkStaysFirst(files, listName); err != nil {
		return Change{}, err
	}
	data, mode, err := readFile(confPath)
	if err != nil {
		return Change{}, err
	}
	wrapped, err := wrapConf(data)
	if err != nil {
		return Change{}, fmt.Errorf("%s: %w", confPath, err)
	}
	list, _, err := withEntryLast(wrapped, entry.JSON())
	if err != nil {
		return Change{}, fmt.Errorf("%s: %w", confPath, err)
	}
	if err := writeFileAtomic(backupPath(confPath), data, mode); err != nil {
		return Change{}, err
	}
	listPath := filepath.Join(dir, listName)
	if err := writeFileAtomic(listPath, list, mode); err != nil {
		return Change{}, err
	}
	if err := os.Remove(confPath); err != nil {
		return Change{}, fmt.Errorf("removing %s after converting it to %s: %w", confPath, listName, err)
	}
	return Change{File: listPath, Action: Converted}, nil
}

// checkStaysFirst refuses a conversion whose .conflist would not be the first file once the .conf is gone.
func checkStaysFirst(files []string, listName string) error {
	for _, other := range files[1:] {
		if other != listName && other < listName {
			return fmt.Errorf("converting %s to %s would let %s come first, and the runtime would use it without egressgw-cni: rename the .conf to a .conflist by hand", files[0], listName, other)
		}
	}
	return nil
}

func backupPath(confPath string) string {
	return filepath.Join(filepath.Dir(confPath), "."+filepath.Base(confPath)+backupSuffix)
}
