package servertest

// LineFake is a local fake of the LINE Messaging API for tests, following
// its documented request and response shapes: reply and push and profiles
// on the API host, message content on the data host (one server serves
// both; point line-api-url and line-data-url at URL). It checks the
// bearer token and records every request.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// LineRequest is one request the fake received.
type LineRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

type LineFake struct {
	URL      string
	srv      *httptest.Server
	token    string
	content  map[string][]byte // message ID → JPEG bytes
	profiles map[string]string // user ID → display name
	mu       sync.Mutex
	reqs     []LineRequest
	status   int    // answer sends with this status when set
	answer   string // … and this body
	times    int    // … this many times (0: until changed)
	header   http.Header
}

// NewLineFake starts a fake that accepts the channel access token token.
func NewLineFake(t testing.TB, token string) *LineFake {
	f := &LineFake{token: token, content: map[string][]byte{}, profiles: map[string]string{}}
	mux := http.NewServeMux()
	send := func(w http.ResponseWriter, r *http.Request) {
		if !f.record(w, r) {
			return
		}
		f.mu.Lock()
		status, answer, header := f.status, f.answer, f.header
		if f.times > 0 {
			if f.times--; f.times == 0 {
				f.status = 0
			}
		}
		f.mu.Unlock()
		if status != 0 {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, answer)
			return
		}
		var req struct{ Messages []json.RawMessage }
		if json.Unmarshal(f.Last().Body, &req) != nil || len(req.Messages) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"message":"The request body has 1 error(s)","details":[{"message":"must be specified","property":"messages"}]}`)
			return
		}
		var sent []map[string]string
		for range req.Messages {
			sent = append(sent, map[string]string{"id": "461230966842064897", "quoteToken": "IStG5h1Tz7b..."})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"sentMessages": sent})
	}
	mux.HandleFunc("POST /v2/bot/message/reply", send)
	mux.HandleFunc("POST /v2/bot/message/push", send)
	mux.HandleFunc("GET /v2/bot/message/{id}/content", func(w http.ResponseWriter, r *http.Request) {
		if !f.record(w, r) {
			return
		}
		f.mu.Lock()
		b, ok := f.content[r.PathValue("id")]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not found"}`)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(b)
	})
	mux.HandleFunc("GET /v2/bot/profile/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !f.record(w, r) {
			return
		}
		f.mu.Lock()
		name, ok := f.profiles[r.PathValue("id")]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not found"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"displayName": name, "userId": r.PathValue("id"), "language": "ja",
			"pictureUrl": "https://profile.line-scdn.net/ch/v2/p/uf9da5ee2b" + r.PathValue("id"), "statusMessage": "Hello, LINE!"})
	})
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// Profile makes the fake know a user (GET /v2/bot/profile/{id}).
func (f *LineFake) Profile(id, displayName string) {
	f.mu.Lock()
	f.profiles[id] = displayName
	f.mu.Unlock()
}

// Fail makes reply and push answer status and body.
func (f *LineFake) Fail(status int, body string) { f.FailTimes(0, status, body) }

// FailTimes makes the next n replies and pushes (0: all) answer status
// and body with headers (name, value pairs).
func (f *LineFake) FailTimes(n, status int, body string, headers ...string) {
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	f.mu.Lock()
	f.status, f.answer, f.times, f.header = status, body, n, h
	f.mu.Unlock()
}

// Serve makes the data host serve b as a message's content.
func (f *LineFake) Serve(id string, b []byte) {
	f.mu.Lock()
	f.content[id] = b
	f.mu.Unlock()
}

// record stores the request; false (after a 401) if the token is wrong.
func (f *LineFake) record(w http.ResponseWriter, r *http.Request) bool {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, LineRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: b})
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"Authentication failed. Confirm that the access token in the authorization header is valid."}`)
		return false
	}
	return true
}

// Last is the latest request.
func (f *LineFake) Last() LineRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

// Got lists the requests to path.
func (f *LineFake) Got(path string) []LineRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []LineRequest
	for _, r := range f.reqs {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// LineSigned posts a webhook body signed with secret ("" sends none), as
// LINE does (X-Line-Signature: base64 HMAC-SHA256 of the body).
func LineSigned(ts *TS, path, secret, body string) *Response {
	h := []string{"Content-Type", "application/json"}
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		h = append(h, "X-Line-Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return ts.Anon().Do("POST", path, body, h...)
}
