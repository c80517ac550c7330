package cniplugin

import (
	"fmt"
	"strings"
)

// PodArgs are the Kubernetes keys of CNI_ARGS that the kubelet's runtime (containerd, CRI-O) passes.
type PodArgs struct {
	Namespace string // K8S_POD_NAMESPACE
	Name      string // K8S_POD_NAME
	UID       string // K8S_POD_UID, absent on older runtimes
}

// FromKubernetes says whether the sandbox is a Kubernetes pod; other sandboxes are passed through.
func (a PodArgs) FromKubernetes() bool { return a.Namespace != "" && a.Name != "" }

// ParseArgs reads CNI_ARGS ("K1=V1;K2=V2"). Unknown keys are ignored whatever IgnoreUnknown says: a chained
// plugin must not fail a pod for a key meant for another plugin.
func ParseArgs(cniArgs string) (PodArgs, error) {
	var args PodArgs
	if cniArgs == "" {
		return args, nil
	}
	for _, pair := range strings.Split(cniArgs, ";") {
		if pair == "" {
			continue
		}
		key, value, ok := strings.Cut(pair, "=")
		if !ok {
			return PodArgs{}, fmt.Errorf("CNI_ARGS entry %q is not KEY=VALUE", pair)
		}
		switch key {
		case "K8S_POD_NAMESPACE":
			args.Namespace = value
		case "K8S_POD_NAME":
			args.Name = value
		case "K8S_POD_UID":
			args.UID = value
		}
	}
	return args, nil
}
