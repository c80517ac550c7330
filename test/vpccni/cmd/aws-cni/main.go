// Command aws-cni is the lab's stand-in for the AWS VPC CNI's plugin (test/vpccni/plugin).
package main

import (
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/egressgw/egressgw/test/vpccni/plugin"
)

// The plugin works on the thread's network namespace, as the CNI's does.
func init() { runtime.LockOSThread() }

func main() {
	skel.PluginMainFuncs(plugin.Funcs(), plugin.SupportedVersions, "aws-cni: the lab's AWS VPC CNI plugin")
}
