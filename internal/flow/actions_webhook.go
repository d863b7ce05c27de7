package flow

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/credentials"
)

// The webhook action, and what the other actions share with it: config
// accessors, JSON bodies, the outgoing HTTP client's redirect rules and
// the classification of HTTP answers into retryable and permanent errors.

// maxRedirects is how many redirects an outgoing request follows.
const maxRedirects = 5

// errorBodyPrefix is how much of an error answer's body an error quotes.
const errorBodyPrefix = 256

var defaultActionHTTP = sync.OnceValue(NewHTTPClient)

func runWebhook(ctx context.Context, c *Call) (any, error) {
	cfg := c.Config
	method := strings.ToUpper(cfgString(cfg, "method"))
	if method == "" {
		method = http.MethodPost
	}
	u, err := actionURL("url", cfgString(cfg, "url"))
	if err != nil {
		return nil, err
	}
	var red redactor
	if pw, ok := u.User.Password(); ok {
		red.add(pw)
	}
	var body io.Reader
	withBody := method != http.MethodGet && method != http.MethodHead
	if withBody {
		v, ok := cfg["body"]
		if !ok || v == nil {
			v = c.Input
		}
		b, err := payloadBytes(v)
		if err != nil {
			return nil, Permanent(fmt.Errorf("body: %w", err))
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, Permanent(fmt.Errorf("webhook request: %v", err))
	}
	req.Header.Set("User-Agent", "nagare-flow")
	if withBody {
		ct := cfgString(cfg, "contentType")
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range cfgStrings(cfg, "headers") {
		if !validHeaderName(k) {
			return nil, Permanent(fmt.Errorf("headers: %q is not a valid header name", k))
		}
		if !validHeaderValue(v) {
			return nil, Permanent(fmt.Errorf("headers: the value of %s holds a line break or control character", k))
		}
		if isSecretHeader(k) {
			red.addAuth(v)
		}
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if id := cfgString(cfg, "basicAuth"); id != "" {
		user, pw, err := basicAuthCredential(ctx, c, id)
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(user, pw)
		red.add(pw)
		red.addAuth(req.Header.Get("Authorization"))
	}

	resp, err := actionClient(c).Do(req)
	if err != nil {
		return nil, requestError("webhook "+method, err, red)
	}
	defer resp.Body.Close()
	if err := statusError("webhook "+method, resp, red); err != nil {
		return nil, err
	}
	b, err := readCapped(resp, int64(cfgInt(cfg, "maxResponseBytes", 65536)), "maxResponseBytes")
	if err != nil {
		return nil, requestError("webhook "+method+" response", err, red)
	}
	return map[string]any{
		"status":  resp.StatusCode,
		"headers": firstValues(resp.Header),
		"body":    parseBody(resp.Header.Get("Content-Type"), b),
	}, nil
}

// basicAuthCredential fetches a username-password credential.
func basicAuthCredential(ctx context.Context, c *Call, id string) (user, password string, err error) {
	vals, err := credentialValues(ctx, c.Deps, c.OperatorID, id, "username-password-credentials")
	if err != nil {
		return "", "", fmt.Errorf("basicAuth: %w", err)
	}
	return vals["username"], vals["password"], nil
}

// credentialValues fetches a credential of the given type from the
// credentials store and returns its values (actions and sources).
func credentialValues(ctx context.Context, deps *Deps, op, id, typ string) (map[string]string, error) {
	if deps == nil || deps.Credentials == nil {
		return nil, Permanent(errors.New("credentials: no credentials store is configured"))
	}
	cred, err := deps.Credentials.Get(ctx, op, id)
	if errors.Is(err, credentials.ErrNotFound) {
		return nil, Permanent(fmt.Errorf("credentials: %q not found in the credentials store", id))
	}
	if err != nil {
		return nil, fmt.Errorf("credentials %q: %w", id, err)
	}
	if cred.Type != typ {
		return nil, Permanent(fmt.Errorf("credentials %q is of type %s; %s is needed", id, cred.Type, typ))
	}
	return cred.Values, nil
}

// ---------------------------------------------------------------------------
// Config accessors. Configs arrive decoded and rendered (see Call.Config).

func cfgString(cfg map[string]any, k string) string {
	s, _ := cfg[k].(string)
	return s
}

func cfgStrings(cfg map[string]any, k string) map[string]string {
	switch m := cfg[k].(type) {
	case map[string]string:
		return m
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, v := range m {
			if s, ok := v.(string); ok {
				out[k] = s
			} else {
				out[k] = fmt.Sprint(v)
			}
		}
		return out
	}
	return nil
}

func cfgInt(cfg map[string]any, k string, def int) int {
	switch v := cfg[k].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return def
}

// ---------------------------------------------------------------------------
// Bodies

// marshalJSON encodes v as JSON without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// payloadBytes is a body as sent or stored: a string as it is, anything
// else as JSON.
func payloadBytes(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	}
	return marshalJSON(v)
}

// isJSONType reports whether a Content-Type is JSON (application/json or
// a +json type).
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// parseBody is an answer's body as a value: parsed JSON when the content
// type says JSON and it parses, else the text.
func parseBody(ct string, b []byte) any {
	if isJSONType(ct) && len(bytes.TrimSpace(b)) > 0 {
		var v any
		if json.Unmarshal(b, &v) == nil {
			return v
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func firstValues(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[http.CanonicalHeaderKey(k)] = v[0]
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Outgoing HTTP

// actionURL checks a rendered URL: absolute http or https.
func actionURL(field, raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, Permanent(fmt.Errorf("%s is empty", field))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, Permanent(fmt.Errorf("%s is not a valid URL: %v", field, err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, Permanent(fmt.Errorf("%s must be an http or https URL, not %q", field, u.Redacted()))
	}
	if u.Host == "" {
		return nil, Permanent(fmt.Errorf("%s %q has no host", field, u.Redacted()))
	}
	return u, nil
}

var errTooManyRedirects = fmt.Errorf("stopped after %d redirects", maxRedirects)

// actionClient is the deps' client (or a default one) with nagare's
// redirect rules: at most maxRedirects, and credentials (Authorization,
// Proxy-Authorization, Cookie) are dropped once the chain has left the
// first request's origin — stricter than net/http, which keeps them for
// the same host on another port or a subdomain.
func actionClient(c *Call) *http.Client {
	base := defaultActionHTTP()
	if c.Deps != nil && c.Deps.HTTP != nil {
		base = c.Deps.HTTP
	}
	cl := *base
	next := base.CheckRedirect
	cl.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return errTooManyRedirects
		}
		left := !sameOrigin(req.URL, via[0].URL)
		for _, v := range via[1:] {
			left = left || !sameOrigin(v.URL, via[0].URL)
		}
		if left {
			for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
				req.Header.Del(h)
			}
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &cl
}

func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if u.Scheme == "https" {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// readCapped reads an answer's body, at most max bytes: a longer one is a
// permanent error naming the limit (field is the setting that sets it).
func readCapped(resp *http.Response, limit int64, field string) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, Permanent(fmt.Errorf("the response of %d bytes exceeds %s (%d bytes)", resp.ContentLength, field, limit))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, Permanent(fmt.Errorf("the response exceeds %s (%d bytes)", field, limit))
	}
	return b, nil
}

// actionError is an error whose message was built (and redacted) apart
// from the error it wraps.
type actionError struct {
	msg string
	err error
}

func (e *actionError) Error() string { return e.msg }
func (e *actionError) Unwrap() error { return e.err }

// requestError describes a failed request without its URL (URLs often
// carry secrets: webhook tokens in paths and queries). Too many redirects
// and errors that are already permanent stay permanent; everything else
// (network, timeouts) is retried.
func requestError(what string, err error, red redactor) error {
	if IsPermanent(err) {
		return err
	}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	e := &actionError{msg: red.apply(what + ": " + inner.Error()), err: inner}
	if errors.Is(err, errTooManyRedirects) {
		return Permanent(e)
	}
	return e
}

// httpStatusError is a non-2xx answer.
type httpStatusError struct {
	Status int
	msg    string
}

func (e *httpStatusError) Error() string { return e.msg }

// retryableStatus: server errors, 429 Too Many Requests and 408 Request
// Timeout may pass; other answers will not change on a retry.
func retryableStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// statusError turns a non-2xx answer into an error quoting the start of
// its body; nil for 2xx.
func statusError(what string, resp *http.Response, red redactor) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyPrefix+1))
	e := &httpStatusError{Status: resp.StatusCode, msg: red.apply(fmt.Sprintf("%s: %s%s", what, resp.Status, quoteBody(b)))}
	if retryableStatus(resp.StatusCode) {
		return e
	}
	return Permanent(e)
}

func quoteBody(b []byte) string {
	more := len(b) > errorBodyPrefix
	if more {
		b = b[:errorBodyPrefix]
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
	if s == "" {
		return ""
	}
	s = strings.Join(strings.Fields(s), " ")
	if more {
		s += "…"
	}
	return ": " + s
}

// redactor masks secrets (passwords, Authorization values) in messages.
type redactor []string

func (r *redactor) add(s string) {
	if len(s) >= 3 {
		*r = append(*r, s)
	}
}

// addAuth adds an Authorization value and its credentials part (the
// token after "Bearer ", the base64 after "Basic ").
func (r *redactor) addAuth(v string) {
	r.add(v)
	if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
		cred = strings.TrimSpace(cred)
		r.add(cred)
		if dec, err := base64.StdEncoding.DecodeString(cred); err == nil {
			r.add(string(dec))
		}
	}
}

func (r redactor) apply(s string) string {
	for _, sec := range r {
		s = strings.ReplaceAll(s, sec, "****")
	}
	return s
}

func isSecretHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Proxy-Authorization":
		return true
	}
	return false
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// apiError classifies an error of a nagare service: an *api.Error below
// 500 (other than 408 and 429) is permanent; the rest is retried.
func apiError(what string, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && !retryableStatus(ae.Status) {
		return Permanent(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}
