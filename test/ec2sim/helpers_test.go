package ec2sim

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	awsprovider "github.com/egressgw/egressgw/providers/aws"
)

// IDs of testdata/vpc.yaml.
const (
	gwA1, gwA2, gwB3    = "i-0a000000000000001", "i-0a000000000000002", "i-0b000000000000003"
	eniA1, eniA2, eniB3 = "eni-0a000000000000001", "eni-0a000000000000002", "eni-0b000000000000003"
	eip1, eip2          = "eipalloc-0e000000000000001", "eipalloc-0e000000000000002"
)

func loadTestModel(t testing.TB) Model {
	t.Helper()
	m, err := LoadModel("testdata/vpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// startSim serves testdata/vpc.yaml over HTTP and returns the simulator and an SDK client for it that
// makes exactly one attempt per call, so tests see every error the simulator sends.
func startSim(t testing.TB, opts Options) (*Server, *ec2.Client, string) {
	t.Helper()
	sim, err := New(loadTestModel(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, sdkClient(srv.URL), srv.URL
}

// sdkClient makes one attempt per call; its HTTP client is the provider's, which avoids the SDK's
// request-body race that a local server otherwise trips about once per hundred calls.
func sdkClient(endpoint string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   awsprovider.HTTPClient(awshttp.NewBuildableClient()),
	})
}

// apiCode returns the EC2 error code and HTTP status of an SDK error.
func apiCode(t testing.TB, err error) (string, int) {
	t.Helper()
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		t.Fatalf("not an API error with an HTTP response: %v", err)
	}
	return ae.ErrorCode(), re.HTTPStatusCode()
}

func wantCode(t testing.TB, err error, code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s (%d), got success", code, status)
	}
	gotCode, gotStatus := apiCode(t, err)
	if gotCode != code || gotStatus != status {
		t.Fatalf("want %s (%d), got %s (%d): %v", code, status, gotCode, gotStatus, err)
	}
}

func wantHolder(t testing.TB, sim *Server, ip string, eniID string) Holder {
	t.Helper()
	h, ok := sim.Where(netip.MustParseAddr(ip))
	if eniID == "" {
		if ok {
			t.Fatalf("%s should be nowhere, is on %s", ip, h.Interface)
		}
		return h
	}
	if !ok || h.Interface != eniID {
		t.Fatalf("%s should be on %s, is on %q", ip, eniID, h.Interface)
	}
	return h
}

// rawCall posts an EC2 Query request without the SDK and returns the status and body.
func rawCall(t testing.TB, endpoint string, form url.Values) (int, []byte) {
	t.Helper()
	form.Set("Version", apiVersion)
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/aws-examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
