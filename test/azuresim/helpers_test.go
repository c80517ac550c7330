package azuresim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
)

const (
	testSub = "00000000-0000-4000-8000-0000000000aa"
	testRG  = "MC_egressgw_cluster_westeurope"
	nodesID = "/subscriptions/" + testSub + "/resourceGroups/" + testRG + "/providers/Microsoft.Network/virtualNetworks/aks-vnet/subnets/aks-nodes"
	pip1ID  = "/subscriptions/" + testSub + "/resourceGroups/" + testRG + "/providers/Microsoft.Network/publicIPAddresses/egress-pip-1"
	nodePIP = "/subscriptions/" + testSub + "/resourceGroups/" + testRG + "/providers/Microsoft.Network/publicIPAddresses/node-pip"
	gw0NIC  = "aks-gw-12345678-vm0-nic"
	gw1NIC  = "aks-gw-12345678-vm1-nic"
)

type env struct {
	lastLoc string
	sim     *Server
	url     string
	ca      *CA
	opts    *arm.ClientOptions
	nics    *armnetwork.InterfacesClient
	vms     *armcompute.VirtualMachinesClient
}

// start serves the model file over HTTPS and builds real SDK clients for it, as the caller "tester".
func start(t *testing.T, opts Options) *env {
	t.Helper()
	m, err := LoadModel("testdata/aks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Serve(sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := &env{sim: sim, url: srv.URL, ca: ca}
	e.opts = &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud:           cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: srv.URL, Audience: "https://management.azure.com"}}},
		Transport:       &http.Client{Transport: ca.Transport()},
		Retry:           policy.RetryOptions{MaxRetries: -1},
		PerCallPolicies: []policy.Policy{recordLocation{e}},
	}}
	cred := Credential{Principal: "tester"}
	if e.nics, err = armnetwork.NewInterfacesClient(testSub, cred, e.opts); err != nil {
		t.Fatal(err)
	}
	if e.vms, err = armcompute.NewVirtualMachinesClient(testSub, cred, e.opts); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) getNIC(t *testing.T, name string) armnetwork.Interface {
	t.Helper()
	resp, err := e.nics.Get(context.Background(), testRG, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Interface
}

// putNIC writes nic with If-Match etag and waits for the operation, polling every millisecond.
func (e *env) putNIC(ctx context.Context, nic armnetwork.Interface, etag string) error {
	if etag != "" {
		ctx = runtime.WithHTTPHeader(ctx, http.Header{"If-Match": []string{etag}})
	}
	poller, err := e.nics.BeginCreateOrUpdate(ctx, testRG, *nic.Name, nic, nil)
	if err != nil {
		return err
	}
	for !poller.Done() {
		if _, err := poller.Poll(ctx); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	_, err = poller.Result(ctx)
	return err
}

// withSecondary returns nic with one more static ip configuration.
func withSecondary(nic armnetwork.Interface, name, ip, pip string) armnetwork.Interface {
	cfg := &armnetwork.InterfaceIPConfiguration{Name: to.Ptr(name), Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
		Primary: to.Ptr(false), PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic), PrivateIPAddress: to.Ptr(ip),
		Subnet: &armnetwork.Subnet{ID: to.Ptr(nodesID)}}}
	if pip != "" {
		cfg.Properties.PublicIPAddress = &armnetwork.PublicIPAddress{ID: to.Ptr(pip)}
	}
	nic.Properties.IPConfigurations = append(nic.Properties.IPConfigurations, cfg)
	return nic
}

// lastLocation is the Location header of the last NIC write's answer.
func (e *env) lastLocation(t *testing.T) string {
	t.Helper()
	if e.lastLoc == "" {
		t.Fatal("no NIC write answered yet")
	}
	return e.lastLoc
}

// rawGet GETs url as the caller "tester" and returns the status.
func (e *env) rawGet(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer tester")
	resp, err := (&http.Client{Transport: e.ca.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// recordLocation is a pipeline policy that keeps the Location header of NIC write answers.
type recordLocation struct{ e *env }

func (p recordLocation) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err == nil && req.Raw().Method == http.MethodPut && resp.Header.Get("Location") != "" {
		p.e.lastLoc = resp.Header.Get("Location")
	}
	return resp, err
}

// wantCode fails unless err is an ARM error with status and code.
func wantCode(t *testing.T, err error, status int, code string) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	return re
}
