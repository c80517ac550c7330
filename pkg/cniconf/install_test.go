package cniconf

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// awsStyleConflist is written the way the AWS VPC CNI writes 10-aws.conflist on every start: a map through
// json.MarshalIndent (keys sorted, two spaces, no trailing newline).
func awsStyleConflist(t *testing.T) []byte {
	t.Helper()
	conf := map[string]any{
		"cniVersion":   "0.4.0",
		"name":         "aws-cni",
		"disableCheck": true,
		"plugins": []any{
			map[string]any{"name": "aws-cni", "type": "aws-cni", "mtu": "9001", "vethPrefix": "eni",
				"capabilities": map[string]any{"io.kubernetes.cri.pod-annotations": true}},
			map[string]any{"type": "portmap", "snat": true, "capabilities": map[string]any{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// azureStyleConflist has the layout of AKS's 10-azure.conflist: three-space indent, no space after colons,
// keys in the author's order, a trailing newline.
const azureStyleConflist = "{\n   \"cniVersion\":\"0.3.0\",\n   \"name\":\"azure\",\n   \"plugins\":[\n      {\n         \"type\":\"azure-vnet\",\n         \"mode\":\"transparent\",\n         \"ipam\":{\n            \"type\":\"azure-vnet-ipam\"\n         }\n      }\n   ]\n}\n"

// singleConf is a one-plugin .conf, the format flannel-era and kubenet-style setups still write.
const singleConf = "{\n\t\"cniVersion\": \"1.0.0\",\n\t\"name\": \"podnet\",\n\t\"type\": \"bridge\",\n\t\"bridge\": \"cni0\",\n\t\"ipam\": {\"type\": \"host-local\", \"subnet\": \"10.244.1.0/24\"}\n}\n"

var testEntry = Entry{SocketPath: "/run/egressgw/cni.sock", AddTimeout: "10s"}

func writeConf(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pluginTypes parses path the way the runtime does (libcni) and lists the plugin types in order.
func pluginTypes(t *testing.T, path string) []string {
	t.Helper()
	list, err := libcni.ConfListFromFile(path)
	if err != nil {
		t.Fatalf("libcni cannot load %s: %v\n%s", path, err, mustRead(t, path))
	}
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Network.Type)
	}
	return types
}

func TestInstallAppendsLastAndKeepsEveryOtherByte(t *testing.T) {
	for name, original := range map[string][]byte{"aws": awsStyleConflist(t), "azure": []byte(azureStyleConflist)} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeConf(t, dir, "10-"+name+".conflist", original, 0o640)
			other := writeConf(t, dir, "99-other.conflist", []byte(azureStyleConflist), 0o644)

			change, err := Install(dir, testEntry)
			if err != nil || change.Action != Appended || change.File != path {
				t.Fatalf("Install = %+v, %v; want appended to %s", change, err, path)
			}
			installed := mustRead(t, path)
			if types := pluginTypes(t, path); types[len(types)-1] != PluginType {
				t.Fatalf("plugins after install = %v, want %s last", types, PluginType)
			}
			// Every original byte is still there, in order, with only the entry (and a separator) added.
			added := len(installed) - len(original)
			at := bytes.Index(installed, testEntry.JSON())
			prefixLen := at - (added - len(testEntry.JSON()))
			if !bytes.Equal(append(append([]byte{}, installed[:prefixLen]...), installed[at+len(testEntry.JSON()):]...), original) {
				t.Fatalf("install changed other bytes:\n%s", installed)
			}
			if info, _ := os.Stat(path); info.Mode().Perm() != 0o640 {
				t.Fatalf("mode after install = %v, want 0640", info.Mode().Perm())
			}
			if !bytes.Equal(mustRead(t, other), []byte(azureStyleConflist)) {
				t.Fatal("install touched another file")
			}
			t.Logf("installed:\n%s", installed)

			again, err := Install(dir, testEntry)
			if err != nil || again.Action != Unchanged || !bytes.Equal(mustRead(t, path), installed) {
				t.Fatalf("second Install = %+v, %v; want unchanged and the same bytes", again, err)
			}

			changes, err := Uninstall(dir)
			if err != nil || len(changes) != 1 || changes[0].Action != Removed {
				t.Fatalf("Uninstall = %+v, %v", changes, err)
			}
			if got := mustRead(t, path); !bytes.Equal(got, original) {
				t.Fatalf("after uninstall the file differs from the original:\n%q\nwant\n%q", got, original)
			}
			if changes, err := Uninstall(dir); err != nil || len(changes) != 0 {
				t.Fatalf("second Uninstall = %+v, %v; want nothing", changes, err)
			}
		})
	}
}

func TestInstallMovesAnOutdatedOrMisplacedEntryLast(t *testing.T) {
	dir := t.TempDir()
	old := Entry{SocketPath: "/run/old.sock"}
	misplaced := strings.Replace(azureStyleConflist, "\"plugins\":[\n", "\"plugins\":[\n      "+string(old.JSON())+",\n", 1)
	path := writeConf(t, dir, "10-azure.conflist", []byte(misplaced), 0o644)

	change, err := Install(dir, testEntry)
	if err != nil || change.Action != Updated {
		t.Fatalf("Install = %+v, %v; want updated", change, err)
	}
	got := mustRead(t, path)
	if types := pluginTypes(t, path); strings.Join(types, ",") != "azure-vnet,"+PluginType {
		t.Fatalf("plugins = %v", types)
	}
	if bytes.Contains(got, []byte("/run/old.sock")) {
		t.Fatalf("old entry kept:\n%s", got)
	}
	if _, err := Uninstall(dir); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); string(got) != azureStyleConflist {
		t.Fatalf("after uninstall:\n%s", got)
	}
}

