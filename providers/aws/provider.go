// Package aws is the egressgw provider for Amazon EC2: egress IPs are secondary private IPv4 addresses of
// a dedicated network interface of each gateway node, optionally with an Elastic IP associated. The
// interface is tagged so that the AWS VPC CNI never adopts its addresses into its pod IP pool (see
// eni.go); the primary-interface mode puts them on the node's primary ENI instead, for clusters without
// that CNI. A move is one AssignPrivateIpAddresses call with AllowReassignment, and the Elastic IP follows,
// after one filtered DescribeNetworkInterfaces that makes sure every address is egressgw's to take
// (ownership.go), unless the provider saw them recently enough (lastseen.go).
//
// It uses aws-sdk-go-v2 with the default configuration chain, so credentials come from the environment,
// shared files, IRSA (web identity) or EKS Pod Identity without code, and the EC2 endpoint can be
// overridden with the SDK's standard settings (AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL, endpoint_url).
package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/deadline"
	"github.com/egressgw/egressgw/providers/internal/retry"
)

// Options tune a Provider. ClusterName is required in the default, dedicated-interface mode.
type Options struct {
	// EgressInterface is where egress IPs live: InterfaceDedicated (default) or InterfacePrimary.
	EgressInterface InterfaceMode
	// ClusterName goes into the egressgw.io/cluster tag of the interfaces egressgw creates and is how it
	// finds them again; the IAM policy's conditions name it.
	ClusterName string
	// EgressSubnets names, per availability zone, the subnet in which a gateway's dedicated interface is
	// created (for example a public subnet, for Elastic IPs, while the nodes stay private). Zones without
	// an entry use EgressSubnetTags, then the subnet of the node's primary interface.
	EgressSubnets map[string]string
	// EgressSubnetTags selects the egress subnet of a zone by tags: the subnet of the node's VPC and zone
	// carrying all of them (the lowest ID when several do).
	EgressSubnetTags map[string]string
	// SecurityGroups of created interfaces; empty means those of the node's primary interface.
	SecurityGroups []string
	// VPCID limits Locate to one VPC. Without it Locate searches the VPCs of the nodes the provider has
	// resolved (the cluster's), or every VPC the credentials can see before it knows any node, and reports
	// an IP found in two of them alone, as in use (providers.Location.InUse).
	VPCID string
	// Limits are client-side rate limits per EC2 action; nil means DefaultLimits. Actions missing from a
	// non-nil map are not limited.
	Limits map[string]Limit
	// Backoff between tries; zero means DefaultBackoff.
	Backoff Backoff
	// DefaultTimeout bounds a call whose context has no deadline (default 30s), so that no caller waits
	// forever on a cloud that keeps throttling.
	DefaultTimeout time.Duration
	// LastSeenTTL is how long what a read or an accepted write showed of an IP (free, or on an egressgw
	// interface) stands in for a new read before a Move (zero means DefaultLastSeenTTL, negative never):
	// the move of a failover is then one AssignPrivateIpAddresses call. Only egressgw moves addresses on
	// its own interfaces, and an IP seen free goes without AllowReassignment, so EC2 refuses it if taken.
	LastSeenTTL time.Duration
	Logger      *slog.Logger
}

// Provider implements providers.Provider and providers.Mover on EC2.
type Provider struct {
	ec2      *ec2.Client
	region   string
	opts     Options
	retry    retry.Policy
	limiters map[string]*rate.Limiter
	log      *slog.Logger

	resolving singleflight.Group
	mu        sync.Mutex
	nodes     map[string]attachment   // by instance ID: where its egress IPs go (until RemoveAttachment)
	subnets   map[string]subnetInfo   // by subnet ID (a subnet never changes)
	types     map[string]typeLimits   // by instance type
	zoneNets  map[string]string       // egress subnet chosen by tags, by VPC and zone
	seen      map[netip.Addr]lastSeen // where IPs were last seen (lastseen.go)
}

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Mover    = (*Provider)(nil)
	_ providers.Attacher = (*Provider)(nil)
)

// InterfaceMode says on which network interface of a gateway egress IPs live.
type InterfaceMode string

