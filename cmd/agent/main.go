// Command egressgw-agent runs on every node (DaemonSet, host network): it programs the node's datapath
// from the API server's EgressPolicies, EgressGateways, Nodes and Pods, serves the chained CNI plugin,
// and answers the manager's health probes. `egressgw-agent uninstall` removes everything it made. This
// file only parses, validates, wires and runs; the logic lives in pkg/agent and pkg/nodeagent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/vishvananda/netlink"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/agent"
	"github.com/egressgw/egressgw/pkg/cniconf"
	"github.com/egressgw/egressgw/pkg/cnirpc"
	"github.com/egressgw/egressgw/pkg/cniserver"
	"github.com/egressgw/egressgw/pkg/nodeagent"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

type options struct {
	nodeName     string
	clusterCIDRs string
	serviceCIDRs string // auto, on, off
	resync       time.Duration
	healthAddr   string
	stateDir     string
	iptables     string // auto, legacy, nft
	logLevel     string
	showVersion  bool
	cni          cniOptions
	dp           nodeagent.Config
}

type cniOptions struct {
	install   bool
	confDir   string
	binDir    string
	pluginSrc string
	socket    string
	resync    time.Duration
}

func newOptions() *options {
	return &options{
		nodeName: os.Getenv("NODE_NAME"), serviceCIDRs: "auto", iptables: "auto", resync: 60 * time.Second, logLevel: "info",
		cni: cniOptions{install: true, confDir: cniconf.DefaultConfDir, binDir: cniconf.DefaultBinDir,
			pluginSrc: "/opt/egressgw/bin/egressgw-cni", socket: cnirpc.DefaultSocketPath, resync: time.Minute},
		dp: nodeagent.DefaultConfig(),
	}
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.nodeName, "node-name", o.nodeName, "name of this node's Node object (default: $NODE_NAME, set from the downward API's spec.nodeName)")
	fs.StringVar(&o.clusterCIDRs, "cluster-cidrs", o.clusterCIDRs, "comma-separated pod, service and node ranges that are never steered, in addition to every Node's spec.podCIDRs, the ServiceCIDR objects and the node IPs (docs/agent.md lists what to set per cloud)")
	fs.StringVar(&o.serviceCIDRs, "service-cidrs-from-api", o.serviceCIDRs, "add the ranges of the networking.k8s.io/v1 ServiceCIDR objects to the cluster ranges: auto (when the API serves them), on, off")
	fs.DurationVar(&o.resync, "resync-interval", o.resync, "period of the full apply that reads the kernel and repairs what changed behind the agent's back")
	fs.StringVar(&o.stateDir, "state-dir", o.stateDir, "directory for what the agent keeps across its own restarts (the IPs of pods between CNI ADD and the kubelet's status write); empty: the directory of --cni-socket (/run/egressgw); keep it on the node (hostPath) so that a restarted container finds it")
	fs.StringVar(&o.iptables, "iptables-backend", o.iptables, "iptables backend of egressgw's iptables rule and of the mark check: auto (the one the node's rules use: the kubelet's KUBE-IPTABLES-HINT chain, else the backend with more rules), legacy or nft (refused when the node's rules are in the other one)")
	fs.StringVar(&o.healthAddr, "health-bind-address", o.healthAddr, "address of /healthz, /readyz and /metrics; empty: this node's InternalIP on port 9561, where the manager probes; 0: none")
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, "debug, info, warn or error")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	c := &o.cni
	fs.BoolVar(&c.install, "install-cni", c.install, "serve egressgw-cni and keep it chained last in the node's CNI configuration")
	fs.StringVar(&c.confDir, "cni-conf-dir", c.confDir, "the node's CNI configuration directory")
	fs.StringVar(&c.binDir, "cni-bin-dir", c.binDir, "the node's CNI plugin directory (/home/kubernetes/bin on GKE)")
	fs.StringVar(&c.pluginSrc, "cni-plugin-binary", c.pluginSrc, "the egressgw-cni binary in the agent's image, copied into --cni-bin-dir")
	fs.StringVar(&c.socket, "cni-socket", c.socket, "unix socket egressgw-cni talks to")
	d := &o.dp
	fs.StringVar(&d.Device, "tunnel-device", d.Device, "name of the VXLAN device")
	fs.Func("vni", fmt.Sprintf("VXLAN network identifier (default %d)", d.VNI), uintFlag(32, func(v uint64) { d.VNI = uint32(v) }))
	fs.Func("vxlan-port", fmt.Sprintf("VXLAN UDP port, not 4789/8472/7789 (default %d)", d.Port), uintFlag(16, func(v uint64) { d.Port = uint16(v) }))
	fs.Func("steer-mask", fmt.Sprintf("fwmark bits that name a gateway (default %#x)", d.SteerMask), uintFlag(32, func(v uint64) { d.SteerMask = uint32(v) }))
	fs.Func("reply-mark", fmt.Sprintf("fwmark bit of tunnelled replies (default %#x)", d.ReplyMark), uintFlag(32, func(v uint64) { d.ReplyMark = uint32(v) }))
	fs.Func("table-base", fmt.Sprintf("route table of gateway index 0; gateway i uses base+i (default %d)", d.TableBase), uintFlag(32, func(v uint64) { d.TableBase = uint32(v) }))
	fs.Func("return-table", fmt.Sprintf("route table of the gateway's return routes (default %d)", d.ReturnTable), uintFlag(32, func(v uint64) { d.ReturnTable = uint32(v) }))
	fs.IntVar(&d.RulePriority, "rule-priority", d.RulePriority, "priority of egressgw's ip rules (it and the next one are egressgw's)")
	fs.IntVar(&d.MTU, "tunnel-mtu", d.MTU, "MTU of the tunnel device; 0: the uplink's MTU minus 50")
	fs.StringVar(&d.Uplink, "uplink", d.Uplink, "underlay interface; empty: the interface that holds the node's InternalIP")
	fs.StringVar(&d.ProcSysDir, "proc-sys-dir", d.ProcSysDir, "where the agent writes kernel settings (ip_forward, rp_filter): /proc/sys in a privileged container; an unprivileged one mounts the host's /proc/sys/net (hostPath) at DIR/net, since runtimes make its own /proc/sys read-only")
}

