// Package agenthealth is the health contract between egressgw's node agents and the manager: where an
// agent serves its health endpoint and what the answers mean. Both sides import it; it holds no logic
// of either.
package agenthealth

import "net/http"

// Where agents serve their health endpoint on each node's InternalIP, unless configured otherwise on
// both sides (the manager's --agent-health-port).
const (
	DefaultPort = 9561
	DefaultPath = "/healthz"
)

// Handler answers the manager's probes: 200 "ok" while check returns nil, 503 with the error otherwise.
// check must be cheap (the manager probes every 200 ms) and return an error when this node must not hold
// egress IPs, for example when its datapath could not be programmed.
func Handler(check func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := check(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}
