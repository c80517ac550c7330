package azuresim

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Credential is an azcore.TokenCredential for clients of the simulator: its bearer token is the name of
// the principal, which the simulator records as the caller and checks against Options.Roles.
type Credential struct {
	Principal string
}

// GetToken implements azcore.TokenCredential.
func (c Credential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.Principal, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// principal returns the caller named by the bearer token.
func principal(r *http.Request) (string, *APIError) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", apiErr(http.StatusUnauthorized, CodeAuthenticationFailed, "Authentication failed. The 'Authorization' header is missing or not a bearer token.")
	}
	return token, nil
}

// authorize checks one action the way Azure RBAC does: the caller needs it on the resource's scope.
// Roles nil allows everything. The caller holds s.mu.
func (s *Server) authorize(who, action, scope string) *APIError {
	s.actions[action]++
	if s.opts.Roles == nil || slices.Contains(s.opts.Roles[who], action) {
		return nil
	}
	return apiErr(http.StatusForbidden, CodeAuthorizationFailed,
		"The client '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		who, action, scope)
}

// authorizeLinked checks the join actions a write needs on the resources it references (subnets, public
// IPs, load balancer pools): ARM's linked access check.
func (s *Server) authorizeLinked(who, write string, linked map[string]string) *APIError {
	for _, scope := range slices.Sorted(maps.Keys(linked)) {
		action := linked[scope]
		s.actions[action]++
		if s.opts.Roles == nil || slices.Contains(s.opts.Roles[who], action) {
			continue
		}
		return apiErr(http.StatusForbidden, CodeLinkedAuthorization,
			"The client '%s' has permission to perform action '%s' on the resource; however, it does not have permission to perform action(s) '%s' on the linked scope(s) '%s' or the linked scope(s) are invalid.",
			who, write, action, scope)
	}
	return nil
}
