// Package gcp is the egressgw provider for Compute Engine: egress IPs are alias IP ranges of one address
// (/32) on a gateway node's nic0, written with instances.updateNetworkInterface (with the NIC's current
// fingerprint and a requestId) and confirmed by polling the zone operation at a short fixed interval.
// Other alias ranges of nic0 (GKE's pod range) are kept as they are, and concurrent writes to one node
// share one read-modify-write (batch.go). Compute Engine has no one-call move,
// so the provider is no providers.Mover: a move is Release on the old node, then Assign on the new one.
//
// It uses cloud.google.com/go/compute/apiv1 over REST. The constructor takes the SDK's own client
// options: credentials come from Application Default Credentials (GKE Workload Identity included)
// unless option.WithCredentials* says otherwise, and option.WithEndpoint points it at a Private Service
// Connect endpoint or a simulator.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	"google.golang.org/api/option"
	"google.golang.org/api/option/internaloption"
	htransport "google.golang.org/api/transport/http"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/coalesce"
	"github.com/egressgw/egressgw/providers/internal/deadline"
	"github.com/egressgw/egressgw/providers/internal/retry"
)

// DefaultPollInterval is the wait between two reads of a running zone operation: short against the 2-5s a
// NIC update takes, and a few reads per failover against the operations quota.
const DefaultPollInterval = 500 * time.Millisecond

// Options tune a Provider. Project is required; the rest has defaults.
type Options struct {
	// Project is the project whose instances Locate searches (the cluster's project, or the host project
	// of a Shared VPC when the gateways live there). Node operations use the project of each providerID.
	Project string
	// Network, when set, limits Locate to NICs of this VPC network (its name); without it an IP found in
	// two networks is reported alone as in use (providers.Location.InUse).
	Network string
	// PollInterval is the fixed wait between two reads of a running zone operation (default 500ms; the
	// SDK's own Wait backs off to a minute).
	PollInterval time.Duration
	// OperationTimeout bounds the wait for one zone operation (default 60s), so that a write to a hung
	// VM, or one being deleted, ends with a report instead of blocking a failover.
	OperationTimeout time.Duration
	// DefaultTimeout bounds a call whose context has no deadline (default 2m).
	DefaultTimeout time.Duration
	// BatchWindow is how long the first write to an idle node waits for others to share its operation
	// (default 20ms, against the 2-5s of an operation).
	BatchWindow time.Duration
	// AliasRangesPerInterface overrides the cloud's limit (AliasRangesPerInterface) when not zero.
	AliasRangesPerInterface int
	// Limits are client-side rate limits per request group (read, write, operations); nil means
	// DefaultLimits. Groups missing from a non-nil map are not limited.
	Limits map[string]Limit
	// Backoff between tries; zero means DefaultBackoff.
	Backoff Backoff
	Logger  *slog.Logger
}

// Provider implements providers.Provider on Compute Engine.
type Provider struct {
	opts       Options
	instances  *compute.InstancesClient
	subnets    *compute.SubnetworksClient
	operations *compute.ZoneOperationsClient
	limiters   map[string]*rate.Limiter
	retry      retry.Policy
	log        *slog.Logger

	resolving singleflight.Group
	mu        sync.Mutex
	nodes     map[string]attachment // by instanceRef.key: where its egress IPs go
	subnetsBy map[string]subnet     // by subnetwork URL
	queues    coalesce.Queue[edit]  // by instanceRef.key: writes waiting for the node's nic0
}

var _ providers.Provider = (*Provider)(nil)

// New builds a provider. clientOpts are the SDK's client options (option.WithEndpoint,
// option.WithHTTPClient, option.WithCredentialsFile, option.WithTokenSource, ...), applied after the
// compute client's defaults.
func New(ctx context.Context, opts Options, clientOpts ...option.ClientOption) (*Provider, error) {
	if opts.Project == "" {
		return nil, errors.New("GCP provider: the project is required (the project of the gateway nodes, --gcp-project)")
	}
	hc, err := httpClient(ctx, clientOpts)
	if err != nil {
		return nil, fmt.Errorf("GCP provider: HTTP client: %w", err)
	}
	clientOpts = append(clientOpts, option.WithHTTPClient(hc))
	p := newProvider(opts)
	if p.instances, err = compute.NewInstancesRESTClient(ctx, clientOpts...); err != nil {
		return nil, fmt.Errorf("GCP provider: instances client: %w", err)
	}
	if p.subnets, err = compute.NewSubnetworksRESTClient(ctx, clientOpts...); err != nil {
		return nil, fmt.Errorf("GCP provider: subnetworks client: %w", err)
	}
	if p.operations, err = compute.NewZoneOperationsRESTClient(ctx, clientOpts...); err != nil {
		return nil, fmt.Errorf("GCP provider: zone operations client: %w", err)
	}
	return p, nil
}

// httpClient is the authenticated client the SDK would build from clientOpts (or the one they name),
// with the transport that sends explicitly empty fields (see withEmptyFields).
func httpClient(ctx context.Context, clientOpts []option.ClientOption) (*http.Client, error) {
	defaults := []option.ClientOption{
		internaloption.WithDefaultEndpoint("https://compute.googleapis.com"),
		internaloption.WithDefaultEndpointTemplate("https://compute.UNIVERSE_DOMAIN"),
		internaloption.WithDefaultMTLSEndpoint("https://compute.mtls.googleapis.com"),
		internaloption.WithDefaultUniverseDomain("googleapis.com"),
		internaloption.WithDefaultAudience("https://compute.googleapis.com/"),
		internaloption.WithDefaultScopes(compute.DefaultAuthScopes()...),
		internaloption.EnableNewAuthLibrary(),
	}
	hc, _, err := htransport.NewClient(ctx, append(defaults, clientOpts...)...)
	if err != nil {
		return nil, err
	}
	inner := hc.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	wrapped := *hc
	wrapped.Transport = emptyFields{inner: inner}
	return &wrapped, nil
}

func newProvider(opts Options) *Provider {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.OperationTimeout <= 0 {
		opts.OperationTimeout = time.Minute
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = 2 * time.Minute
	}
	if opts.BatchWindow <= 0 {
		opts.BatchWindow = 20 * time.Millisecond
	}
	if opts.AliasRangesPerInterface <= 0 {
		opts.AliasRangesPerInterface = AliasRangesPerInterface
	}
	if opts.Limits == nil {
		opts.Limits = DefaultLimits
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("provider", "gcp")
	return &Provider{opts: opts, limiters: retry.Limiters(opts.Limits), log: log,
		retry: retry.Policy{Backoff: opts.Backoff, Log: log, LogMessage: "retrying compute call"},
		nodes: map[string]attachment{}, subnetsBy: map[string]subnet{},
		queues: coalesce.Queue[edit]{Window: opts.BatchWindow, Fallback: opts.DefaultTimeout}}
}

// Close releases the SDK clients.
func (p *Provider) Close() error {
	return errors.Join(p.instances.Close(), p.subnets.Close(), p.operations.Close())
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
