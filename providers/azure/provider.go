// Package azure is the egressgw provider for Microsoft Azure: an egress IP is an extra ip configuration
// (named egressgw-<ip with dashes>) with a static private IP, and optionally a public IP address, on the
// primary NIC of a gateway VM — a standalone VM, a VM of an AKS VirtualMachines node pool, or an instance
// of a Flexible scale set. Instances of Uniform scale sets (classic AKS node pools) are refused: their
// NICs belong to the scale set model, which cannot give one instance a chosen private IP.
//
// A move is Release on the old NIC, then Assign on the new one (two long-running NIC writes): Azure
// lets a private IP live on one ip configuration of a virtual network at a time, so there is no Mover.
// Every NIC write is a read-modify-write with the NIC's ETag in If-Match; concurrent changes to one NIC
// are coalesced into one write. Long-running operations are polled at a fixed interval (1 s) instead of
// the Retry-After of 10 s that the Network resource provider sends, and throttling (429 with
// Retry-After), another operation on the NIC (409 AnotherOperationInProgress, 429
// RetryableErrorDueToAnotherOperation), ETag conflicts (412) and server errors are retried until the
// caller's deadline.
//
// Credentials come from azidentity's default chain (environment, Workload Identity, managed identity,
// Azure CLI) unless the caller passes its own; the cloud (public, China, US Government, Azure Stack Hub)
// and the HTTP transport (a CA bundle) are the SDK's own arm.ClientOptions.
package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/coalesce"
	"github.com/egressgw/egressgw/providers/internal/deadline"
	"github.com/egressgw/egressgw/providers/internal/retry"
)

// MaxIPConfigsPerNIC is Azure's limit of ip configurations on one network interface, the primary
// included: the capacity of every gateway NIC.
const MaxIPConfigsPerNIC = 256

// Options tune a Provider. The zero value is ready to use.
type Options struct {
	// ResourceGroups are where Locate looks for NICs holding egress IPs (the gateways' resource groups,
	// e.g. AKS's node resource group). Empty: the whole subscription.
	ResourceGroups []string
	// PollInterval is the wait between two polls of a long-running operation; default 1 s.
	PollInterval time.Duration
	// Backoff between tries of a refused call without Retry-After; zero means DefaultBackoff.
	Backoff Backoff
	// Limits are client-side rate limits; zero means DefaultLimits.
	Limits Limits
	// DefaultTimeout bounds a call whose context has no deadline (default 2 min: a move is two NIC writes
	// of typically 2-10 s each, longer on a bad day).
	DefaultTimeout time.Duration
	// AllowSharedNIC accepts gateway NICs that carry secondary ip configurations egressgw did not create.
	// By default they are refused: Azure CNI in node-subnet mode pre-allocates pod IPs that way, and its
	// IPAM takes every secondary address of the NIC for pods, an egress IP included.
	AllowSharedNIC bool
	Logger         *slog.Logger
}

// Provider implements providers.Provider on Azure Resource Manager.
type Provider struct {
	sub      string
	vms      *armcompute.VirtualMachinesClient
	vmssVMs  *armcompute.VirtualMachineScaleSetVMsClient
	nics     *armnetwork.InterfacesClient
	subnets  *armnetwork.SubnetsClient
	pips     *armnetwork.PublicIPAddressesClient
	opts     Options
	reads    *rate.Limiter
	writes   *rate.Limiter
	retry    retry.Policy
	log      *slog.Logger
	writers  coalesce.Queue[edit] // by canonical NIC ID: edits waiting for the NIC's next write
	resolves singleflight.Group

	mu       sync.Mutex
	nodes    map[string]attachment // by canonical VM ID
	prefixes map[string]subnetInfo // by canonical subnet ID
	pipAddrs map[string]string     // public IP address ID -> address
}

var _ providers.Provider = (*Provider)(nil)

