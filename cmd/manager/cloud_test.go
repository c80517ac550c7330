package main

import (
	"encoding/pem"
	"errors"
	"flag"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/gcpsim"
)

func TestCloudFlagsAreValidated(t *testing.T) {
	cases := []struct {
		args []string
		want string // "" for valid
	}{
		{[]string{"--aws-cluster-name=c"}, ""},
		{[]string{}, "--aws-cluster-name"},
		{[]string{"--aws-egress-interface=primary"}, ""},
		{[]string{"--aws-cluster-name=c", "--aws-egress-subnet=us-east-1a=sn-1"}, `EgressSubnets[us-east-1a] = "sn-1"`},
		{[]string{"--aws-egress-interface=primary", "--aws-egress-subnet-tag=egress=yes"}, "dedicated egress interface only"},
		{[]string{"--cloud=gcp", "--gcp-project=p"}, ""},
		{[]string{"--provider=gcp", "--gcp-project=p", "--gcp-endpoint=https://compute-psc.p.googleapis.com"}, ""},
		{[]string{"--cloud=gcp"}, "--gcp-project"},
		{[]string{"--cloud=gcp", "--gcp-project=p", "--gcp-endpoint=compute.example"}, "--gcp-endpoint"},
		{[]string{"--cloud=gcp", "--gcp-project=p", "--aws-vpc-id=vpc-1"}, "--aws-* flags need --cloud=aws"},
		{[]string{"--cloud=gcp", "--gcp-project=p", "--aws-cluster-name=c"}, "--aws-* flags need --cloud=aws"},
		{[]string{"--aws-cluster-name=c", "--gcp-project=p"}, "--gcp-* flags need --cloud=gcp"},
		{[]string{"--cloud=azure"}, `--cloud="azure"`},
	}
	for _, tc := range cases {
		o := newOptions()
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		o.addFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := o.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: want %q, got %v", tc.args, tc.want, err)
		}
	}
}

// TestGCPProviderThroughFlags builds the GCP provider as the manager does, against the simulator behind
// TLS with a private CA: it reaches the API with --ca-bundle and a token file, and not without the bundle.
func TestGCPProviderThroughFlags(t *testing.T) {
	m, err := gcpsim.LoadModel("../../test/gcpsim/testdata/project.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := gcpsim.New(m, gcpsim.Options{Callers: map[string][]string{"lab-token": nil}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(sim)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	bundle, token := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "token")
	must(t, os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	must(t, os.WriteFile(token, []byte("lab-token\n"), 0o600))
	c := cloudOptions{cloud: "gcp", gcpProject: "egressgw-test", gcpEndpoint: srv.URL + "/", gcpAccessToken: token, caBundle: bundle}
	must(t, c.validate())
	node := providers.Node{Name: "gw-a1", ProviderID: "gce://egressgw-test/us-central1-a/gw-a1"}
	p, err := c.provider(t.Context(), slog.New(slog.DiscardHandler))
	must(t, err)
	info, err := p.DescribeNode(t.Context(), node)
	if err != nil || info.Subnet.String() != "10.0.1.0/24" {
		t.Fatalf("DescribeNode through the flags: %+v %v", info, err)
	}
	plain := httptest.NewServer(sim) // the lab's way: plain HTTP and a token file
	t.Cleanup(plain.Close)
	lab := cloudOptions{cloud: "gcp", gcpProject: "egressgw-test", gcpEndpoint: plain.URL, gcpAccessToken: token}
	p, err = lab.provider(t.Context(), slog.New(slog.DiscardHandler))
	must(t, err)
	if _, err := p.DescribeNode(t.Context(), node); err != nil {
		t.Fatalf("DescribeNode over plain HTTP with a token file: %v", err)
	}
	c.caBundle = ""
	p, err = c.provider(t.Context(), slog.New(slog.DiscardHandler))
	must(t, err)
	if _, err := p.DescribeNode(t.Context(), node); !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA bundle the endpoint must not be trusted: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
