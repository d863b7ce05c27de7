// A local fake of the LINE Messaging API for tests: reply and push on the
// API host, message content on the data host (one server serves both
// paths). It checks the bearer token and records every request.
package flow_test

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

	"github.com/nagare-iot/nagare/internal/servertest"
)

type lineRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

type lineFake struct {
	srv     *httptest.Server
	token   string
	content map[string][]byte // message ID → JPEG bytes
	mu      sync.Mutex
	reqs    []lineRequest
	status  int    // answer sends with this status when set
	answer  string // … and this body
}

func newLineFake(t *testing.T, token string) *lineFake {
	f := &lineFake{token: token, content: map[string][]byte{}}
	mux := http.NewServeMux()
	send := func(w http.ResponseWriter, r *http.Request) {
		if !f.record(w, r) {
			return
		}
		f.mu.Lock()
		status, answer := f.status, f.answer
		f.mu.Unlock()
		if status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, answer)
			return
		}
		var req struct{ Messages []json.RawMessage }
		if json.Unmarshal(f.last().Body, &req) != nil || len(req.Messages) == 0 {
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
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// fail makes reply and push answer status and body.
func (f *lineFake) fail(status int, body string) {
	f.mu.Lock()
	f.status, f.answer = status, body
	f.mu.Unlock()
}

// serve makes the data host serve b as a message's content.
func (f *lineFake) serve(id string, b []byte) {
	f.mu.Lock()
	f.content[id] = b
	f.mu.Unlock()
}

// record stores the request; false (after a 401) if the token is wrong.
func (f *lineFake) record(w http.ResponseWriter, r *http.Request) bool {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, lineRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: b})
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"Authentication failed. Confirm that the access token in the authorization header is valid."}`)
		return false
	}
	return true
}

func (f *lineFake) last() lineRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func (f *lineFake) got(path string) []lineRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []lineRequest
	for _, r := range f.reqs {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// lineSigned posts a webhook body signed with secret ("" sends none).
func lineSigned(ts *servertest.TS, path, secret, body string) *servertest.Response {
	h := []string{"Content-Type", "application/json"}
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		h = append(h, "X-Line-Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return ts.Anon().Do("POST", path, body, h...)
}