func TestInstallConvertsASingleConfAndUninstallRestoresIt(t *testing.T) {
	dir := t.TempDir()
	confPath := writeConf(t, dir, "10-podnet.conf", []byte(singleConf), 0o600)
	other := writeConf(t, dir, "20-later.conflist", []byte(azureStyleConflist), 0o644)

	change, err := Install(dir, testEntry)
	listPath := filepath.Join(dir, "10-podnet.conflist")
	if err != nil || change.Action != Converted || change.File != listPath {
		t.Fatalf("Install = %+v, %v; want converted into %s", change, err, listPath)
	}
	if _, err := os.Stat(confPath); !os.IsNotExist(err) {
		t.Fatalf("the .conf is still there (%v): the runtime would pick it before the list", err)
	}
	files, _ := configFiles(dir)
	if files[0] != "10-podnet.conflist" {
		t.Fatalf("the runtime's first file is %s", files[0])
	}
	list, err := libcni.ConfListFromFile(listPath)
	if err != nil || list.Name != "podnet" || list.CNIVersion != "1.0.0" || len(list.Plugins) != 2 ||
		list.Plugins[0].Network.Type != "bridge" || list.Plugins[1].Network.Type != PluginType {
		t.Fatalf("converted list = %+v, %v", list, err)
	}
	if info, _ := os.Stat(listPath); info.Mode().Perm() != 0o600 {
		t.Fatalf("list mode = %v, want the .conf's 0600", info.Mode().Perm())
	}
	if again, err := Install(dir, testEntry); err != nil || again.Action != Unchanged {
		t.Fatalf("second Install = %+v, %v", again, err)
	}

	// The CNI that owns the .conf writes it again (it sorts before our list): Install converts it again,
	// and Uninstall brings back that newer .conf.
	rewritten := strings.Replace(singleConf, "cni0", "cni1", 1)
	writeConf(t, dir, "10-podnet.conf", []byte(rewritten), 0o600)
	if again, err := Install(dir, testEntry); err != nil || again.Action != Converted {
		t.Fatalf("Install after the owner rewrote the .conf = %+v, %v", again, err)
	}
	if !bytes.Contains(mustRead(t, listPath), []byte("cni1")) {
		t.Fatalf("the list does not wrap the rewritten .conf:\n%s", mustRead(t, listPath))
	}

	changes, err := Uninstall(dir)
	if err != nil || len(changes) != 1 || changes[0].Action != Restored {
		t.Fatalf("Uninstall = %+v, %v", changes, err)
	}
	if got := mustRead(t, confPath); string(got) != rewritten {
		t.Fatalf("restored .conf differs:\n%s", got)
	}
	if info, _ := os.Stat(confPath); info.Mode().Perm() != 0o600 {
		t.Fatalf("restored mode = %v", info.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("left behind: %v", entries)
	}
	if string(mustRead(t, other)) != azureStyleConflist {
		t.Fatal("another file changed")
	}
}

func TestInstallRefusesWhatItCannotChainSafely(t *testing.T) {
	cases := map[string]struct {
		files map[string]string
		want  string
	}{
		"empty dir":          {map[string]string{}, "no CNI configuration"},
		"empty plugins":      {map[string]string{"10-x.conflist": `{"cniVersion":"1.0.0","name":"x","plugins":[]}`}, "plugins list is empty"},
		"no plugins key":     {map[string]string{"10-x.conflist": `{"cniVersion":"1.0.0","name":"x"}`}, `no "plugins"`},
		"not json":           {map[string]string{"10-x.conflist": `{"cniVersion":`}, "10-x.conflist"},
		"list in a .conf":    {map[string]string{"10-x.conf": `{"name":"x","plugins":[{"type":"bridge"}]}`}, "rename a list to .conflist"},
		"would not be first": {map[string]string{"10-x.conf": singleConf, "10-x.conf.json.conf": singleConf}, "would let 10-x.conf.json.conf come first"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for file, data := range tc.files {
				writeConf(t, dir, file, []byte(data), 0o644)
			}
			_, err := Install(dir, testEntry)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Install error = %v, want it to mention %q", err, tc.want)
			}
			for file, data := range tc.files {
				if got := mustRead(t, filepath.Join(dir, file)); string(got) != data {
					t.Fatalf("%s changed on a refused install", file)
				}
			}
		})
	}
}

func TestInstallBinaryIsAtomicAndIdempotent(t *testing.T) {
	src := filepath.Join(t.TempDir(), "egressgw-cni")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho v1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	if wrote, err := InstallBinary(src, binDir); err != nil || !wrote {
		t.Fatalf("InstallBinary = %v, %v", wrote, err)
	}
	dst := filepath.Join(binDir, PluginType)
	if info, _ := os.Stat(dst); info.Mode().Perm() != 0o755 {
		t.Fatalf("mode = %v, want 0755", info.Mode().Perm())
	}
	if wrote, err := InstallBinary(src, binDir); err != nil || wrote {
		t.Fatalf("second InstallBinary = %v, %v; want no write", wrote, err)
	}
	if entries, _ := os.ReadDir(binDir); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if err := RemoveBinary(binDir); err != nil {
		t.Fatal(err)
	}
	if err := RemoveBinary(binDir); err != nil {
		t.Fatalf("second RemoveBinary: %v", err)
	}
}
