package azuresim

import (
	"net/http"
	"strings"
)

// Entra is a minimal Microsoft Entra ID token endpoint for a custom cloud whose authority host is the
// simulator: the OpenID configuration of a tenant and its token endpoint, which grants any client
// credentials request (a workload identity's federated token included) a token naming the client ID as
// the principal. With it, azidentity's default chain runs unchanged against the simulator.
func (s *Server) Entra() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) < 2 {
			http.NotFound(w, r)
			return
		}
		tenant, base := parts[0], "https://"+r.Host+"/"+parts[0]
		switch {
		case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
			writeJSON(w, http.StatusOK, map[string]string{"token_endpoint": base + "/oauth2/v2.0/token",
				"authorization_endpoint": base + "/oauth2/v2.0/authorize", "issuer": base + "/v2.0", "tenant_region_scope": "WW"})
		case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") && r.Method == http.MethodPost:
			s.token(w, r, tenant)
		default:
			http.NotFound(w, r)
		}
	})
}

// RefusedAssertion is a client assertion (a federated token file's content) that Entra refuses, as it does
// one whose subject has no federated credential.
const RefusedAssertion = "refused-assertion"

func (s *Server) token(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil || r.Form.Get("client_id") == "" || r.Form.Get("client_assertion") == "" && r.Form.Get("client_secret") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "client_id and a client assertion or secret are required"})
		return
	}
	if r.Form.Get("client_assertion") == RefusedAssertion {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_codes": []int{700213},
			"error_description": "AADSTS700213: No matching federated identity record found for presented assertion subject."})
		return
	}
	s.mu.Lock()
	s.tokens[tenant+"/"+r.Form.Get("client_id")]++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": r.Form.Get("client_id")})
}
