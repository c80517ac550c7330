package vpccni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"
)

// The CNI plugin asks ipamd for a pod's address with the AddNetwork and DelNetwork calls of its
// CNIBackend service (rpc/rpc.proto; pkg/ipamd/rpc_handler.go). The real plugin speaks gRPC on the
// fixed socket /var/run/aws-node/ipamd.sock; here the same calls are JSON over HTTP on a socket of the
// node's own (every lab node shares one file system), with the fields that matter.

// AddNetworkRequest is the plugin's AddNetworkRequest.
type AddNetworkRequest struct {
	PodNamespace, PodName, ContainerID, IfName, NetworkName, Netns string
}

// key is the datastore's IPAMKey: network name, container ID and interface name.
func podKey(network, container, ifName string) string {
	return network + "/" + container + "/" + ifName
}

// IPAllocation is one IPAllocationMetadata of a reply: the pod's address and where it lives.
type IPAllocation struct {
	IPv4Addr netip.Addr
	// DeviceNumber is the ENI's device index; RouteTableID the table of its routes (254, main, for
	// the primary ENI, as CalculateRouteTableId gives it).
	DeviceNumber, RouteTableID int
}

// NetworkReply is the reply to both calls.
type NetworkReply struct {
	Success              bool
	IPAllocationMetadata []IPAllocation
	// Message says why Success is false.
	Message string
}

// DelNetworkRequest is the plugin's DelNetworkRequest.
type DelNetworkRequest struct {
	PodNamespace, PodName, ContainerID, IfName, NetworkName, Reason string
}

// rtTableMain is the kernel's main routing table.
const rtTableMain = 254

// AddPod is the datastore's assign for a pod (one key per pod): an address from the pool.
func (d *IPAMD) AddPod(pod string) (netip.Addr, error) {
	a, err := d.assign(pod, pod)
	return a.IPv4Addr, err
}

func (d *IPAMD) assign(key, pod string) (IPAllocation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ip, eni, err := d.ds.assign(key, time.Now())
	if err != nil {
		return IPAllocation{}, fmt.Errorf("ipamd %s: pod %s: %w", d.cfg.InstanceID, pod, err)
	}
	d.handedOut[ip] = pod
	d.assigns++
	d.log.Info("pod got an address", "pod", pod, "ip", ip, "eni", eni.id)
	a := IPAllocation{IPv4Addr: ip, DeviceNumber: eni.device, RouteTableID: rtTableMain}
	if eni.device != 0 {
		a.RouteTableID = eni.device + 1 // CalculateRouteTableId on network card 0
	}
	return a, nil
}

// DelPod is the datastore's release: the pod's address goes back to the pool, in cooldown.
func (d *IPAMD) DelPod(pod string) (netip.Addr, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ds.release(pod, time.Now())
}

// AddNetwork is ipamd's answer to the plugin's ADD: an address of the pool for the pod, under the key
// the CNI's datastore uses.
func (d *IPAMD) AddNetwork(req AddNetworkRequest) NetworkReply {
	a, err := d.assign(podKey(req.NetworkName, req.ContainerID, req.IfName), req.PodNamespace+"/"+req.PodName)
	if err != nil {
		return NetworkReply{Message: err.Error()}
	}
	return NetworkReply{Success: true, IPAllocationMetadata: []IPAllocation{a}}
}

// DelNetwork is ipamd's answer to the plugin's DEL: the pod's address back to the pool. A pod ipamd
// does not know is ErrUnknownPod, which the plugin takes as done.
func (d *IPAMD) DelNetwork(req DelNetworkRequest) NetworkReply {
	ip, ok := d.DelPod(podKey(req.NetworkName, req.ContainerID, req.IfName))
	if !ok {
		return NetworkReply{Message: ErrUnknownPod.Error()}
	}
	return NetworkReply{Success: true, IPAllocationMetadata: []IPAllocation{{IPv4Addr: ip, RouteTableID: rtTableMain}}}
}

// ErrUnknownPod is the datastore's answer for a pod it holds no address for.
var ErrUnknownPod = errors.New("datastore: unknown pod")

// Serve answers the plugin's calls on a Unix socket at path until ctx ends.
func (d *IPAMD) Serve(ctx context.Context, path string) error {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("ipamd %s: listen on %s: %w", d.cfg.InstanceID, path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /AddNetwork", func(w http.ResponseWriter, r *http.Request) {
		var req AddNetworkRequest
		answer(w, r, &req, func() NetworkReply { return d.AddNetwork(req) })
	})
	mux.HandleFunc("POST /DelNetwork", func(w http.ResponseWriter, r *http.Request) {
		var req DelNetworkRequest
		answer(w, r, &req, func() NetworkReply { return d.DelNetwork(req) })
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close(); _ = os.Remove(path) }()
	return nil
}

func answer(w http.ResponseWriter, r *http.Request, req any, call func() NetworkReply) {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(call())
}

// Call sends one of the plugin's calls ("AddNetwork", "DelNetwork") to the ipamd on socket path.
func Call(ctx context.Context, path, method string, req any) (NetworkReply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return NetworkReply{}, err
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://ipamd/"+method, bytes.NewReader(body))
	if err != nil {
		return NetworkReply{}, err
	}
	resp, err := client.Do(hr)
	if err != nil {
		return NetworkReply{}, fmt.Errorf("%s to ipamd at %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return NetworkReply{}, fmt.Errorf("%s to ipamd at %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	var out NetworkReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil {
		return NetworkReply{}, fmt.Errorf("%s to ipamd at %s: reading the reply: %w", method, path, err)
	}
	return out, nil
}
