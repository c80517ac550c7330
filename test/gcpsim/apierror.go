package gcpsim

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Reasons of the API's error envelope (error.errors[].reason) that the simulator sends.
const (
	ReasonRateLimitExceeded = "rateLimitExceeded"
	ReasonConditionNotMet   = "conditionNotMet"
	ReasonResourceNotReady  = "resourceNotReady"
	ReasonNotFound          = "notFound"
	ReasonInvalid           = "invalid"
	ReasonForbidden         = "forbidden"
	ReasonRequired          = "required"
	ReasonBackendError      = "backendError"
)

// APIError is an error answer of the compute REST API: an HTTP status and the JSON envelope
// {"error": {"code", "message", "errors": [{"domain", "reason", "message"}], "status"}}.
type APIError struct {
	Status  int
	Reason  string
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Reason, e.Message) }

func apiErr(status int, reason, format string, args ...any) *APIError {
	return &APIError{Status: status, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func invalid(field, format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, ReasonInvalid, "Invalid value for field '%s': %s", field, fmt.Sprintf(format, args...))
}

func notFound(resource string) *APIError {
	return apiErr(http.StatusNotFound, ReasonNotFound, "The resource '%s' was not found", resource)
}

// grpcStatus is the envelope's status name for an HTTP status, as Google's APIs pair them.
func grpcStatus(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusPreconditionFailed:
		return "FAILED_PRECONDITION"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	}
	return "INTERNAL"
}

func domainOf(reason string) string {
	if reason == ReasonRateLimitExceeded {
		return "usageLimits"
	}
	return "global"
}

func writeError(w http.ResponseWriter, e *APIError) {
	body := map[string]any{"error": map[string]any{
		"code": e.Status, "message": e.Message, "status": grpcStatus(e.Status),
		"errors": []map[string]string{{"domain": domainOf(e.Reason), "reason": e.Reason, "message": e.Message}},
	}}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// OperationError is the error a zone operation ends with: a code of the API's operation error list
// (IP_IN_USE_BY_ANOTHER_RESOURCE, ...) and the HTTP status the operation reports in httpErrorStatusCode.
type OperationError struct {
	Code    string
	Message string
	status  int
}
