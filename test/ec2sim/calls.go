package ec2sim

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Call is one request the simulator answered, as CloudTrail would record it: who (the access key of the
// request's signature), what, with which parameters, and the error code of the answer ("" on success).
type Call struct {
	At        time.Time
	AccessKey string
	Action    string
	Params    url.Values
	Code      string
}

// accessKeyOf reads the access key ID from a SigV4 Authorization header
// ("AWS4-HMAC-SHA256 Credential=AKIA.../20260101/us-east-1/ec2/aws4_request, SignedHeaders=..., ...").
func accessKeyOf(hr *http.Request) string {
	_, cred, ok := strings.Cut(hr.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}

// policyFor is the IAM policy of the request's principal: its own in Options.Policies, else Options.Policy.
func (s *Server) policyFor(accessKey string) *Policy {
	if p, ok := s.opts.Policies[accessKey]; ok {
		return p
	}
	return s.opts.Policy
}

// recordCall reports one answered request to Options.OnCall.
func (s *Server) recordCall(hr *http.Request, r request, aerr *APIError) {
	if s.opts.OnCall == nil {
		return
	}
	c := Call{At: s.now(), AccessKey: accessKeyOf(hr), Action: r.action, Params: r.form}
	if aerr != nil {
		c.Code = aerr.Code
	}
	s.opts.OnCall(c)
}
