package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/azuresim"
)

func parse(t *testing.T, args ...string) *options {
	t.Helper()
	o := newOptions()
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestAzureFlags(t *testing.T) {
	t.Setenv("AZURE_SUBSCRIPTION_ID", "")
	cases := []struct {
		args []string
		want string // part of the error; "" for valid
	}{
		{[]string{"--cloud=azure", "--azure-subscription=s"}, ""},
		{[]string{"--cloud=azure", "--azure-subscription=s", "--azure-cloud=china"}, ""},
		{[]string{"--cloud=azure", "--azure-subscription=s", "--azure-cloud=custom", "--azure-arm-endpoint=https://management.local.azurestack.external",
			"--azure-arm-audience=https://management.adfs.azurestack.local/x", "--azure-authority-host=https://adfs.local.azurestack.external/adfs/"}, ""},
		{[]string{"--cloud=azure"}, "--azure-subscription"},
		{[]string{"--cloud=azure", "--azure-subscription=s", "--azure-cloud=mars"}, `--azure-cloud="mars"`},
		{[]string{"--cloud=azure", "--azure-subscription=s", "--azure-cloud=custom", "--azure-arm-endpoint=http://x", "--azure-arm-audience=a", "--azure-authority-host=https://l/"}, "--azure-arm-endpoint as an https:// URL"},
		{[]string{"--cloud=azure", "--azure-subscription=s", "--azure-arm-endpoint=https://x"}, "need --azure-cloud=custom"},
		{[]string{"--cloud=aws", "--azure-resource-group=rg"}, "--azure-* flags need --cloud=azure"},
		{[]string{"--cloud=gce"}, "want aws, gcp or azure"},
		{[]string{"--cloud=azure", "--azure-subscription=s", "--gcp-project=p"}, "--gcp-* flags need"},
		{[]string{"--cloud=azure", "--azure-subscription=s", "--aws-cluster-name=c"}, "--aws-* and --gcp-* flags need"},
		{[]string{"--cloud=gcp", "--gcp-project=p", "--azure-cloud=china"}, "--azure-* flags need --cloud=azure"},
	}
	for _, c := range cases {
		err := parse(t, c.args...).validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: want %q, got %v", c.args, c.want, err)
		}
	}
}

// TestAzureProviderThroughWorkloadIdentity runs the manager's Azure wiring as a pod with Azure Workload
// Identity would: the webhook's environment, azidentity's default chain, a custom cloud whose ARM and
// Entra endpoints are the simulator, and its CA from a bundle file.
func TestAzureProviderThroughWorkloadIdentity(t *testing.T) {
	p, sim := workloadIdentityProvider(t, "projected-service-account-token")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := p.DescribeNode(ctx, gw0)
	must(t, err)
	if info.Subnet.String() != "10.224.0.0/16" || sim.Callers()["egressgw-manager"] == 0 || sim.Tokens()["72f988bf-0000-4000-8000-000000000001/egressgw-manager"] == 0 {
		t.Fatalf("want the node described as the workload identity, got %+v, callers %v, tokens %v", info, sim.Callers(), sim.Tokens())
	}
}

// TestAzureRefusedCredentialIsPermanent: a federated token Entra refuses (no federated credential for
// its subject) is reported at once as permanent, not retried until the deadline.
func TestAzureRefusedCredentialIsPermanent(t *testing.T) {
	p, sim := workloadIdentityProvider(t, azuresim.RefusedAssertion)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	_, err := p.DescribeNode(ctx, gw0)
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "AADSTS700213") {
		t.Fatalf("want ErrPermanent with Entra's reason, got %v", err)
	}
	if time.Since(began) > 10*time.Second || len(sim.Callers()) != 0 {
		t.Fatalf("a refused credential was retried (%s) or reached ARM: %v", time.Since(began), sim.Callers())
	}
}

var gw0 = providers.Node{Name: "gw0", ProviderID: "azure:///subscriptions/00000000-0000-4000-8000-0000000000aa/resourceGroups/MC_egressgw_cluster_westeurope/providers/Microsoft.Compute/virtualMachines/aks-gw-12345678-vm0"}

// workloadIdentityProvider builds the manager's provider from flags, as a pod with the Workload Identity
// webhook's environment would, with the federated token file holding token.
func workloadIdentityProvider(t *testing.T, token string) (providers.Provider, *azuresim.Server) {
	m, err := azuresim.LoadModel("../../test/azuresim/testdata/aks.yaml")
	must(t, err)
	sim, err := azuresim.New(m, azuresim.Options{Roles: map[string][]string{"egressgw-manager": exampleRole(t)}})
	must(t, err)
	ca, err := azuresim.NewCA()
	must(t, err)
	srv, err := ca.Serve(sim)
	must(t, err)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	must(t, ca.WritePEM(filepath.Join(dir, "ca.pem")))
	must(t, os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600))
	for k, v := range map[string]string{"AZURE_CLIENT_ID": "egressgw-manager", "AZURE_TENANT_ID": "72f988bf-0000-4000-8000-000000000001",
		"AZURE_FEDERATED_TOKEN_FILE": filepath.Join(dir, "token"), "AZURE_CLIENT_SECRET": "", "AZURE_CLIENT_CERTIFICATE_PATH": "", "AZURE_USERNAME": ""} {
		t.Setenv(k, v)
	}
	o := parse(t, "--cloud=azure", "--azure-subscription=00000000-0000-4000-8000-0000000000aa", "--azure-cloud=custom",
		"--azure-arm-endpoint="+srv.URL, "--azure-arm-audience=https://management.azure.com", "--azure-authority-host="+srv.URL+"/",
		"--ca-bundle="+filepath.Join(dir, "ca.pem"), "--azure-resource-group=MC_egressgw_cluster_westeurope")
	must(t, o.validate())
	p, err := o.cloudOptions.provider(context.Background(), slog.New(slog.DiscardHandler))
	must(t, err)
	return p, sim
}

func exampleRole(t *testing.T) []string {
	data, err := os.ReadFile("../../examples/azure/role-definition.json")
	must(t, err)
	var r struct{ Actions []string }
	must(t, json.Unmarshal(data, &r))
	return r.Actions
}
