// Package servertest starts a complete nagare server on loopback for
// HTTP-level tests: real SQLite (or PostgreSQL, see storetest), embedded
// NATS with JetStream in a temp dir, local files, and a logged-in root
// client.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/server"
	"github.com/nagare-iot/nagare/internal/store/storetest"
)

func init() {
	// Keep test output readable: only warnings and errors from the server.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// Root auth key installed in every test server.
const (
	RootKeyID = "keyId-testroot"
	RootKey   = "secret-testroot-0123456789abcdef"
)

// TS is a running test server.
type TS struct {
	*server.Server
	URL  string
	Root *Client // logged in as the operator's root account

	t      testing.TB
	cfg    *config.Config
	cancel context.CancelFunc
	done   chan error
}

// Start starts a server; mod may adjust the configuration first.
func Start(t testing.TB, mod ...func(*config.Config)) *TS {
	t.Helper()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.DB = storetest.DSN(t)
	cfg.RootAuthKeyID, cfg.RootAuthKey = RootKeyID, RootKey
	cfg.SecretKey = "bmFnYXJlLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmNkZWY="
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.MQTTListen = "off" // tests that want MQTT say so: WithMQTT
	for _, m := range mod {
		m(cfg)
	}
	ts := &TS{t: t, cfg: cfg}
	ts.start()
	t.Cleanup(ts.Stop)
	return ts
}

// WithMQTT is a Start option: the embedded NATS serves MQTT on a free
// loopback port (ts.Bus.MQTTAddr()) and MQTT over WebSocket at
// ws://<ts.URL host>/mqtt. Without it test servers open no MQTT port.
func WithMQTT(c *config.Config) { c.MQTTListen = "127.0.0.1:0" }

func (ts *TS) start() {
	t := ts.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// Bind first so signed links (public URL) name the real port.
	ln, err := net.Listen("tcp", ts.cfg.Listen)
	if err != nil {
		cancel()
		t.Fatalf("servertest: %v", err)
	}
	ts.cfg.Listen = ln.Addr().String()
	srv, err := server.New(ctx, ts.cfg, server.Options{Stdout: io.Discard, Listener: ln})
	if err != nil {
		ln.Close()
		cancel()
		t.Fatalf("servertest: %v", err)
	}
	ts.Server, ts.cancel, ts.done = srv, cancel, make(chan error, 1)
	ts.URL = "http://" + srv.Addr()
	go func() { ts.done <- srv.Serve(ctx) }()
	ts.Root = ts.LoginKey(RootKeyID, RootKey)
}

// Stop shuts the server down gracefully (idempotent).
func (ts *TS) Stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	if err := <-ts.done; err != nil {
		ts.t.Errorf("servertest: serve: %v", err)
	}
	ts.cancel = nil
}

// Restart stops the server and starts it again on the same data directory,
// database and port.
func (ts *TS) Restart() {
	ts.Stop()
	ts.start()
}

// Config returns the configuration the server runs with.
func (ts *TS) Config() *config.Config { return ts.cfg }

// Anon returns a client without credentials.
func (ts *TS) Anon() *Client { return &Client{t: ts.t, Base: ts.URL} }

// LoginKey logs in with an auth key and returns a client.
func (ts *TS) LoginKey(id, secret string) *Client {
	return ts.Login(map[string]any{"authKeyId": id, "authKey": secret})
}

// Login posts body to /v1/auth and returns a client using the token;
// it fails the test unless the login succeeds.
func (ts *TS) Login(body map[string]any) *Client {
	ts.t.Helper()
	res := ts.Anon().Do("POST", "/v1/auth", body)
	if res.Status != 200 {
		ts.t.Fatalf("servertest: login %v: %d %s", body, res.Status, res.Body)
	}
	var lr struct{ APIKey, Token string }
	res.JSON(&lr)
	return &Client{t: ts.t, Base: ts.URL, APIKey: lr.APIKey, Token: lr.Token}
}

// Client is an API client bound to a test.
type Client struct {
	t      testing.TB
	Base   string
	APIKey string
	Token  string
}

// Response is a buffered HTTP response.
type Response struct {
	t      testing.TB
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *Response) JSON(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("servertest: decoding %q: %v", r.Body, err)
	}
}

// ErrorCode returns the "code" of an error body.
func (r *Response) ErrorCode() string {
	var e struct{ Code string }
	_ = json.Unmarshal(r.Body, &e)
	return e.Code
}

// Do sends a request. body may be nil, []byte/string (sent raw) or any
// value (sent as JSON). hdr is alternating header names and values.
func (c *Client) Do(method, path string, body any, hdr ...string) *Response {
	c.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("servertest: %v", err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		c.t.Fatalf("servertest: %v", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.APIKey != "" {
		req.Header.Set("X-Soracom-API-Key", c.APIKey)
		req.Header.Set("X-Soracom-Token", c.Token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("servertest: %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &Response{t: c.t, Status: res.StatusCode, Header: res.Header, Body: b}
}
