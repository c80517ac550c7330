// Package cnirpc is the protocol between the chained CNI plugin egressgw-cni and the egressgw agent on the
// same node: JSON over HTTP on a unix socket (default /run/egressgw/cni.sock).
//
// The plugin sends, for every pod sandbox the runtime sets up or tears down:
//
//	POST /v1/cni/add    AddRequest  -> 200 once the pod is programmed (steered, or dropped fail-closed)
//	POST /v1/cni/check  AddRequest  -> 200 when the pod's programming is in place
//	POST /v1/cni/del    DelRequest  -> 200 once nothing remains for that sandbox (idempotent)
//	GET  /v1/status                 -> 200 while the agent serves
//
// Any other status carries an ErrorResponse whose message is written for a person; the plugin puts it into
// the CNI error the kubelet shows in the pod's events. The path is versioned: a change that an older plugin
// binary cannot read gets /v2, and the agent keeps serving /v1 while old binaries may still be installed.
//
// This package holds the wire types and the Client the plugin links (nothing heavier: the plugin is a
// process per pod start); the agent's side is package cniserver.
package cnirpc

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultSocketPath is where the agent listens and where the plugin dials unless its network
// configuration says otherwise (key "socketPath").
const DefaultSocketPath = "/run/egressgw/cni.sock"

// Paths of the protocol's endpoints.
const (
	PathAdd    = "/v1/cni/add"
	PathCheck  = "/v1/cni/check"
	PathDel    = "/v1/cni/del"
	PathStatus = "/v1/status"
)

// MaxRequestBytes bounds a request body; a real one is a few hundred bytes.
const MaxRequestBytes = 64 << 10

// MaxMessageBytes bounds an error message that travels back to the plugin and into pod events.
const MaxMessageBytes = 1024

// PodIdentity names the pod sandbox a request is about.
type PodIdentity struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// UID is the pod's UID (K8S_POD_UID) when the runtime passes it (containerd does); empty otherwise.
	UID string `json:"uid,omitempty"`
	// ContainerID is the sandbox's ID (CNI_CONTAINERID). A pod gets a new sandbox, and a new ID, each time
	// its sandbox is recreated, and a DEL of the old sandbox may arrive after the ADD of the new one: the agent
	// removes on DEL only what it programmed for that ContainerID.
	ContainerID string `json:"containerID"`
}

// String is "namespace/name (container ID)" for logs and messages.
func (p PodIdentity) String() string {
	return fmt.Sprintf("%s/%s (sandbox %s)", p.Namespace, p.Name, p.ShortID())
}

// ShortID is the container ID cut to 12 characters, as runtimes print it.
func (p PodIdentity) ShortID() string {
	if len(p.ContainerID) > 12 {
		return p.ContainerID[:12]
	}
	return p.ContainerID
}

// Validate names every missing field.
func (p PodIdentity) Validate() error {
	var missing []string
	if p.Namespace == "" {
		missing = append(missing, "namespace")
	}
	if p.Name == "" {
		missing = append(missing, "name")
	}
	if p.ContainerID == "" {
		missing = append(missing, "containerID")
	}
	if len(missing) > 0 {
		return fmt.Errorf("pod identity is missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// AddRequest is the body of ADD and CHECK.
type AddRequest struct {
	Pod PodIdentity `json:"pod"`
	// IPs are the pod's IPv4 addresses from the previous plugin's result (the addresses of interfaces inside
	// the sandbox). Empty when the previous plugin assigned none: the agent decides what that means for a
	// selected pod.
	IPs []netip.Addr `json:"ips"`
}

// Validate checks the identity and that every address is an IPv4 address.
func (r AddRequest) Validate() error {
	if err := r.Pod.Validate(); err != nil {
		return err
	}
	for i, ip := range r.IPs {
		if !ip.Is4() {
			return fmt.Errorf("ips[%d] is %q: only IPv4 addresses are sent", i, ip)
		}
	}
	return nil
}

// DelRequest is the body of DEL. IPs are present when the runtime passed the cached result of the ADD.
type DelRequest struct {
	Pod PodIdentity  `json:"pod"`
	IPs []netip.Addr `json:"ips,omitempty"`
}

// ErrorResponse is the body of every non-200 answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// BoundMessage keeps a message short enough for a pod event.
func BoundMessage(msg string) string {
	if len(msg) <= MaxMessageBytes {
		return msg
	}
	return msg[:MaxMessageBytes-3] + "..."
}
