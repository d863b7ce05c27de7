// Package api owns the /v1 HTTP surface: the operation registry (every
// operation has a SORACOM-style name "Service:operation" that permission
// statements match), authentication and authorization middleware, and the
// JSON error shape {"code","message"}.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an API error with an HTTP status and a SORACOM-style code
// (three letters and four digits).
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, when set, is sent as the Retry-After header (429, 503).
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error codes used across the API. Codes are stable; messages may change.
const (
	CodeBadRequest      = "BAD0001" // malformed request (JSON, query)
	CodeInvalid         = "BAD0002" // well-formed but invalid value
	CodeBadPath         = "BAD0003" // path traversal or over-long path
	CodeUnauthenticated = "AUT0001" // missing or unknown credentials
	CodeTokenExpired    = "AUT0002"
	CodeLoginFailed     = "AUT0003"
	CodeForbidden       = "PRM0001"
	CodeNotFound        = "NTF0001"
	CodeConflict        = "CNF0001"
	CodeTooLarge        = "LRG0001"
	CodeHarvestDisabled = "HRV0001"
	CodeDeviceSecret    = "DEV0001"
	CodeInternal        = "INT0001"
	CodeUnavailable     = "UNA0001"
	CodeTooManyRequests = "LIM0001" // a rate limit or login throttle: see Retry-After
)

// Common constructors.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, CodeBadRequest, format, args...)
}
func Invalid(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, CodeInvalid, format, args...)
}
func NotFound(format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, CodeNotFound, format, args...)
}
func Forbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, CodeForbidden, format, args...)
}
func Conflict(format string, args ...any) *Error {
	return Errorf(http.StatusConflict, CodeConflict, format, args...)
}
func Unauthenticated(format string, args ...any) *Error {
	return Errorf(http.StatusUnauthorized, CodeUnauthenticated, format, args...)
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		// URLs (signed links, webhook URLs) stay readable: no \u0026.
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
	}
}

// WriteError writes err as {"code","message"}. Errors that are not *Error
// are logged and answered with a generic 500 so internals never leak.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	if !errors.As(err, &ae) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			ae = Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds %d bytes", mbe.Limit)
		} else {
			slog.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
			ae = Errorf(http.StatusInternalServerError, CodeInternal, "internal error")
		}
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter/time.Second)))
	}
	WriteJSON(w, ae.Status, ae)
}

// DefaultMaxJSON bounds JSON request bodies of management operations.
const DefaultMaxJSON = 1 << 20

// DecodeJSON reads a JSON request body into v. Unknown fields, trailing
// data and bodies over DefaultMaxJSON bytes are rejected with a 4xx naming
// the problem. An empty body is allowed when allowEmpty is true.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, DefaultMaxJSON))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds %d bytes", mbe.Limit)
		}
		return BadRequest("reading request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if allowEmpty {
			return nil
		}
		return BadRequest("request body is empty; a JSON object is required")
	}
	return UnmarshalStrict(body, v)
}

// UnmarshalStrict decodes JSON, rejecting unknown fields and trailing data,
// and turns decoder errors into readable 400s.
func UnmarshalStrict(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return BadRequest("invalid JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "body"
			}
			return BadRequest("field %q: expected %s, got JSON %s", field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return BadRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return BadRequest("invalid JSON: %v", err)
		}
	}
	if dec.More() {
		return BadRequest("invalid JSON: unexpected data after the top-level value")
	}
	return nil
}
