// Command egressgw-cni is the chained CNI plugin of egressgw: on ADD it asks the node's agent to program the
// pod before the runtime starts it (docs/cni.md). The runtime runs it; nobody else should.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/egressgw/egressgw/pkg/cniplugin"
)

func main() {
	plugin := &cniplugin.Plugin{Stdout: os.Stdout, Stderr: os.Stderr}
	skel.PluginMainFuncs(plugin.Funcs(), cniplugin.SupportedVersions, "egressgw-cni: programs a pod's egress through the egressgw agent before it starts")
}