// uintFlag parses decimal or 0x-prefixed hexadecimal values of the given width.
func uintFlag(bits int, set func(uint64)) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseUint(s, 0, bits)
		if err != nil {
			return fmt.Errorf("want an unsigned %d-bit number (decimal or 0x...)", bits)
		}
		set(v)
		return nil
	}
}

// validate lists every problem of the flags at once.
func (o *options) validate(sub string) error {
	var errs []error
	if sub == "run" && o.nodeName == "" {
		errs = append(errs, errors.New("--node-name is empty and $NODE_NAME is not set: set env NODE_NAME from fieldRef spec.nodeName"))
	}
	if _, err := parseCIDRs(o.clusterCIDRs); err != nil {
		errs = append(errs, err)
	}
	if o.serviceCIDRs != "auto" && o.serviceCIDRs != "on" && o.serviceCIDRs != "off" {
		errs = append(errs, fmt.Errorf("--service-cidrs-from-api=%q: want auto, on or off", o.serviceCIDRs))
	}
	if o.iptables != "auto" && o.iptables != nodeagent.IptablesLegacy && o.iptables != nodeagent.IptablesNft {
		errs = append(errs, fmt.Errorf("--iptables-backend=%q: want auto, legacy or nft", o.iptables))
	}
	if o.stateDir != "" && !filepath.IsAbs(o.stateDir) {
		errs = append(errs, fmt.Errorf("--state-dir=%q: want an absolute path", o.stateDir))
	}
	if o.resync < time.Second {
		errs = append(errs, fmt.Errorf("--resync-interval=%s: want at least 1s", o.resync))
	}
	if _, err := parseLevel(o.logLevel); err != nil {
		errs = append(errs, err)
	}
	for name, dir := range map[string]string{"--cni-conf-dir": o.cni.confDir, "--cni-bin-dir": o.cni.binDir, "--cni-socket": o.cni.socket} {
		if o.cni.install && !filepath.IsAbs(dir) {
			errs = append(errs, fmt.Errorf("%s=%q: want an absolute path", name, dir))
		}
	}
	if err := o.dp.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--cluster-cidrs: %q is not a CIDR (want e.g. 10.244.0.0/16)", f))
		case !p.Addr().Is4():
			errs = append(errs, fmt.Errorf("--cluster-cidrs: %q is not IPv4 (egressgw steers IPv4 only)", f))
		default:
			out = append(out, p.Masked())
		}
	}
	return out, errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level=%q: want debug, info, warn or error", s)
	}
	return l, nil
}

