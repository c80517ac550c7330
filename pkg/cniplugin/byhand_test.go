package cniplugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runPlugin runs a plugin binary the way a runtime does: CNI_* in the environment, the network
// configuration on stdin, in the node's namespace. It returns stdout and the exit error.
func (l *chainLab) runPlugin(plugin, command, containerID, netnsPath, cniArgs string, conf []byte) ([]byte, error) {
	cmd := exec.Command("ip", "netns", "exec", l.node.Name, filepath.Join(pluginBinaries(l.t), plugin))
	cmd.Env = []string{
		"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + containerID, "CNI_NETNS=" + netnsPath,
		"CNI_IFNAME=eth0", "CNI_PATH=" + pluginBinaries(l.t), "CNI_ARGS=" + cniArgs, "PATH=" + os.Getenv("PATH"),
	}
	cmd.Stdin = bytes.NewReader(conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		l.t.Logf("%s %s stderr: %s", plugin, command, stderr.Bytes())
	}
	return out, err
}

func TestPluginRunByHandLikeARuntime(t *testing.T) {
	agent := &testAgent{}
	socket := serveAgent(t, agent)
	lab := newChainLab(t, socket, "10s")
	podNS, _ := lab.pod("byhand")
	containerID := "byhand" + lab.prefix
	netnsPath := "/run/netns/" + podNS.Name
	cniArgs := "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=byhand;K8S_POD_UID=u-1"

	bridgeConf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"egwtest","type":"bridge","bridge":"%s-br",
	  "ipam":{"type":"host-local","ranges":[[{"subnet":"10.250.8.0/24"}]],"dataDir":%q}}`, lab.prefix, lab.dataDir)
	bridgeOut, err := lab.runPlugin("bridge", "ADD", containerID, netnsPath, cniArgs, []byte(bridgeConf))
	if err != nil {
		t.Fatalf("bridge ADD: %v: %s", err, bridgeOut)
	}
	ourConf := func(prevResult []byte) []byte {
		conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"egwtest","type":"egressgw-cni","socketPath":%q`, socket)
		if prevResult != nil {
			conf += `,"prevResult":` + string(prevResult)
		}
		return []byte(conf + "}")
	}

	out, err := lab.runPlugin(PluginType, "ADD", containerID, netnsPath, cniArgs, ourConf(bridgeOut))
	if err != nil {
		t.Fatalf("egressgw-cni ADD: %v: %s", err, out)
	}
	// The runtime's stdin carried the bridge's bytes; egressgw-cni returns exactly them.
	if !bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(bridgeOut)) {
		t.Fatalf("result changed:\nbridge:       %s\negressgw-cni: %s", bridgeOut, out)
	}
	calls := agent.recorded()
	if len(calls) != 1 || calls[0].pod.Name != "byhand" || calls[0].pod.UID != "u-1" || len(calls[0].ips) != 1 || calls[0].ips[0] != podIPv4(t, podNS) {
		t.Fatalf("agent calls = %+v, pod IP %v", calls, podIPv4(t, podNS))
	}

	if out, err := lab.runPlugin(PluginType, "CHECK", containerID, netnsPath, cniArgs, ourConf(bridgeOut)); err != nil {
		t.Fatalf("CHECK: %v: %s", err, out)
	}
	if out, err := lab.runPlugin(PluginType, "STATUS", "", "", "", ourConf(nil)); err != nil {
		t.Fatalf("STATUS: %v: %s", err, out)
	}

	// Without a prevResult egressgw-cni is misconfigured: it is not the last plugin of a list.
	out, err = lab.runPlugin(PluginType, "ADD", containerID, netnsPath, cniArgs, ourConf(nil))
	var cniErr struct {
		Code uint   `json:"code"`
		Msg  string `json:"msg"`
	}
	if err == nil || json.Unmarshal(out, &cniErr) != nil || cniErr.Code != 7 || !strings.Contains(cniErr.Msg, "chained plugin") {
		t.Fatalf("ADD without prevResult = %v, %s; want error code 7 about chaining", err, out)
	}

	// DEL in the runtime's order: the chain backwards, each with the cached result.
	for _, step := range []struct {
		plugin string
		conf   []byte
	}{{PluginType, ourConf(bridgeOut)}, {"bridge", []byte(bridgeConf)}} {
		if out, err := lab.runPlugin(step.plugin, "DEL", containerID, netnsPath, cniArgs, step.conf); err != nil {
			t.Fatalf("%s DEL: %v: %s", step.plugin, err, out)
		}
	}
	if calls := agent.recorded(); len(calls) != 2 || calls[1].op != "del" {
		t.Fatalf("agent calls = %+v, want add then del", calls)
	}

	// A configuration broken after the pod started fails ADD but never blocks the pod's deletion.
	broken := []byte(`{"cniVersion":"1.1.0","name":"egwtest","type":"egressgw-cni","socketPath":"relative.sock"}`)
	if out, err := lab.runPlugin(PluginType, "ADD", containerID, netnsPath, cniArgs, broken); err == nil || !strings.Contains(string(out), "socketPath") {
		t.Fatalf("ADD with a relative socketPath = %v, %s; want an error naming socketPath", err, out)
	}
	if out, err := lab.runPlugin(PluginType, "DEL", containerID, netnsPath, cniArgs, broken); err != nil {
		t.Fatalf("DEL with a broken configuration: %v: %s", err, out)
	}
}

func TestStatusFailsWithoutAnAgent(t *testing.T) {
	lab := newChainLab(t, "/nonexistent/cni.sock", "10s")
	conf := []byte(`{"cniVersion":"1.1.0","name":"egwtest","type":"egressgw-cni","socketPath":"/nonexistent/cni.sock"}`)
	out, err := lab.runPlugin(PluginType, "STATUS", "", "", "", conf)
	var cniErr struct {
		Code uint `json:"code"`
	}
	if err == nil || json.Unmarshal(out, &cniErr) != nil || cniErr.Code != 50 {
		t.Fatalf("STATUS without agent = %v, %s; want code 50 (plugin not available)", err, out)
	}
}
