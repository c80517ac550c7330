package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/azure"
)

// azureOptions are the flags of --cloud=azure; the zero value is their defaults. Credentials are
// azidentity's default chain: Workload Identity (the webhook's AZURE_CLIENT_ID, AZURE_TENANT_ID,
// AZURE_FEDERATED_TOKEN_FILE), environment, managed identity. --ca-bundle applies as for every cloud.
type azureOptions struct {
	subscription   string
	resourceGroups string
	cloud          string
	armEndpoint    string
	armAudience    string
	authorityHost  string
	allowSharedNIC bool
}

// subscriptionID is --azure-subscription, or AZURE_SUBSCRIPTION_ID.
func (a *azureOptions) subscriptionID() string {
	if a.subscription != "" {
		return a.subscription
	}
	return os.Getenv("AZURE_SUBSCRIPTION_ID")
}

func (a *azureOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.subscription, "azure-subscription", a.subscription, "Azure subscription of the gateway VMs (default: $AZURE_SUBSCRIPTION_ID)")
	fs.StringVar(&a.resourceGroups, "azure-resource-group", a.resourceGroups, "comma-separated resource groups where the gateways' NICs live, searched for egress IPs (AKS: the node resource group, MC_...); default: the whole subscription")
	fs.StringVar(&a.cloud, "azure-cloud", "public", "Azure cloud: public, china, usgov, or custom (Azure Stack Hub: set --azure-arm-endpoint, --azure-arm-audience and --azure-authority-host)")
	fs.StringVar(&a.armEndpoint, "azure-arm-endpoint", a.armEndpoint, "Resource Manager endpoint of a custom cloud, e.g. https://management.local.azurestack.external")
	fs.StringVar(&a.armAudience, "azure-arm-audience", a.armAudience, "token audience of a custom cloud's Resource Manager")
	fs.StringVar(&a.authorityHost, "azure-authority-host", a.authorityHost, "Microsoft Entra (or AD FS) authority of a custom cloud, e.g. https://login.microsoftonline.com/")
	fs.BoolVar(&a.allowSharedNIC, "azure-allow-shared-nic", a.allowSharedNIC, "accept gateway NICs with secondary ip configurations egressgw did not create (refused by default: Azure CNI node-subnet mode hands them to pods)")
}

// validate checks the flags of --cloud=azure; any --azure-* flag with another cloud is a mistake.
func (a *azureOptions) validate(selected bool) error {
	if !selected {
		if *a != (azureOptions{cloud: a.cloud}) || a.cloud != "" && a.cloud != "public" {
			return errors.New("--azure-* flags need --cloud=azure")
		}
		return nil
	}
	var errs []error
	if a.subscriptionID() == "" {
		errs = append(errs, errors.New("--cloud=azure needs --azure-subscription (or AZURE_SUBSCRIPTION_ID)"))
	}
	if _, err := a.cloudConfig(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cloudConfig is the SDK's description of the chosen cloud.
func (a *azureOptions) cloudConfig() (cloud.Configuration, error) {
	custom := a.armEndpoint != "" || a.armAudience != "" || a.authorityHost != ""
	switch a.cloud {
	case "", "public", "china", "usgov":
		if custom {
			return cloud.Configuration{}, fmt.Errorf("--azure-arm-endpoint, --azure-arm-audience and --azure-authority-host need --azure-cloud=custom")
		}
		return map[string]cloud.Configuration{"": cloud.AzurePublic, "public": cloud.AzurePublic, "china": cloud.AzureChina, "usgov": cloud.AzureGovernment}[a.cloud], nil
	case "custom":
		for name, v := range map[string]string{"--azure-arm-endpoint": a.armEndpoint, "--azure-authority-host": a.authorityHost} {
			if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" {
				return cloud.Configuration{}, fmt.Errorf("--azure-cloud=custom needs %s as an https:// URL, got %q", name, v)
			}
		}
		if a.armAudience == "" {
			return cloud.Configuration{}, errors.New("--azure-cloud=custom needs --azure-arm-audience (the Resource Manager's token audience)")
		}
		return cloud.Configuration{ActiveDirectoryAuthorityHost: a.authorityHost, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: strings.TrimSuffix(a.armEndpoint, "/"), Audience: a.armAudience}}}, nil
	}
	return cloud.Configuration{}, fmt.Errorf("--azure-cloud=%q: want public, china, usgov or custom", a.cloud)
}

// clientOptions are the SDK's options for the chosen cloud, trusting pool (--ca-bundle) when it is not
// nil; the credential uses them too.
func (a *azureOptions) clientOptions(pool *x509.CertPool) (*arm.ClientOptions, error) {
	cfg, err := a.cloudConfig()
	if err != nil {
		return nil, err
	}
	opts := &arm.ClientOptions{ClientOptions: policy.ClientOptions{Cloud: cfg}}
	opts.Telemetry.ApplicationID = "egressgw"
	if pool != nil {
		opts.Transport = &http.Client{Transport: transportWith(pool)}
	}
	return opts, nil
}

func (a *azureOptions) provider(log *slog.Logger, pool *x509.CertPool) (providers.Provider, error) {
	co, err := a.clientOptions(pool)
	if err != nil {
		return nil, err
	}
	var groups []string
	for _, g := range strings.Split(a.resourceGroups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			groups = append(groups, g)
		}
	}
	p, err := azure.NewWithDefaultCredential(a.subscriptionID(), co, azure.Options{ResourceGroups: groups, AllowSharedNIC: a.allowSharedNIC, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("Azure provider: %w", err)
	}
	return p, nil
}
