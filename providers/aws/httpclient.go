package aws

import (
	"bytes"
	"io"
	"net/http"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
)

// HTTPClient wraps the SDK's HTTP client so that every request body is an in-memory copy.
//
// Why: the SDK closes a request's body as soon as the response headers arrive, while net/http may still
// read it once more to confirm its end; when that read fails the transport closes the connection and the
// response body being decoded fails with "use of closed network connection" (aws-sdk-go-v2 issue #2737).
// A server that answers fast (the simulator, a nearby endpoint) hits this about once per hundred calls.
// EC2 Query requests are small forms, so the copy costs nothing.
func HTTPClient(inner sdkaws.HTTPClient) sdkaws.HTTPClient {
	return bufferedBody{inner: inner}
}

type bufferedBody struct {
	inner sdkaws.HTTPClient
}

func (c bufferedBody) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.inner.Do(r)
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return c.inner.Do(r)
}
