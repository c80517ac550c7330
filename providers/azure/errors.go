package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/egressgw/egressgw/providers"
)

// ARM and Network resource provider error codes the provider reacts to.
const (
	codeAnotherOperation     = "AnotherOperationInProgress"
	codeRetryableAnotherOp   = "RetryableErrorDueToAnotherOperation"
	codeRetryable            = "RetryableError"
	codePrivateIPInUse       = "PrivateIPAddressInUse"
	codePublicIPInUse        = "PublicIPAddressInUse"
	codeNotInSubnet          = "PrivateIPAddressNotInSubnet"
	codeInvalidReference     = "InvalidResourceReference"
	codeResourceNotFound     = "ResourceNotFound"
	codeNotFound             = "NotFound"
	codeAuthorizationFailed  = "AuthorizationFailed"
	codeLinkedAuthorization  = "LinkedAuthorizationFailed"
	codePreconditionFailed   = "PreconditionFailed"
	codeInternalServerError  = "InternalServerError"
	codeOperationPreempted   = "OperationPreempted"
	codeRetryableServerError = "RetryableServerError"
)

// errETagConflict marks a NIC write refused because the NIC changed since it was read (412): the write is
// redone on a fresh read.
var errETagConflict = errors.New("the network interface changed since it was read (ETag)")

// classify wraps an SDK error with the provider sentinel it means, keeping ARM's status, code and message.
func classify(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, sentinel(err), err)
}

func sentinel(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return credentialOrConnection(err)
	}
	switch code := re.ErrorCode; {
	case busy(re):
		return providers.ErrUnavailable
	case re.StatusCode == http.StatusTooManyRequests:
		return providers.ErrThrottled
	case re.StatusCode == http.StatusPreconditionFailed || code == codePreconditionFailed:
		return errETagConflict
	case code == codePrivateIPInUse || code == codePublicIPInUse:
		return providers.ErrAssignedElsewhere
	case code == codeNotInSubnet:
		return providers.ErrOutsideSubnet
	case code == codeInvalidReference || code == codeResourceNotFound || code == codeNotFound || re.StatusCode == http.StatusNotFound:
		return providers.ErrNotFound
	case capacityCode(code):
		return providers.ErrCapacityExhausted
	case re.StatusCode >= 500, code == codeInternalServerError, code == codeOperationPreempted, code == codeRetryableServerError:
		return providers.ErrUnavailable
	}
	return providers.ErrPermanent
}

// credentialOrConnection classifies an error that is no ARM answer: a credential the token service
// refused, or that the chain could not find (both marked non-retriable by azidentity), is permanent until
// an operator fixes it; the token service's own outage, and a connection or TLS failure, are worth
// another try.
func credentialOrConnection(err error) error {
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) && af.RawResponse != nil && (af.RawResponse.StatusCode >= 500 || af.RawResponse.StatusCode == http.StatusTooManyRequests) {
		return providers.ErrUnavailable
	}
	var nr interface{ NonRetriable() }
	if errors.As(err, &nr) {
		return providers.ErrPermanent
	}
	return providers.ErrUnavailable
}

// busy reports whether err says another operation holds the resource: retry once it is done.
func busy(re *azcore.ResponseError) bool {
	return re.ErrorCode == codeAnotherOperation || re.ErrorCode == codeRetryableAnotherOp || re.ErrorCode == codeRetryable
}

// capacityCode: Azure names its limits ...LimitReached, ...LimitExceeded or QuotaExceeded.
func capacityCode(code string) bool {
	return strings.HasSuffix(code, "LimitReached") || strings.HasSuffix(code, "LimitExceeded") || code == "QuotaExceeded"
}

// retryAfter is the delay the answer asked for (retry-after-ms, x-ms-retry-after-ms or Retry-After in
// seconds or as a date), or 0.
func retryAfter(err error) time.Duration {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.RawResponse == nil {
		return 0
	}
	h := re.RawResponse.Header
	for _, name := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if ms, err := strconv.Atoi(h.Get(name)); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	v := h.Get("Retry-After")
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

func isNotFound(err error) bool { return errors.Is(err, providers.ErrNotFound) }