func (o *options) logger() *slog.Logger {
	level, _ := parseLevel(o.logLevel)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// client-go and controller-runtime log through klog and logr: route both into the same JSON stream.
	klog.SetSlogLogger(log)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	return log
}

func (o *options) datapath(log *slog.Logger) (*nodeagent.Datapath, *netlink.Handle, error) {
	if err := o.chooseIptables(log); err != nil {
		return nil, nil, err
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		return nil, nil, fmt.Errorf("netlink: %w", err)
	}
	dp, err := nodeagent.New(o.dp, nl, nodeagent.HostExec{}, log)
	return dp, nl, err
}

// chooseIptables finds the node's iptables backend and puts egressgw's iptables rule into it: rules in
// the other backend would be invisible to the node's (a DROP policy there would still drop the tunnel).
func (o *options) chooseIptables(log *slog.Logger) error {
	info, err := nodeagent.DetectIptables()
	if err != nil {
		return fmt.Errorf("detecting the node's iptables backend: %w", err)
	}
	want := o.iptables
	if want == "auto" {
		want = ""
	}
	if o.dp.Iptables, err = info.ChooseIptables(want); err != nil {
		return err
	}
	using := "iptables-" + o.dp.Iptables + "-save and -restore"
	if o.dp.Iptables == "" {
		using = "iptables-save and iptables-restore (" + info.Mode + ")"
	}
	log.Info("iptables backend chosen", "version", info.Version, "commandBackend", info.Mode, "nodeBackend", info.Node, "why", info.Why, "using", using)
	return nil
}

func newClient(cfg *rest.Config) (client.WithWatch, error) {
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := egressgwv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.NewWithWatch(cfg, client.Options{Scheme: scheme})
}

func (o *options) run(ctx context.Context, log *slog.Logger) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes API configuration: %w", err)
	}
	// Built-in types (Pods, Nodes) in protobuf: a fraction of JSON's decoding work and garbage on a
	// gateway's list of every pod; the client keeps JSON for the egressgw types, which have no protobuf.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	c, err := newClient(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	dp, nl, err := o.datapath(log)
	if err != nil {
		return err
	}
	cidrs, _ := parseCIDRs(o.clusterCIDRs)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := agent.New(c, agent.Options{
		Node: o.nodeName, Datapath: dp, DatapathConfig: o.dp, Netlink: nl, ClusterCIDRs: cidrs,
		DetectServiceCIDRs: o.detectServiceCIDRs(ctx, cfg, log), ResyncInterval: o.resync, Log: log,
		Registry: reg, HealthBindAddress: o.healthAddr, StateDir: o.statePath(),
	})
	if err != nil {
		return err
	}
	if o.cni.install {
		if err := o.startCNI(ctx, a, reg, log); err != nil {
			return err
		}
	}
	return a.Run(ctx)
}

// statePath is --state-dir, or the directory of the CNI socket: on the node, and one per agent where
// several run on one machine (the lab).
func (o *options) statePath() string {
	if o.stateDir != "" {
		return o.stateDir
	}
	return filepath.Dir(o.cni.socket)
}

func (o *options) detectServiceCIDRs(ctx context.Context, cfg *rest.Config, log *slog.Logger) bool {
	switch o.serviceCIDRs {
	case "on":
		return true
	case "off":
		return false
	}
	return waitServesServiceCIDRs(ctx, cfg, log, time.Second)
}

