package cnirpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Client speaks the protocol to the agent's socket. One request per connection: a plugin process makes one
// or two calls and exits.
type Client struct {
	socketPath string
	http       *http.Client
}

// NewClient dials socketPath (DefaultSocketPath when empty) for every request.
func NewClient(socketPath string) *Client {
	if socketPath == "" {
		socketPath = DefaultSocketPath
	}
	dialer := &net.Dialer{}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socketPath)
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 8 << 10,
	}
	return &Client{socketPath: socketPath, http: &http.Client{Transport: transport}}
}

// UnreachableError means the agent's socket could not be dialled: no agent runs, or it has not created the
// socket yet.
type UnreachableError struct {
	SocketPath string
	Err        error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("the egressgw agent is not reachable at %s: %v", e.SocketPath, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// TimeoutError means the agent did not answer within the caller's deadline.
type TimeoutError struct {
	SocketPath string
	After      time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("the egressgw agent at %s did not answer within %s", e.SocketPath, e.After.Round(time.Millisecond))
}

// AgentError is the agent's refusal: its status code and its message for a person.
type AgentError struct {
	StatusCode int
	Message    string
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("the egressgw agent refused (HTTP %d): %s", e.StatusCode, e.Message)
}

// Add asks the agent to program a pod and returns once it did.
func (c *Client) Add(ctx context.Context, req AddRequest) error { return c.post(ctx, PathAdd, req) }

// Check asks the agent whether a pod's programming is in place.
func (c *Client) Check(ctx context.Context, req AddRequest) error { return c.post(ctx, PathCheck, req) }

// Del asks the agent to remove a sandbox's programming.
func (c *Client) Del(ctx context.Context, req DelRequest) error { return c.post(ctx, PathDel, req) }

// Status asks whether the agent serves.
func (c *Client) Status(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, PathStatus, nil)
}

func (c *Client) post(ctx context.Context, path string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding the request: %w", err)
	}
	return c.do(ctx, http.MethodPost, path, data)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) error {
	start := time.Now()
	// The host is ignored by the unix dialer; "egressgw-agent" makes logs on the agent side readable.
	req, err := http.NewRequestWithContext(ctx, method, "http://egressgw-agent"+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.classify(ctx, start, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxRequestBytes))
		return nil
	}
	return readAgentError(resp)
}

// classify turns a transport error into UnreachableError or TimeoutError.
func (c *Client) classify(ctx context.Context, start time.Time, err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" && ctx.Err() == nil {
		return &UnreachableError{SocketPath: c.socketPath, Err: opErr.Err}
	}
	if ctx.Err() != nil {
		return &TimeoutError{SocketPath: c.socketPath, After: time.Since(start)}
	}
	return &UnreachableError{SocketPath: c.socketPath, Err: err}
}

func readAgentError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxMessageBytes*2))
	var body ErrorResponse
	if err := json.Unmarshal(data, &body); err != nil || body.Error == "" {
		body.Error = BoundMessage(string(bytes.TrimSpace(data)))
	}
	return &AgentError{StatusCode: resp.StatusCode, Message: body.Error}
}
