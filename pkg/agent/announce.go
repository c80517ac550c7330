package agent

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
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/cnirpc"
)

// A gateway learns a remote pod's IP from the Pod's status, which the kubelet writes up to a second or
// more after the pod's sandbox is up and sending; until then it drops the pod's tunnelled packets (its
// SNAT takes only pods it knows). So at CNI ADD the source node's agent announces the pod's IPs to the
// agent of the gateway node that holds each egress IP the pod will use, and waits for it to program them
// before ADD returns: the pod's first packet finds its SNAT. The gateway trusts the announcement as far
// as it trusts the tunnel: it comes from the InternalIP of the node the Pod object is scheduled on, and
// the gateway decides selection from its own cache of that Pod's labels (docs/agent.md).

// PathAnnounce is where an agent accepts another node's announcement of a new pod's IPs: POST a
// cnirpc.AddRequest, on the agent's health listener (the node's InternalIP, Options.PeerPort).
const PathAnnounce = "/v1/peer/pod-added"

// announceTimeout bounds the wait for one gateway's answer, and so what a dead gateway (no answer at
// all) adds to every ADD until the manager moves its IPs. A gateway that does not answer in time learns
// the pod from its status instead; its first packets are dropped meanwhile, never leaked.
const announceTimeout = time.Second

// announceResult are the label values of egressgw_agent_announcements_total.
const (
	announceOK     = "ok"
	announceFailed = "failed"
)

// announce tells the agent of every other node that holds an egress IP of a policy selecting pod about
// its IPs, in parallel, and returns once each answered or gave up. Failures are logged and counted,
// never returned: the pod is steered either way, and what a gateway does not know it drops.
func (a *Agent) announce(ctx context.Context, pod *PodInfo, req cnirpc.AddRequest) {
	peers := a.gatewaysOf(pod)
	if len(peers) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, announceTimeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for node, ip := range peers {
		wg.Go(func() {
			if err := a.announceTo(ctx, ip, body); err != nil {
				a.metrics.announcements.WithLabelValues(announceFailed).Inc()
				a.log.Warn("gateway not told of a new pod; it drops the pod's tunnelled packets until the Pod's status reaches it",
					"pod", req.Pod.String(), "gateway", node, "err", err)
				return
			}
			a.metrics.announcements.WithLabelValues(announceOK).Inc()
		})
	}
	wg.Wait()
}

func (a *Agent) announceTo(ctx context.Context, ip netip.Addr, body []byte) error {
	url := "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(a.opts.PeerPort)) + PathAnnounce
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.peers.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	var e cnirpc.ErrorResponse
	_ = json.NewDecoder(io.LimitReader(resp.Body, cnirpc.MaxMessageBytes*2)).Decode(&e)
	return fmt.Errorf("%s answered %s: %s", ip, resp.Status, e.Error)
}

// gatewaysOf are the other nodes (name → InternalIP) that hold, right now, the egress IP of a policy
// selecting pod: the ones whose SNAT must know it.
func (a *Agent) gatewaysOf(pod *PodInfo) map[string]netip.Addr {
	out := map[string]netip.Addr{}
	gateways := map[string]*egressgwv1.EgressGateway{}
	for _, g := range listAll[*egressgwv1.EgressGateway](a.gateways) {
		gateways[g.Name] = g
	}
	for _, p := range byNamespace[*egressgwv1.EgressPolicy](a.policies, pod.Namespace) {
		if p.DeletionTimestamp != nil {
			continue
		}
		sel, err := p.Spec.PodSelector.Selector()
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		_, node, ok := usableEgressIP(p, gateways[p.Spec.GatewayName])
		if !ok || node == a.opts.Node {
			continue
		}
		if n := a.node(node); n != nil {
			if ip, ok := nodeInternalIPv4(n); ok {
				out[node] = ip
			}
		}
	}
	return out
}

// serveAnnounce is the gateway's side: it checks that the announcement comes from the node the Pod is
// scheduled on, adds the pod's IPs to the overlay (selection is decided from this node's own cache of the
// Pod, as for every pod) and answers 204 once this node's datapath has them.
func (a *Agent) serveAnnounce(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		announceError(w, http.StatusMethodNotAllowed, errors.New("use POST"))
		return
	}
	var req cnirpc.AddRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, cnirpc.MaxRequestBytes)).Decode(&req); err != nil {
		announceError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if err := req.Validate(); err != nil {
		announceError(w, http.StatusBadRequest, err)
		return
	}
	if err := a.waitReady(r.Context()); err != nil {
		announceError(w, http.StatusServiceUnavailable, err)
		return
	}
	pod, status, err := a.announcedPod(r, req.Pod)
	if err != nil {
		announceError(w, status, err)
		return
	}
	if err := a.overlay.add(req.Pod.ContainerID, pod, req.IPs); err != nil {
		a.log.Error("announced pod kept in memory only", "pod", req.Pod.String(), "err", err)
	}
	if err := a.syncThrough(r.Context(), a.bump()); err != nil {
		announceError(w, http.StatusServiceUnavailable, fmt.Errorf("programming pod %s/%s on node %s: %w", pod.Namespace, pod.Name, a.opts.Node, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// announcedPod is the Pod an announcement names, once this node is a gateway candidate, the Pod (from
// the cluster-wide cache, or the API server when the cache has not seen it yet) has the announced UID,
// and the request comes from the InternalIP of the Pod's node.
func (a *Agent) announcedPod(r *http.Request, id cnirpc.PodIdentity) (*PodInfo, int, error) {
	if !a.cluster.running() {
		return nil, http.StatusConflict, fmt.Errorf("node %s is not a gateway candidate", a.opts.Node)
	}
	pod, err := a.podForAnnounce(r.Context(), id)
	if err != nil {
		return nil, http.StatusNotFound, err
	}
	from, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil, http.StatusForbidden, fmt.Errorf("peer address %q: %w", r.RemoteAddr, err)
	}
	var want netip.Addr
	if n := a.node(pod.NodeName); n != nil {
		want, _ = nodeInternalIPv4(n)
	}
	if !want.IsValid() || from.Addr().Unmap() != want {
		return nil, http.StatusForbidden, fmt.Errorf("pod %s/%s runs on node %q (InternalIP %v); the announcement came from %s",
			id.Namespace, id.Name, pod.NodeName, want, from.Addr())
	}
	return pod, 0, nil
}

// podForAnnounce is the Pod from the cluster-wide cache when it holds that pod with the same UID, else
// from the API server.
func (a *Agent) podForAnnounce(ctx context.Context, id cnirpc.PodIdentity) (*PodInfo, error) {
	key := id.Namespace + "/" + id.Name
	if p := a.cluster.get(key); p != nil && (id.UID == "" || string(p.UID) == id.UID) {
		return p, nil
	}
	p, err := a.getPod(ctx, id)
	if err == nil && id.UID != "" && string(p.UID) != id.UID {
		err = fmt.Errorf("pod %s/%s has UID %s, not the announced %s", id.Namespace, id.Name, p.UID, id.UID)
	}
	return p, err
}

func announceError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(cnirpc.ErrorResponse{Error: cnirpc.BoundMessage(err.Error())})
}
