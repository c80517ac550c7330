package nodeagent

import (
	"net/http"
)

// HealthHandler answers the manager's probes, served on the node's InternalIP at
// failover.DefaultAgentHealthPort and failover.DefaultAgentHealthPath: 200 while check returns nil, 503 with the error
// otherwise. check must be cheap (the manager probes every 200 ms) and return an error when this node
// must not hold egress IPs, for example when its datapath could not be programmed.
func HealthHandler(check func() error) http.Handler {
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
