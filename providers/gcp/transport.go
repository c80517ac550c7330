package gcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/googleapis/gax-go/v2/callctx"
)

// sendEmptyHeader carries, from a call's context to the HTTP transport, the names of the body's repeated
// fields that must be sent even when empty. gax writes context headers with lower-case keys.
const sendEmptyHeader = "x-egressgw-send-empty"

// withEmptyFields marks the call made with ctx: its JSON body must contain fields, as [] when empty.
//
// Why: instances.updateNetworkInterface is a PATCH, where a field left out means "unchanged", and the
// generated client marshals the request with protojson, which never writes an empty repeated field. So
// removing a NIC's last alias range sends {"fingerprint": ...} alone, the API changes nothing, and the
// operation still ends DONE without an error (googleapis/google-cloud-python#11931,
// google-api-go-client#476 for the same PATCH in other clients).
func withEmptyFields(ctx context.Context, fields ...string) context.Context {
	return callctx.SetHeaders(ctx, sendEmptyHeader, strings.Join(fields, ","))
}

// emptyFields is the HTTP transport that does what withEmptyFields asks, and removes its header.
type emptyFields struct {
	inner http.RoundTripper
}

func (t emptyFields) RoundTrip(r *http.Request) (*http.Response, error) {
	fields := headerValue(r.Header, sendEmptyHeader)
	if fields == "" {
		return t.inner.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	delete(r.Header, sendEmptyHeader)
	r.Header.Del(sendEmptyHeader)
	if err := addEmptyFields(r, strings.Split(fields, ",")); err != nil {
		return nil, err
	}
	return t.inner.RoundTrip(r)
}

// headerValue finds a header whether its key was canonicalized or not.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return h.Get(key)
}

// addEmptyFields rewrites r's JSON object body so that each of fields is present ([] when it was absent).
func addEmptyFields(r *http.Request, fields []string) error {
	if r.Body == nil {
		return fmt.Errorf("%s %s: no body to add %v to", r.Method, r.URL.Path, fields)
	}
	data, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(data, &body); err != nil {
		return fmt.Errorf("%s %s: body is not a JSON object: %w", r.Method, r.URL.Path, err)
	}
	for _, f := range fields {
		if _, ok := body[f]; !ok {
			body[f] = json.RawMessage("[]")
		}
	}
	if data, err = json.Marshal(body); err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	r.ContentLength = int64(len(data))
	return nil
}
