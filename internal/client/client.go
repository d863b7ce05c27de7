// Package client is a small client for nagare's /v1 API used by the CLI's
// client commands. It reads NAGARE_ENDPOINT, NAGARE_AUTH_KEY_ID and
// NAGARE_AUTH_KEY, logs in with POST /v1/auth and sends the SORACOM auth
// headers on every call.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultEndpoint is used when NAGARE_ENDPOINT is unset.
const DefaultEndpoint = "http://127.0.0.1:8080"

// Client talks to one nagare server.
type Client struct {
	Endpoint string
	HTTP     *http.Client
	APIKey   string
	Token    string
}

// FromEnv builds a client from NAGARE_ENDPOINT / NAGARE_AUTH_KEY_ID /
// NAGARE_AUTH_KEY and logs in when a key is given.
func FromEnv(ctx context.Context, getenv func(string) string) (*Client, error) {
	ep := strings.TrimSuffix(getenv("NAGARE_ENDPOINT"), "/")
	if ep == "" {
		ep = DefaultEndpoint
	}
	c := New(ep)
	id, key := getenv("NAGARE_AUTH_KEY_ID"), getenv("NAGARE_AUTH_KEY")
	if id == "" && key == "" {
		return c, nil
	}
	if id == "" || key == "" {
		return nil, errors.New("NAGARE_AUTH_KEY_ID and NAGARE_AUTH_KEY must be set together")
	}
	return c, c.Login(ctx, map[string]any{"authKeyId": id, "authKey": key})
}

// New returns an unauthenticated client.
func New(endpoint string) *Client {
	return &Client{Endpoint: endpoint, HTTP: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	}}
}

// Error is an API error answer.
type Error struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Login authenticates and stores the API key and token.
func (c *Client) Login(ctx context.Context, body map[string]any) error {
	var out struct{ APIKey, Token string }
	if err := c.JSON(ctx, "POST", "/v1/auth", body, &out); err != nil {
		return fmt.Errorf("login to %s: %w", c.Endpoint, err)
	}
	c.APIKey, c.Token = out.APIKey, out.Token
	return nil
}

// Do sends a request with an optional raw body and returns the response
// with its body read. Statuses >= 400 become *Error.
func (c *Client) Do(ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Endpoint+path, body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.APIKey != "" {
		req.Header.Set("X-Soracom-API-Key", c.APIKey)
		req.Header.Set("X-Soracom-Token", c.Token)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return res, nil, err
	}
	if res.StatusCode >= 400 {
		e := &Error{Status: res.StatusCode}
		_ = json.Unmarshal(b, e)
		return res, b, e
	}
	return res, b, nil
}

// JSON sends in (if not nil) as JSON and decodes the answer into out (if not nil).
func (c *Client) JSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	h := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
		h.Set("Content-Type", "application/json")
	}
	_, b, err := c.Do(ctx, method, path, body, h)
	if err != nil {
		return err
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}
