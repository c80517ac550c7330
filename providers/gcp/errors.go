package gcp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/googleapi"

	"github.com/egressgw/egressgw/providers"
)

// errRetryEdit marks a refusal that a fresh read of the instance may cure: the NIC's fingerprint changed
// since it was read (412 conditionNotMet), or another operation is running on the instance (400
// resourceNotReady). It is internal: editAliases re-reads and tries again.
var errRetryEdit = errors.New("the NIC changed or is busy; read it again")

// Operation error codes the provider reacts to (Compute Engine's names).
const (
	codeIPInUse       = "IP_IN_USE_BY_ANOTHER_RESOURCE"
	codeNotFound      = "RESOURCE_NOT_FOUND"
	codeNotReady      = "RESOURCE_NOT_READY"
	codeConditionNot  = "CONDITION_NOT_MET"
	codeQuotaExceeded = "QUOTA_EXCEEDED"
)

// rateReasons are the error reasons of Compute Engine's rate quotas, sent with 403 or 429.
var rateReasons = map[string]bool{"rateLimitExceeded": true, "userRateLimitExceeded": true}

// transientCodes are operation error codes after which the same request may succeed.
var transientCodes = map[string]bool{"INTERNAL_ERROR": true, "SERVICE_UNAVAILABLE": true, "TIMEOUT": true}

// classify wraps an SDK error with the provider sentinel it means, keeping the API's status and reason.
func classify(method string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("compute %s: %w", method, err)
	}
	return fmt.Errorf("compute %s: %w: %w", method, sentinel(err), err)
}

func sentinel(err error) error {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		if untrusted(err) {
			return providers.ErrPermanent // no retry makes a certificate trusted
		}
		var ue *url.Error
		var ne net.Error
		if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return providers.ErrUnavailable
		}
		return providers.ErrPermanent
	}
	switch {
	case ge.Code == http.StatusTooManyRequests, ge.Code == http.StatusForbidden && hasReason(ge, rateReasons):
		return providers.ErrThrottled
	case ge.Code == http.StatusPreconditionFailed, ge.Code == http.StatusBadRequest && hasReason(ge, map[string]bool{"resourceNotReady": true}):
		return errRetryEdit
	case ge.Code == http.StatusNotFound:
		return providers.ErrNotFound
	case ge.Code >= 500:
		return providers.ErrUnavailable
	}
	return providers.ErrPermanent
}

// untrusted reports a TLS failure to verify the endpoint's certificate.
func untrusted(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

func hasReason(ge *googleapi.Error, reasons map[string]bool) bool {
	for _, item := range ge.Errors {
		if reasons[item.Reason] {
			return true
		}
	}
	return false
}

// operationError is the error a DONE operation ended with, nil when it succeeded, as the sentinel of its
// first error code: the IP held by another NIC is ErrAssignedElsewhere, and so on.
func operationError(op *computepb.Operation) error {
	items := op.GetError().GetErrors()
	if len(items) == 0 && op.GetHttpErrorStatusCode() < 300 {
		return nil
	}
	code, msg := "", op.GetHttpErrorMessage()
	if len(items) > 0 {
		code, msg = items[0].GetCode(), items[0].GetMessage()
	}
	var s error
	switch {
	case code == codeIPInUse:
		s = providers.ErrAssignedElsewhere
	case code == codeNotFound:
		s = providers.ErrNotFound
	case code == codeNotReady, code == codeConditionNot, transientCodes[code]:
		s = errRetryEdit
	case code == codeQuotaExceeded:
		s = providers.ErrCapacityExhausted
	case op.GetHttpErrorStatusCode() >= 500:
		s = errRetryEdit
	default:
		s = providers.ErrPermanent
	}
	return fmt.Errorf("operation %s ended with %s (HTTP %d): %s: %w", op.GetName(), code, op.GetHttpErrorStatusCode(), msg, s)
}