const (
	// InterfaceDedicated: a secondary ENI per gateway node, tagged node.k8s.amazonaws.com/no_manage=true so
	// that the VPC CNI neither hands its addresses to pods nor releases them. The default.
	InterfaceDedicated InterfaceMode = "dedicated"
	// InterfacePrimary: the node's primary ENI (device index 0). Only for clusters whose CNI does not manage
	// the ENIs' secondary addresses: the VPC CNI adopts every secondary address of the primary ENI.
	InterfacePrimary InterfaceMode = "primary"
)

// Validate reports every option that cannot work, naming it.
func (o Options) Validate() error {
	var errs []error
	switch o.EgressInterface {
	case "", InterfaceDedicated:
		if o.ClusterName == "" {
			errs = append(errs, errors.New("ClusterName (--aws-cluster-name) is required with the dedicated egress interface: it tags and finds the gateway ENIs"))
		}
	case InterfacePrimary:
		if len(o.EgressSubnets)+len(o.EgressSubnetTags)+len(o.SecurityGroups) > 0 {
			errs = append(errs, errors.New("EgressSubnets, EgressSubnetTags and SecurityGroups apply to the dedicated egress interface only, not to --aws-egress-interface=primary"))
		}
	default:
		errs = append(errs, fmt.Errorf("EgressInterface (--aws-egress-interface) %q: want %q or %q", o.EgressInterface, InterfaceDedicated, InterfacePrimary))
	}
	for zone, id := range o.EgressSubnets {
		if !strings.HasPrefix(id, "subnet-") {
			errs = append(errs, fmt.Errorf("EgressSubnets[%s] = %q is not a subnet ID (subnet-...)", zone, id))
		}
	}
	return errors.Join(errs...)
}

func (p *Provider) dedicated() bool { return p.opts.EgressInterface != InterfacePrimary }

// New builds a provider on the SDK's default configuration chain (region, credentials, endpoint). Extra
// load options (config.WithRegion, ...) are applied after the defaults.
func New(ctx context.Context, opts Options, loadOpts ...func(*config.LoadOptions) error) (*Provider, error) {
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return NewFromConfig(cfg, opts)
}

// NewFromConfig builds a provider from an SDK configuration. clientOpts may set, for example,
// BaseEndpoint; the retryer and HTTP client are the provider's own (see call and HTTPClient).
func NewFromConfig(cfg sdkaws.Config, opts Options, clientOpts ...func(*ec2.Options)) (*Provider, error) {
	if cfg.Region == "" {
		return nil, errors.New("no AWS region configured: set AWS_REGION (or region in the shared config)")
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("AWS provider options: %w", err)
	}
	inner := cfg.HTTPClient
	if inner == nil {
		inner = awshttp.NewBuildableClient()
	}
	clientOpts = append(clientOpts, func(o *ec2.Options) {
		o.Retryer = sdkaws.NopRetryer{}
		o.HTTPClient = HTTPClient(inner)
	})
	return newProvider(ec2.NewFromConfig(cfg, clientOpts...), cfg.Region, opts), nil
}

func newProvider(client *ec2.Client, region string, opts Options) *Provider {
	if opts.Limits == nil {
		opts.Limits = DefaultLimits
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("provider", "aws")
	return &Provider{
		ec2: client, region: region, opts: opts, limiters: retry.Limiters(opts.Limits), log: log,
		retry: retry.Policy{Backoff: opts.Backoff, Log: log, LogMessage: "retrying EC2 call"}, nodes: map[string]attachment{}, subnets: map[string]subnetInfo{},
		types: map[string]typeLimits{}, zoneNets: map[string]string{}, seen: map[netip.Addr]lastSeen{},
	}
}

// onNode runs fn with node's attachment, under a deadline.
func (p *Provider) onNode(ctx context.Context, node providers.Node, fn func(context.Context, attachment) error) error {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	at, err := p.attachment(ctx, node)
	if err != nil {
		return err
	}
	return fn(ctx, at)
}

// bound gives ctx a deadline (Options.DefaultTimeout) when it has none.
func (p *Provider) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return deadline.Ensure(ctx, p.opts.DefaultTimeout)
}
