package azuresim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error codes the simulator answers with, as Azure Resource Manager and the Network resource provider
// name them.
const (
	CodeTooManyRequests       = "TooManyRequests" // ARM throttling (429 with Retry-After)
	CodeRetryableAnotherOp    = "RetryableErrorDueToAnotherOperation"
	CodeAnotherOpInProgress   = "AnotherOperationInProgress"
	CodePreconditionFailed    = "PreconditionFailed"
	CodeIPInUse               = "PrivateIPAddressInUse"
	CodeIPNotInSubnet         = "PrivateIPAddressNotInSubnet"
	CodeIPInReservedRange     = "PrivateIPAddressInReservedRange"
	CodePublicIPInUse         = "PublicIPAddressInUse"
	CodeInvalidReference      = "InvalidResourceReference"
	CodeAuthorizationFailed   = "AuthorizationFailed"
	CodeLinkedAuthorization   = "LinkedAuthorizationFailed"
	CodeAuthenticationFailed  = "AuthenticationFailed"
	CodeResourceNotFound      = "ResourceNotFound"
	CodeNotFound              = "NotFound"
	CodeInvalidResourceType   = "InvalidResourceType"
	CodeMissingAPIVersion     = "MissingApiVersionParameter"
	CodeInvalidRequestFormat  = "InvalidRequestFormat"
	CodeMethodNotAllowed      = "MethodNotAllowed"
	CodeInternalServerError   = "InternalServerError"
	CodeIPConfigLimitReached  = "NetworkInterfaceIpConfigurationCountLimitReached" // exact spelling not verified against Azure
	CodeOnePrimaryIPConfig    = "OnlyOnePrimaryIpConfigurationAllowedOnNic"
	CodeDuplicateIPConfigName = "DuplicateResourceName"
)

// MaxIPConfigsPerNIC is Azure's limit of ip configurations on one network interface.
const MaxIPConfigsPerNIC = 256

// APIError is an error answer in ARM's {"error":{"code","message"}} shape.
type APIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // sent as Retry-After (whole seconds, at least 1) when set
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, e *APIError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(e.RetryAfter))
	}
	var b errorBody
	b.Error.Code, b.Error.Message = e.Code, e.Message
	writeJSON(w, e.Status, b)
}

// retryAfterSeconds renders a delay the way ARM does: whole seconds, rounded up, at least one.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":{"code":"InternalServerError","message":"simulator failed to render"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