// waitServesServiceCIDRs asks the API server until it answers whether it serves ServiceCIDRs: an agent
// started during an API outage would otherwise go without the service range for its whole life (the
// answer is taken once). Nothing is lost by waiting: the agent's first apply waits for its caches, and
// the datapath of before a restart stays in place. first is the first wait, doubled up to 10 s.
func waitServesServiceCIDRs(ctx context.Context, cfg *rest.Config, log *slog.Logger, first time.Duration) bool {
	for attempt := 0; ; attempt++ {
		ok, err := agent.ServesServiceCIDRs(cfg)
		if err == nil {
			return ok
		}
		if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) { // an answer, not an outage
			log.Warn("cannot tell whether the API serves ServiceCIDRs; relying on --cluster-cidrs for the service range", "err", err)
			return false
		}
		if attempt%10 == 0 {
			log.Warn("waiting for the API server to tell whether it serves ServiceCIDRs (their ranges are never steered)", "attempts", attempt+1, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(min(first<<min(attempt, 10), 10*time.Second)):
		}
	}
}

// startCNI listens on the plugin's socket first (so the first ADD finds it), then installs the binary
// and keeps the plugin chained in the node's CNI configuration until ctx ends. ADDs wait for the agent's
// first full apply.
func (o *options) startCNI(ctx context.Context, a *agent.Agent, reg prometheus.Registerer, log *slog.Logger) error {
	srv, err := cniserver.NewServer(cniserver.ServerConfig{SocketPath: o.cni.socket, Logger: log, Registerer: reg}, a)
	if err != nil {
		return err
	}
	if _, err := srv.Start(ctx); err != nil {
		return err
	}
	if _, err := cniconf.InstallBinary(o.cni.pluginSrc, o.cni.binDir); err != nil {
		return err
	}
	entry := cniconf.Entry{}
	if o.cni.socket != cnirpc.DefaultSocketPath {
		entry.SocketPath = o.cni.socket
	}
	go func() {
		if err := cniconf.Keep(ctx, o.cni.confDir, entry, o.cni.resync, log); err != nil {
			log.Error("cannot keep egressgw-cni in the CNI configuration", "err", err)
		}
	}()
	return nil
}

// uninstall removes the plugin from the CNI configuration first (so that new pods stop asking the
// agent), then its binary, then everything the datapath made.
func (o *options) uninstall(ctx context.Context, log *slog.Logger) error {
	var errs []error
	if o.cni.install {
		changes, err := cniconf.Uninstall(o.cni.confDir)
		for _, c := range changes {
			log.Info("egressgw-cni removed from the CNI configuration", "file", c.File, "action", c.Action)
		}
		errs = append(errs, err, cniconf.RemoveBinary(o.cni.binDir))
	}
	if err := os.Remove(filepath.Join(o.statePath(), agent.OverlayFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing the agent's state file: %w", err))
	}
	dp, _, err := o.datapath(log)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	ch, err := dp.Uninstall(ctx)
	log.Info("datapath removed", "changes", fmt.Sprintf("%+v", ch))
	return errors.Join(append(errs, err)...)
}

func main() {
	o := newOptions()
	fs := flag.NewFlagSet("egressgw-agent", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: egressgw-agent [run|uninstall] [flags]\n\n  run        program this node's datapath and serve (default)\n  uninstall  remove everything the agent made on this node\n\n")
		fs.PrintDefaults()
	}
	o.addFlags(fs)
	args, sub := os.Args[1:], "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	_ = fs.Parse(args)
	if o.showVersion {
		fmt.Println("egressgw-agent", version)
		return
	}
	if sub != "run" && sub != "uninstall" {
		fmt.Fprintf(os.Stderr, "egressgw-agent: unknown command %q: want run or uninstall\n", sub)
		os.Exit(2)
	}
	if err := o.validate(sub); err != nil {
		fmt.Fprintf(os.Stderr, "egressgw-agent: invalid flags:\n%v\n", err)
		os.Exit(2)
	}
	log := o.logger().With("version", version)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	run := o.run
	if sub == "uninstall" {
		run = o.uninstall
	}
	if err := run(ctx, log); err != nil {
		log.Error("egressgw-agent failed", "command", sub, "err", err)
		os.Exit(1)
	}
}
