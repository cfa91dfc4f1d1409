package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
)

// APIError is one entry of an error response. Every route answers errors in
// the same envelope, the one Customer.io's API uses, with a machine-readable
// Code added:
//
//	{"errors":[{"status":"400","code":"invalid_field","detail":"…","source":{"pointer":"/client/user_id"}}]}
type APIError struct {
	Status int    `json:"-"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	// Pointer is a JSON Pointer to the offending request field, if any.
	Pointer string `json:"-"`
}

func (e *APIError) Error() string { return e.Detail }

// Errf builds an APIError.
func Errf(status int, code, pointer, format string, a ...any) *APIError {
	return &APIError{Status: status, Code: code, Pointer: pointer, Detail: fmt.Sprintf(format, a...)}
}

type wireError struct {
	Status string     `json:"status"`
	Code   string     `json:"code"`
	Detail string     `json:"detail"`
	Source *errSource `json:"source,omitempty"`
}

type errSource struct {
	Pointer string `json:"pointer"`
}

// WriteErrors answers with one or more errors; the HTTP status is the first
// error's.
func WriteErrors(w http.ResponseWriter, errs ...*APIError) {
	WriteJSON(w, errs[0].Status, envelope(w.Header().Get(RequestIDHeader), errs))
}

// envelope is the wire form of errs answering the request requestID ("":
// none, as for a connection refused before any request).
func envelope(requestID string, errs []*APIError) any {
	out := struct {
		Errors []wireError `json:"errors"`
		// RequestID finds the answer's log lines (see RequestIDHeader).
		RequestID string `json:"request_id,omitempty"`
	}{RequestID: requestID}
	for _, e := range errs {
		we := wireError{Status: strconv.Itoa(e.Status), Code: e.Code, Detail: e.Detail}
		if e.Pointer != "" {
			we.Source = &errSource{Pointer: e.Pointer}
		}
		out.Errors = append(out.Errors, we)
	}
	return out
}

// WriteError answers err: an *APIError as it is, anything else as a 500
// whose detail hides the internals (they are logged instead).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *APIError
	if errors.As(err, &ae) {
		WriteErrors(w, ae)
		return
	}
	slog.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
		"request_id", RequestID(r.Context()), "err", err)
	WriteErrors(w, Errf(http.StatusInternalServerError, "internal", "", "internal error; the gateway log has the details%s",
		underRequestID(r)))
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// underRequestID is " under request id X" for messages that send the
// reader to the log.
func underRequestID(r *http.Request) string {
	if id := RequestID(r.Context()); id != "" {
		return " under request id " + id
	}
	return ""
}
