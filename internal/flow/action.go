package flow

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/credentials"
	"github.com/nagare-iot/nagare/internal/harvest"
)

// Deps are the platform services actions use.
type Deps struct {
	Data        *harvest.Data
	Files       *harvest.Files
	Credentials *credentials.Service
	Router      *api.Router // the api action invokes operations through it
	// HTTP is the client of the webhook and files actions; its transport
	// may restrict where requests go. Per-call timeouts come from the
	// action's timeout.
	HTTP *http.Client
	// Vision runs the ai action's analyses (vision.Service); nil: the ai
	// action fails with a clear error.
	Vision Analyzer
	// Shadows updates device shadows for the shadow action
	// (shadow.Service); when set, shadow sources are consumed too. nil:
	// the shadow action fails with a clear error.
	Shadows Shadows
	// LineAPIURL and LineDataURL are the LINE Messaging API's base URLs
	// (messages; message content) the line action calls; "" means
	// https://api.line.me and https://api-data.line.me.
	LineAPIURL, LineDataURL string
	// MaxContentBytes caps content the line action downloads (0: 32 MiB).
	MaxContentBytes int64
	// BlobFileRoots are the directories the blob action may write below
	// with file:// URLs (config blob-file-roots); none: file:// is refused.
	BlobFileRoots []string
}

// Call is one execution of an action for one event.
type Call struct {
	Deps       *Deps
	OperatorID string
	App        string
	Action     *Action
	// Config is the action's config with every template rendered against
	// the event (payload, context, event).
	Config map[string]any
	// Input is the event's payload (the action's input).
	Input any
	// Attempt counts from 1.
	Attempt int
	// WorkID identifies this action for this event; it is the same for
	// every attempt (e.g. a retry key for APIs that de-duplicate).
	WorkID string
}

// ActionFunc runs an action and returns its result (the action's output
// before the output transform). It must honour ctx's deadline. Errors are
// retried with back-off unless wrapped with Permanent.
type ActionFunc func(ctx context.Context, c *Call) (any, error)

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that a retry cannot fix (a 4xx answer, a bad
// rendered value): the step fails at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// runPassThrough is republish and delay: the result is the input (the
// delay itself is applied by the engine to the output).
func runPassThrough(_ context.Context, c *Call) (any, error) { return c.Input, nil }

// NewHTTPClient is the client outgoing flow requests use: bounded dial,
// TLS and header waits (the whole request is bounded by the action's
// timeout), and no proxy surprises beyond the environment's.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
	}}
}
