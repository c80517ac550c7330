package ec2sim

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
)

// Error codes the simulator answers with, as the EC2 API reference names them.
const (
	CodeRequestLimitExceeded      = "RequestLimitExceeded"
	CodeUnavailable               = "Unavailable"
	CodeInternalError             = "InternalError"
	CodeInvalidParameterValue     = "InvalidParameterValue"
	CodeMissingParameter          = "MissingParameter"
	CodeInvalidAction             = "InvalidAction"
	CodeUnauthorizedOperation     = "UnauthorizedOperation"
	CodeMissingAuthToken          = "MissingAuthenticationToken"
	CodeInstanceNotFound          = "InvalidInstanceID.NotFound"
	CodeENINotFound               = "InvalidNetworkInterfaceID.NotFound"
	CodeAllocationNotFound        = "InvalidAllocationID.NotFound"
	CodeAssociationNotFound       = "InvalidAssociationID.NotFound"
	CodeSubnetNotFound            = "InvalidSubnetID.NotFound"
	CodeInvalidInstanceType       = "InvalidInstanceType"
	CodeIPLimitExceeded           = "PrivateIpAddressLimitExceeded"
	CodeAlreadyAssociated         = "Resource.AlreadyAssociated"
	CodeInvalidPaginationToken    = "InvalidPaginationToken"
	CodeFilterLimitExceeded       = "FilterLimitExceeded"
	CodeInvalidParameterCombo     = "InvalidParameterCombination"
	CodeInsufficientFreeAddresses = "InsufficientFreeAddressesInSubnet"
	CodeInsufficientCidrBlocks    = "InsufficientCidrBlocks"
	CodeAttachmentLimitExceeded   = "AttachmentLimitExceeded"
	CodeENIInUse                  = "InvalidNetworkInterface.InUse"
	CodeAttachmentNotFound        = "InvalidAttachmentID.NotFound"
	CodeGroupNotFound             = "InvalidGroup.NotFound"
	CodeIdempotentMismatch        = "IdempotentParameterMismatch"
	CodeIncorrectInstanceState    = "IncorrectInstanceState"
	CodeOperationNotPermitted     = "OperationNotPermitted"
	CodeInvalidID                 = "InvalidID"
	codeUnfilteredNotPermitted    = "egressgw.UnfilteredDescribe" // only with Options.RefuseUnfiltered
	defaultMessageForThrottling   = "Request limit exceeded."
)

// APIError is an error answer of the simulated EC2 API.
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status EC2 sends with this code: 503 for throttling and overload, 500 for internal
// errors, 403 for authorization, 400 for every other client error.
func (e *APIError) Status() int {
	switch e.Code {
	case CodeRequestLimitExceeded, CodeUnavailable, "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case CodeInternalError, "InternalFailure", "ServerInternal":
		return http.StatusInternalServerError
	case CodeUnauthorizedOperation:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

func apiErr(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// errorResponse is the envelope of every EC2 error answer.
type errorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []apiError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type apiError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, e *APIError, requestID string) {
	w.Header().Set("X-Amzn-Requestid", requestID)
	body := errorResponse{Errors: []apiError{{Code: e.Code, Message: e.Message}}, RequestID: requestID}
	writeXML(w, e.Status(), body)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body := append([]byte(xml.Header), out...)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
