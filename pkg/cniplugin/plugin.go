package cniplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/egressgw/egressgw/pkg/cnirpc"
)

// Plugin runs the CNI commands. Stdout receives the result, Stderr the logs.
type Plugin struct {
	Stdout io.Writer
	Stderr io.Writer
}

// Funcs are the commands for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status, GC: p.GC}
}

// call is what every command needs: the parsed configuration, the pod, a logger and a client.
type call struct {
	cfg    *Config
	pod    cnirpc.PodIdentity
	k8s    bool
	log    *slog.Logger
	client *cnirpc.Client
	close  func()
}

func (p *Plugin) prepare(command string, args *skel.CmdArgs) (*call, error) {
	cfg, err := ParseConfig(args.StdinData)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	podArgs, err := ParseArgs(args.Args)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	log, closeLog := newLogger(p.Stderr, cfg)
	pod := cnirpc.PodIdentity{Namespace: podArgs.Namespace, Name: podArgs.Name, UID: podArgs.UID, ContainerID: args.ContainerID}
	log = log.With("command", command, "pod", pod.Namespace+"/"+pod.Name, "containerID", args.ContainerID, "ifName", args.IfName)
	return &call{cfg: cfg, pod: pod, k8s: podArgs.FromKubernetes(), log: log, client: cnirpc.NewClient(cfg.Conf.SocketPath), close: closeLog}, nil
}

// Add asks the agent to program the pod and, once it did, returns the previous plugin's result unchanged.
// It fails when the agent is unreachable, slow or refuses: the pod must not start unsteered.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	return p.askAboutPod("ADD", args, (*cnirpc.Client).Add)
}

// Check asks the agent whether the pod's programming is in place.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	return p.askAboutPod("CHECK", args, (*cnirpc.Client).Check)
}

// askAboutPod sends ADD or CHECK for the pod in prevResult, bounded by addTimeout; ADD prints prevResult
// once the agent answered (or at once for a sandbox that is not a Kubernetes pod).
func (p *Plugin) askAboutPod(command string, args *skel.CmdArgs, send func(*cnirpc.Client, context.Context, cnirpc.AddRequest) error) error {
	c, err := p.prepare(command, args)
	if err != nil {
		return err
	}
	defer c.close()
	ips, err := c.requirePrevResult()
	if err != nil {
		return err
	}
	if c.k8s {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.AddTimeout)
		defer cancel()
		if err := send(c.client, ctx, cnirpc.AddRequest{Pod: c.pod, IPs: ips}); err != nil {
			c.log.Error("the agent did not confirm the pod's programming: "+command+" fails", "ips", ips, "err", err)
			return addError(c.pod, err)
		}
		c.log.Info("pod programmed by the agent", "ips", ips)
	} else {
		c.log.Info("sandbox is not a Kubernetes pod (no K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS): passed through")
	}
	if command != "ADD" {
		return nil
	}
	return p.writeResult(c.cfg)
}

// Del asks the agent to remove the sandbox's programming. An agent that is unreachable or slow does not fail
// the DEL (logged): a DEL that fails forever blocks pod deletion and, since the chain is deleted from the last
// plugin backwards, would keep the interface plugin from releasing the address; the agent's resync removes
// what it holds for pods that are gone (a configuration egressgw-cni cannot read is handled the same way).
// An agent that answers with an error fails the DEL (the kubelet retries): it only refuses when a retry can
// help.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	c, err := p.prepare("DEL", args)
	if err != nil {
		// The same reasoning: a configuration broken after pods started must not keep them from being deleted.
		slog.New(slog.NewJSONHandler(p.Stderr, nil)).Error("egressgw-cni cannot read its configuration on DEL; DEL succeeds without asking the agent",
			"plugin", PluginType, "containerID", args.ContainerID, "err", err)
		return nil
	}
	defer c.close()
	if !c.k8s {
		return nil
	}
	ips, err := prevResultIPv4(c.cfg)
	if err != nil {
		c.log.Warn("ignoring an unreadable cached result on DEL", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DeleteTimeout)
	defer cancel()
	err = c.client.Del(ctx, cnirpc.DelRequest{Pod: c.pod, IPs: ips})
	var refused *cnirpc.AgentError
	switch {
	case err == nil:
		c.log.Info("pod removed by the agent")
		return nil
	case errors.As(err, &refused):
		c.log.Error("the agent refused the DEL: DEL fails and the kubelet retries", "err", err)
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("egressgw-cni: removing %s: %v", c.pod, err), "")
	default:
		c.log.Warn("the agent was not reached on DEL; DEL succeeds and the agent's resync removes the pod's state", "err", err)
		return nil
	}
}

