package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	authhttp "cloud.google.com/go/auth/httptransport"
	compute "cloud.google.com/go/compute/apiv1"
	"github.com/aws/aws-sdk-go-v2/config"
	"google.golang.org/api/option"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/aws"
	"github.com/egressgw/egressgw/providers/gcp"
)

// cloudOptions are the flags that choose and reach the cloud.
type cloudOptions struct {
	cloud          string
	caBundle       string
	awsVPCID       string
	aws            aws.Options
	awsSubnets     keyValues // zone=subnet-id
	awsSubnetTags  keyValues // key=value
	awsGroups      string
	gcpProject     string
	gcpNetwork     string
	gcpEndpoint    string
	gcpAccessToken string
}

func (c *cloudOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.cloud, "cloud", c.cloud, "cloud provider: aws or gcp")
	fs.StringVar(&c.cloud, "provider", c.cloud, "the same as --cloud")
	fs.StringVar(&c.caBundle, "ca-bundle", c.caBundle, "PEM file of CA certificates the cloud API endpoint is trusted with, besides the system's (a proxy or private endpoint)")
	fs.StringVar(&c.awsVPCID, "aws-vpc-id", c.awsVPCID, "limit the search for egress IPs to this VPC (recommended when the account has several)")
	c.addAWSFlags(fs)
	fs.StringVar(&c.gcpProject, "gcp-project", c.gcpProject, "GCP project of the gateway nodes, where egress IPs are searched (required with --cloud=gcp)")
	fs.StringVar(&c.gcpNetwork, "gcp-network", c.gcpNetwork, "limit the search for egress IPs to this VPC network (recommended when the project has several)")
	fs.StringVar(&c.gcpEndpoint, "gcp-endpoint", c.gcpEndpoint, "Compute Engine API endpoint, e.g. a Private Service Connect endpoint https://compute-NAME.p.googleapis.com (default: the public one)")
	fs.StringVar(&c.gcpAccessToken, "gcp-access-token-file", c.gcpAccessToken, "file holding an OAuth access token, read for every token refresh (default: Application Default Credentials, e.g. GKE Workload Identity)")
}

func (c *cloudOptions) validate() error {
	var errs []error
	switch c.cloud {
	case "aws":
		if c.gcpProject != "" || c.gcpEndpoint != "" || c.gcpNetwork != "" || c.gcpAccessToken != "" {
			errs = append(errs, errors.New("--gcp-* flags need --cloud=gcp"))
		}
		errs = append(errs, c.awsOptions(nil).Validate())
	case "gcp":
		if c.gcpProject == "" {
			errs = append(errs, errors.New("--cloud=gcp needs --gcp-project (the project of the gateway nodes)"))
		}
		if c.awsVPCID != "" || c.aws.ClusterName != "" || len(c.awsSubnets)+len(c.awsSubnetTags) > 0 || c.awsGroups != "" {
			errs = append(errs, errors.New("--aws-* flags need --cloud=aws"))
		}
		if c.gcpEndpoint != "" {
			if u, err := url.Parse(c.gcpEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				errs = append(errs, fmt.Errorf("--gcp-endpoint=%q: want a URL like https://compute-NAME.p.googleapis.com", c.gcpEndpoint))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("--cloud=%q: want aws or gcp", c.cloud))
	}
	return errors.Join(errs...)
}

// provider builds the chosen cloud's provider.
func (c *cloudOptions) provider(ctx context.Context, log *slog.Logger) (providers.Provider, error) {
	pool, err := c.rootCAs()
	if err != nil {
		return nil, err
	}
	if c.cloud == "gcp" {
		return c.gcpProvider(ctx, log, pool)
	}
	var loadOpts []func(*config.LoadOptions) error
	if c.caBundle != "" {
		loadOpts = append(loadOpts, config.WithHTTPClient(&http.Client{Transport: transportWith(pool)}))
	}
	p, err := aws.New(ctx, c.awsOptions(log), loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("AWS provider: %w", err)
	}
	return p, nil
}

func (c *cloudOptions) gcpProvider(ctx context.Context, log *slog.Logger, pool *x509.CertPool) (providers.Provider, error) {
	var clientOpts []option.ClientOption
	if c.gcpEndpoint != "" {
		clientOpts = append(clientOpts, option.WithEndpoint(strings.TrimSuffix(c.gcpEndpoint, "/")))
	}
	if pool != nil || c.gcpAccessToken != "" {
		hc, err := c.gcpHTTPClient(pool)
		if err != nil {
			return nil, err
		}
		clientOpts = append(clientOpts, option.WithHTTPClient(hc))
	}
	p, err := gcp.New(ctx, gcp.Options{Project: c.gcpProject, Network: c.gcpNetwork, Logger: log}, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("GCP provider: %w", err)
	}
	return p, nil
}

// gcpHTTPClient is an authenticated client on a transport that trusts pool: the SDK builds its own
// transport only when it is given no HTTP client, so a CA bundle needs the credentials wired here.
func (c *cloudOptions) gcpHTTPClient(pool *x509.CertPool) (*http.Client, error) {
	var creds *auth.Credentials
	if c.gcpAccessToken != "" {
		creds = auth.NewCredentials(&auth.CredentialsOptions{TokenProvider: tokenFile(c.gcpAccessToken)})
	} else {
		var err error
		if creds, err = credentials.DetectDefault(&credentials.DetectOptions{Scopes: compute.DefaultAuthScopes()}); err != nil {
			return nil, fmt.Errorf("GCP credentials (Application Default Credentials): %w", err)
		}
	}
	hc, err := authhttp.NewClient(&authhttp.Options{BaseRoundTripper: transportWith(pool), Credentials: creds})
	if err != nil {
		return nil, fmt.Errorf("GCP HTTP client: %w", err)
	}
	return hc, nil
}

// tokenFile is a token provider that reads an OAuth access token from a file (one a sidecar keeps fresh).
type tokenFile string

func (f tokenFile) Token(context.Context) (*auth.Token, error) {
	data, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("--gcp-access-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return nil, fmt.Errorf("--gcp-access-token-file %s is empty", string(f))
	}
	return &auth.Token{Value: tok, Type: "Bearer"}, nil
}

// rootCAs is the system pool plus --ca-bundle, or nil without the flag.
func (c *cloudOptions) rootCAs() (*x509.CertPool, error) {
	if c.caBundle == "" {
		return nil, nil
	}
	data, err := os.ReadFile(c.caBundle)
	if err != nil {
		return nil, fmt.Errorf("--ca-bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--ca-bundle %s: no PEM certificate in it", c.caBundle)
	}
	return pool, nil
}

// transportWith is the default transport, trusting pool when it is not nil.
func transportWith(pool *x509.CertPool) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if pool != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return t
}