// New builds a provider for one subscription with the caller's credential and the SDK's client options
// (cloud, transport, telemetry). The SDK's own retries are turned off: the provider retries itself,
// within the caller's deadline (see call).
func New(subscriptionID string, cred azcore.TokenCredential, clientOpts *arm.ClientOptions, opts Options) (*Provider, error) {
	if subscriptionID == "" {
		return nil, errors.New("no Azure subscription ID: set --azure-subscription (or AZURE_SUBSCRIPTION_ID)")
	}
	if cred == nil {
		return nil, errors.New("no Azure credential")
	}
	co := clientOpts.Clone()
	if co == nil {
		co = &arm.ClientOptions{}
	}
	co.Retry.MaxRetries = -1
	f, err := armcompute.NewClientFactory(subscriptionID, cred, co)
	if err != nil {
		return nil, fmt.Errorf("Azure compute clients: %w", err)
	}
	nf, err := armnetwork.NewClientFactory(subscriptionID, cred, co)
	if err != nil {
		return nil, fmt.Errorf("Azure network clients: %w", err)
	}
	p := &Provider{sub: subscriptionID, vms: f.NewVirtualMachinesClient(), vmssVMs: f.NewVirtualMachineScaleSetVMsClient(),
		nics: nf.NewInterfacesClient(), subnets: nf.NewSubnetsClient(), pips: nf.NewPublicIPAddressesClient(),
		nodes: map[string]attachment{}, prefixes: map[string]subnetInfo{}, pipAddrs: map[string]string{}}
	p.setOptions(opts)
	return p, nil
}

// NewWithDefaultCredential builds a provider whose credential is azidentity's default chain, which
// covers Workload Identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE set by the
// webhook) without code. The credential uses the same cloud and transport as the clients.
func NewWithDefaultCredential(subscriptionID string, clientOpts *arm.ClientOptions, opts Options) (*Provider, error) {
	var credOpts azidentity.DefaultAzureCredentialOptions
	if clientOpts != nil {
		credOpts.ClientOptions = clientOpts.ClientOptions
		// Instance discovery asks the public cloud's login service about the authority; a custom cloud
		// (Azure Stack Hub, AD FS) has its own authority that it does not know.
		credOpts.DisableInstanceDiscovery = clientOpts.Cloud.ActiveDirectoryAuthorityHost != "" && !knownAuthority(clientOpts.Cloud.ActiveDirectoryAuthorityHost)
	}
	cred, err := azidentity.NewDefaultAzureCredential(&credOpts)
	if err != nil {
		return nil, fmt.Errorf("Azure credential: %w", err)
	}
	return New(subscriptionID, cred, clientOpts, opts)
}

func knownAuthority(host string) bool {
	for _, c := range []cloud.Configuration{cloud.AzurePublic, cloud.AzureChina, cloud.AzureGovernment} {
		if strings.EqualFold(strings.TrimSuffix(host, "/"), strings.TrimSuffix(c.ActiveDirectoryAuthorityHost, "/")) {
			return true
		}
	}
	return false
}

func (p *Provider) setOptions(opts Options) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	if opts.Limits == (Limits{}) {
		opts.Limits = DefaultLimits
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = 2 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p.opts, p.log = opts, opts.Logger.With("provider", "azure")
	p.reads, p.writes = opts.Limits.Reads.Limiter(), opts.Limits.Writes.Limiter()
	p.retry = retry.Policy{Backoff: opts.Backoff, RetryAfter: retryAfter, Log: p.log, LogMessage: "retrying ARM request"}
	p.writers.Fallback = opts.DefaultTimeout
}

// bound gives ctx a deadline (Options.DefaultTimeout) when it has none.
func (p *Provider) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return deadline.Ensure(ctx, p.opts.DefaultTimeout)
}

// canonical is the form in which the provider compares and reports ARM IDs: ARM treats them without case
// and answers in whatever case the resource was created with.
func canonical(id string) string { return strings.ToLower(id) }