// Status reports whether the agent serves, for runtimes that ask (CNI 1.1.0).
func (p *Plugin) Status(args *skel.CmdArgs) error {
	cfg, err := ParseConfig(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DeleteTimeout)
	defer cancel()
	if err := cnirpc.NewClient(cfg.Conf.SocketPath).Status(ctx); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "egressgw-cni: "+err.Error(), "")
	}
	return nil
}

// GC has nothing to collect: the agent's resync owns stale state.
func (p *Plugin) GC(*skel.CmdArgs) error { return nil }

func (c *call) requirePrevResult() ([]netip.Addr, error) {
	if c.cfg.RawPrevResult == nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			"egressgw-cni is a chained plugin and got no prevResult: list it after the plugin that creates the pod's interface, in the same conflist", "")
	}
	ips, err := prevResultIPv4(c.cfg)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	return ips, nil
}

// writeResult prints prevResult exactly as the runtime sent it: a chained plugin returns the previous result.
func (p *Plugin) writeResult(cfg *Config) error {
	if _, err := p.Stdout.Write(cfg.RawPrevResult); err != nil {
		return types.NewError(types.ErrIOFailure, "egressgw-cni: writing the result: "+err.Error(), "")
	}
	return nil
}

// prevResultIPv4 are the IPv4 addresses on the sandbox's interfaces in prevResult (those whose interface is
// unknown are included: some plugins do not list interfaces).
func prevResultIPv4(cfg *Config) ([]netip.Addr, error) {
	if cfg.Conf.RawPrevResult == nil {
		return nil, nil
	}
	conf := cfg.Conf.PluginConf
	if err := version.ParsePrevResult(&conf); err != nil {
		return nil, fmt.Errorf("egressgw-cni: reading prevResult: %w", err)
	}
	result, err := types100.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return nil, fmt.Errorf("egressgw-cni: converting prevResult: %w", err)
	}
	var ips []netip.Addr
	for _, ipc := range result.IPs {
		if ipc.Interface != nil && (*ipc.Interface < 0 || *ipc.Interface >= len(result.Interfaces) || result.Interfaces[*ipc.Interface].Sandbox == "") {
			continue
		}
		if addr, ok := netip.AddrFromSlice(ipc.Address.IP); ok && addr.Unmap().Is4() {
			ips = append(ips, addr.Unmap())
		}
	}
	return ips, nil
}

// addError is the CNI error of a failed ADD or CHECK, written for the person reading the pod's events.
func addError(pod cnirpc.PodIdentity, err error) error {
	var refused *cnirpc.AgentError
	var unreachable *cnirpc.UnreachableError
	var timeout *cnirpc.TimeoutError
	switch {
	case errors.As(err, &refused):
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("egressgw-cni: the egressgw agent could not program pod %s: %s", pod, refused.Message),
			"the pod is not started until its egress is programmed; the kubelet retries")
	case errors.As(err, &unreachable), errors.As(err, &timeout):
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("egressgw-cni: pod %s not started: %v; check the egressgw-agent pod on this node", pod, err),
			"the pod is not started until its egress is programmed; the kubelet retries")
	default:
		return types.NewError(types.ErrInternal, fmt.Sprintf("egressgw-cni: pod %s: %v", pod, err), "")
	}
}

// newLogger logs JSON to stderr and, when configured, to LogFile.
func newLogger(stderr io.Writer, cfg *Config) (*slog.Logger, func()) {
	out, closeFile := stderr, func() {}
	if cfg.Conf.LogFile != "" {
		if f, err := os.OpenFile(cfg.Conf.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			out, closeFile = io.MultiWriter(stderr, f), func() { _ = f.Close() }
		}
	}
	handler := slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel})
	return slog.New(handler).With("plugin", PluginType), closeFile
}
