package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/egressgw/egressgw/providers"
)

// EC2 error codes the provider reacts to; see "Error codes for the Amazon EC2 API".
const (
	codeIPLimitExceeded       = "PrivateIpAddressLimitExceeded"
	codeAssociationNotFound   = "InvalidAssociationID.NotFound"
	codeAttachmentLimit       = "AttachmentLimitExceeded"
	codeENIInUse              = "InvalidNetworkInterface.InUse"
	codeENINotFound           = "InvalidNetworkInterfaceID.NotFound"
	codeAttachmentNotFound    = "InvalidAttachmentID.NotFound"
	codeInvalidParameterValue = "InvalidParameterValue"
	codeUnauthorized          = "UnauthorizedOperation"
)

// serverCodes are EC2's server-side codes that a later try may not meet.
var serverCodes = map[string]bool{
	"InternalError": true, "InternalFailure": true, "ServerInternal": true, "ServiceUnavailable": true, "Unavailable": true,
}

// classify wraps an SDK error with the provider sentinel it means, keeping EC2's code and message.
func classify(action string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ec2:%s: %w", action, err)
	}
	if hasCode(err, codeUnauthorized) {
		return fmt.Errorf("ec2:%s: the IAM policy of egressgw's credentials does not allow ec2:%s on this resource (see examples/aws/iam-policy.json): %w: %w",
			action, action, providers.ErrPermanent, err)
	}
	return fmt.Errorf("ec2:%s: %w: %w", action, sentinel(err), err)
}

func sentinel(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		if (retry.RetryableConnectionError{}).IsErrorRetryable(err).Bool() {
			return providers.ErrUnavailable
		}
		return providers.ErrPermanent
	}
	code := ae.ErrorCode()
	var withStatus interface{ HTTPStatusCode() int }
	switch {
	case isThrottle(code):
		return providers.ErrThrottled
	case strings.HasSuffix(code, ".NotFound"):
		return providers.ErrNotFound
	case code == codeIPLimitExceeded, code == codeAttachmentLimit:
		return providers.ErrCapacityExhausted
	case serverCodes[code], errors.As(err, &withStatus) && withStatus.HTTPStatusCode() >= 500:
		return providers.ErrUnavailable
	}
	return providers.ErrPermanent
}

func isThrottle(code string) bool {
	_, ok := retry.DefaultThrottleErrorCodes[code]
	return ok
}

// hasCode reports whether err carries EC2 error code.
func hasCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
