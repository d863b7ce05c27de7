package vision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/nagare-iot/nagare/internal/api"
)

// Error codes of vision failures (besides the api package's BAD0002,
// NTF0001 and LRG0001).
const (
	CodeBadImage       = "VIS0001" // 422: the image is not a readable JPEG or PNG, or the provider rejected it
	CodeRejected       = "VIS0002" // 422: the provider refused the request (4xx: key, model, quota, content)
	CodeProvider       = "VIS0003" // 502: the provider or the image URL failed, or replied malformed
	CodeTimeout        = "VIS0004" // 504: the provider or the image download timed out
	CodeNotImplemented = "VIS0005" // 501: a feature the server was not set up for (annotation)
)

// Error is a failed analysis: the HTTP status and code the API answers
// with, and whether a later attempt may succeed.
type Error struct {
	Status    int // 400, 404, 413, 422, 501, 502 or 504
	Code      string
	Message   string
	Retryable bool // provider 5xx/429, network failures and timeouts
	Err       error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether a retry may succeed; flow's ai action asks
// (through this method, without importing vision).
func (e *Error) Temporary() bool { return e.Retryable }

// APIError is the error as the API answers it.
func (e *Error) APIError() *api.Error {
	return api.Errorf(e.Status, e.Code, "%s", e.Message)
}

func newError(status int, code string, retryable bool, err error, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Retryable: retryable, Err: err}
}

func errInvalid(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, api.CodeInvalid, false, nil, format, args...)
}

func errBadImage(format string, args ...any) *Error {
	return newError(http.StatusUnprocessableEntity, CodeBadImage, false, nil, format, args...)
}

func errTooLarge(format string, args ...any) *Error {
	return newError(http.StatusRequestEntityTooLarge, api.CodeTooLarge, false, nil, format, args...)
}

// errMalformed is a provider reply that does not have the documented
// shape. Model replies vary between calls, so it is retryable.
func errMalformed(provider, format string, args ...any) *Error {
	return newError(http.StatusBadGateway, CodeProvider, true, nil, provider+": malformed reply: "+format, args...)
}

// errHTTPStatus classifies a provider's (or an image URL's) non-2xx
// answer: 408, 429 and 5xx are retryable (502), 413 is 413, other 4xx
// are permanent (422).
func errHTTPStatus(what string, status int, msg string) *Error {
	text := fmt.Sprintf("%s: %d %s", what, status, http.StatusText(status))
	if msg != "" {
		text += ": " + msg
	}
	switch {
	case status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout:
		return newError(http.StatusBadGateway, CodeProvider, true, nil, "%s", text)
	case status == http.StatusRequestEntityTooLarge:
		return newError(http.StatusRequestEntityTooLarge, api.CodeTooLarge, false, nil, "%s", text)
	}
	return newError(http.StatusUnprocessableEntity, CodeRejected, false, nil, "%s", text)
}

// errTransport classifies a failed request (no answer): timeouts are 504,
// the rest 502, both retryable. An error that is already an *Error is
// returned as it is.
func errTransport(what string, err error) *Error {
	var ve *Error
	if errors.As(err, &ve) {
		return ve
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return newError(http.StatusGatewayTimeout, CodeTimeout, true, err, "%s: timed out", what)
	}
	if errors.Is(err, context.Canceled) {
		return newError(http.StatusGatewayTimeout, CodeTimeout, true, err, "%s: canceled", what)
	}
	return newError(http.StatusBadGateway, CodeProvider, true, err, "%s: %v", what, err)
}

type operatorKey struct{}

// WithOperator attaches the operator a call runs for; providers that read
// the credentials store (openai, rekognition) need it.
func WithOperator(ctx context.Context, operatorID string) context.Context {
	return context.WithValue(ctx, operatorKey{}, operatorID)
}

// OperatorFrom returns the operator attached by WithOperator.
func OperatorFrom(ctx context.Context) string {
	s, _ := ctx.Value(operatorKey{}).(string)
	return s
}
