package ec2sim

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// request is one parsed EC2 Query request.
type request struct {
	action string
	form   url.Values
}

// list returns the members of a flattened EC2 Query list: Name.1, Name.2, ... until the first gap.
func (r request) list(name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := r.form[fmt.Sprintf("%s.%d", name, i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

// addrs parses a list of IPv4 addresses.
func (r request) addrs(name string) ([]netip.Addr, *APIError) {
	var out []netip.Addr
	for _, raw := range r.list(name) {
		ip, err := netip.ParseAddr(raw)
		if err != nil || !ip.Is4() {
			return nil, apiErr(CodeInvalidParameterValue, "Invalid value '%s' for %s: not an IPv4 address", raw, name)
		}
		out = append(out, ip)
	}
	return out, nil
}

// prefixes parses a list of IPv4 prefixes.
func (r request) prefixes(name string) ([]netip.Prefix, *APIError) {
	var out []netip.Prefix
	for _, raw := range r.list(name) {
		p, err := netip.ParsePrefix(raw)
		if err != nil || !p.Addr().Is4() {
			return nil, apiErr(CodeInvalidParameterValue, "Invalid value '%s' for %s: not an IPv4 prefix", raw, name)
		}
		out = append(out, p)
	}
	return out, nil
}

// optInt returns a non-negative integer parameter; 0 when absent.
func (r request) optInt(name string) (int, *APIError) {
	raw := r.form.Get(name)
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 {
		return 0, apiErr(CodeInvalidParameterValue, "Invalid value '%s' for %s: expected a non-negative integer", raw, name)
	}
	return n, nil
}

// optBool returns a boolean parameter; nil when absent.
func (r request) optBool(name string) (*bool, *APIError) {
	raw := r.form.Get(name)
	if raw == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(raw)
	if err != nil {
		return nil, apiErr(CodeInvalidParameterValue, "Invalid value '%s' for %s: expected a boolean", raw, name)
	}
	return &b, nil
}

// required returns a parameter that must be present.
func (r request) required(name string) (string, *APIError) {
	v := r.form.Get(name)
	if v == "" {
		return "", apiErr(CodeMissingParameter, "The request must contain the parameter %s", name)
	}
	return v, nil
}

// filter is one Filter.N of a Describe call; a resource matches when one of its values matches one of
// the filter's values (with * and ? wildcards, as EC2 allows).
type filter struct {
	name   string
	values []string
}

// maxFilterValues is EC2's limit on the values of all filters of one request.
const maxFilterValues = 1000

func (r request) filters() ([]filter, *APIError) {
	var out []filter
	total := 0
	for i := 1; ; i++ {
		name := r.form.Get(fmt.Sprintf("Filter.%d.Name", i))
		if name == "" {
			return out, nil
		}
		values := r.list(fmt.Sprintf("Filter.%d.Value", i))
		if len(values) == 0 {
			return nil, apiErr(CodeInvalidParameterValue, "The filter '%s' has no values", name)
		}
		if total += len(values); total > maxFilterValues {
			return nil, apiErr(CodeFilterLimitExceeded, "The request uses too many filter values (more than %d)", maxFilterValues)
		}
		out = append(out, filter{name: name, values: values})
	}
}

// matches reports whether any of have matches any of f's values.
func (f filter) matches(have ...string) bool {
	for _, want := range f.values {
		for _, h := range have {
			if ok, _ := path.Match(want, h); ok {
				return true
			}
		}
	}
	return false
}

// fields gives, per filter name, the values a resource has for it; a filter whose name is absent is invalid.
type fields map[string][]string

// matchAll reports whether the resource matches every filter, or which filter name is unknown.
func matchAll(fs []filter, have fields) (bool, *APIError) {
	for _, f := range fs {
		values, known := have[f.name]
		if !known && !strings.HasPrefix(f.name, "tag:") { // a tag filter on an untagged resource matches nothing
			return false, apiErr(CodeInvalidParameterValue, "The filter '%s' is invalid", f.name)
		}
		if !f.matches(values...) {
			return false, nil
		}
	}
	return true, nil
}

// page cuts items by MaxResults/NextToken; the token is the offset of the next page.
func page[T any](r request, items []T, minMax, maxMax int) ([]T, string, *APIError) {
	start := 0
	if tok := r.form.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(items) {
			return nil, "", apiErr(CodeInvalidPaginationToken, "The specified pagination token is not valid or is expired.")
		}
		start = n
	}
	size := len(items) - start
	if raw := r.form.Get("MaxResults"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < minMax || n > maxMax {
			return nil, "", apiErr(CodeInvalidParameterValue, "MaxResults must be between %d and %d", minMax, maxMax)
		}
		size = min(size, n)
	}
	next := ""
	if start+size < len(items) {
		next = strconv.Itoa(start + size)
	}
	return items[start : start+size], next, nil
}
