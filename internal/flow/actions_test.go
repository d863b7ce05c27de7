package flow

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/bus"
	"github.com/nagare-iot/nagare/internal/coretest"
	"github.com/nagare-iot/nagare/internal/credentials"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/inventory"
)

const (
	actPassword = "pw-Very-Secret-0123"
	actUser     = "flowbot"
)

// actEnv is the platform the actions run against: a real database with
// auth, inventory, credentials, Harvest Files (and Data when asked for)
// behind a real API router.
type actEnv struct {
	op    string
	deps  *Deps
	files *harvest.Files
	store *blob.Store
	creds *credentials.Service
}

func newActEnv(t *testing.T, withData bool) *actEnv {
	t.Helper()
	ctx := t.Context()
	core := coretest.New(t, 1<<20)
	db, op, rt := core.DB, core.OperatorID, core.Router
	inv := inventory.New(db)
	inv.Register(rt)
	e := &actEnv{op: op, store: core.Blobs, files: core.Files, creds: core.Creds}
	e.deps = &Deps{Files: e.files, Credentials: e.creds, Router: rt, HTTP: NewHTTPClient()}
	if withData {
		b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		d, err := harvest.NewData(ctx, db, b, inv, harvest.DataOptions{MaxPublishBytes: 1024, Node: "n1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		d.Register(rt)
		e.deps.Data = d
	}

	// A SAM user for the api action, created through the API as root.
	root := &api.Principal{OperatorID: op}
	e.invoke(t, root, "User:createUser", map[string]string{"user_name": actUser}, nil, 201)
	perm := `{"statements":[{"effect":"allow","api":["Device:*","DataEntry:*","FileEntry:getFileMetadata"]}]}`
	e.invoke(t, root, "User:updateUserPermission", map[string]string{"user_name": actUser}, map[string]any{"permission": perm}, 200)
	return e
}

func (e *actEnv) invoke(t *testing.T, p *api.Principal, op string, path map[string]string, body any, want int) []byte {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	status, _, out, err := e.deps.Router.Invoke(t.Context(), p, op, path, nil, b)
	if err != nil || status != want {
		t.Fatalf("%s: %d %s %v; want %d", op, status, out, err, want)
	}
	return out
}

// run runs an action kind through its registered spec, with the spec's
// defaults applied as the engine does.
func (e *actEnv) run(ctx context.Context, kind string, cfg map[string]any, input any) (any, error) {
	spec := reg.get(reg.actions, kind)
	full := map[string]any{}
	for _, f := range spec.Fields {
		if f.Default != nil {
			full[f.Name] = f.Default
		}
	}
	for k, v := range cfg {
		full[k] = v
	}
	return spec.Run(ctx, &Call{Deps: e.deps, OperatorID: e.op, App: "test", Action: &Action{Name: kind}, Config: full, Input: input, Attempt: 1})
}

// mustFail checks an action error: permanent or retryable, and mentioning
// each of want.
func mustFail(t *testing.T, err error, permanent bool, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one mentioning %q", want)
	}
	if IsPermanent(err) != permanent {
		t.Fatalf("error %q: permanent = %v; want %v", err, IsPermanent(err), permanent)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not mention %q", err, w)
		}
	}
}

// echo answers with what it received, as JSON.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Add("X-Multi", "first")
	w.Header().Add("X-Multi", "second")
	json.NewEncoder(w).Encode(map[string]any{
		"method": r.Method, "body": string(b), "contentType": r.Header.Get("Content-Type"),
		"custom": r.Header.Get("X-Custom"), "authorization": r.Header.Get("Authorization"), "host": r.Host,
	})
}

func TestWebhookAction(t *testing.T) {
	e := newActEnv(t, false)
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "pong")
	})
	mux.HandleFunc("/badjson", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{not json")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	input := map[string]any{"temp": 21.5, "tag": "<a&b>"}
	cases := []struct {
		name   string
		cfg    map[string]any
		want   map[string]any // fields of the echoed request
		result any            // the output body, when not the echo
	}{
		{"input as JSON by default", map[string]any{"url": srv.URL + "/echo"},
			map[string]any{"method": "POST", "body": `{"tag":"<a&b>","temp":21.5}`, "contentType": "application/json"}, nil},
		{"object body", map[string]any{"url": srv.URL + "/echo", "method": "PUT", "body": map[string]any{"n": 1}},
			map[string]any{"method": "PUT", "body": `{"n":1}`}, nil},
		{"string body as is", map[string]any{"url": srv.URL + "/echo", "body": "a=1&b=2", "contentType": "application/x-www-form-urlencoded"},
			map[string]any{"body": "a=1&b=2", "contentType": "application/x-www-form-urlencoded"}, nil},
		{"GET has no body", map[string]any{"url": srv.URL + "/echo", "method": "GET", "body": "ignored"},
			map[string]any{"method": "GET", "body": "", "contentType": ""}, nil},
		{"headers", map[string]any{"url": srv.URL + "/echo", "headers": map[string]string{"x-custom": "v1", "Content-Type": "application/cbor", "Host": "example.test"}},
			map[string]any{"custom": "v1", "contentType": "application/cbor", "host": "example.test"}, nil},
		{"text answer", map[string]any{"url": srv.URL + "/text", "method": "GET"}, nil, "pong"},
		{"JSON that does not parse stays text", map[string]any{"url": srv.URL + "/badjson"}, nil, "{not json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := e.run(t.Context(), "webhook", c.cfg, input)
			if err != nil {
				t.Fatal(err)
			}
			res := out.(map[string]any)
			if res["status"] != 200 {
				t.Fatalf("status %v", res["status"])
			}
			if _, err := json.Marshal(res); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			if c.result != nil {
				if res["body"] != c.result {
					t.Fatalf("body %#v; want %#v", res["body"], c.result)
				}
				return
			}
			got, ok := res["body"].(map[string]any)
			if !ok {
				t.Fatalf("body not parsed: %#v", res["body"])
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %#v; want %#v", k, got[k], v)
				}
			}
			hdr := res["headers"].(map[string]string)
			if hdr["X-Multi"] != "first" || !strings.HasPrefix(hdr["Content-Type"], "application/json") {
				t.Errorf("headers %v", hdr)
			}
		})
	}
}

func TestWebhookBasicAuth(t *testing.T) {
	e := newActEnv(t, false)
	ctx := t.Context()
	for id, in := range map[string]*credentials.Input{
		"hook-basic": {Type: "username-password-credentials", Credentials: map[string]any{"username": "alice", "password": actPassword}},
		"a-psk":      {Type: "psk", Credentials: map[string]any{"key": "k1"}},
	} {
		if _, err := e.creds.Create(ctx, e.op, id, in); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]string{} // server → Authorization it got
	record := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name] = r.Header.Get("Authorization")
			mu.Unlock()
			echo(w, r)
		}
	}
	other := httptest.NewServer(record("other"))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", record("same"))
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/got", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/home", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusFound)
	})
	mux.HandleFunc("/leak", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "bad request; you sent %s", r.Header.Get("Authorization"))
	})
	mux.HandleFunc("/hops/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == 0 {
			echo(w, r)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hops/%d", n-1), http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+actPassword))

	out, err := e.run(ctx, "webhook", map[string]any{"url": srv.URL + "/echo", "basicAuth": "hook-basic"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(map[string]any)["body"].(map[string]any)["authorization"]; got != wantAuth {
		t.Fatalf("server saw Authorization %q", got)
	}

	// A redirect on the same origin keeps the credentials…
	seen = map[string]string{}
	if _, err := e.run(ctx, "webhook", map[string]any{"url": srv.URL + "/home", "basicAuth": "hook-basic"}, nil); err != nil {
		t.Fatal(err)
	}
	if seen["same"] != wantAuth {
		t.Errorf("same-origin redirect: Authorization %q", seen["same"])
	}
	// …a redirect to another host (here: another port of 127.0.0.1,
	// which net/http alone would still trust) drops them, basic auth and
	// an Authorization header alike.
	for _, cfg := range []map[string]any{
		{"url": srv.URL + "/away", "basicAuth": "hook-basic"},
		{"url": srv.URL + "/away", "headers": map[string]string{"Authorization": "Bearer tok-SECRET-123"}},
	} {
		seen = map[string]string{}
		out, err := e.run(ctx, "webhook", cfg, map[string]any{"x": 1})
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := seen["other"]; !ok || a != "" {
			t.Errorf("other host saw Authorization %q (reached: %v)", a, ok)
		}
		if b := out.(map[string]any)["body"].(map[string]any)["body"]; b != `{"x":1}` {
			t.Errorf("307 did not resend the body: %v", b)
		}
	}

	// At most 5 redirects.
	if _, err := e.run(ctx, "webhook", map[string]any{"url": srv.URL + "/hops/5", "method": "GET"}, nil); err != nil {
		t.Fatalf("5 redirects: %v", err)
	}
	_, err = e.run(ctx, "webhook", map[string]any{"url": srv.URL + "/hops/6", "method": "GET"}, nil)
	mustFail(t, err, true, "redirects")

	// Errors never carry the password or the Authorization value, even
	// when the server echoes them.
	for _, cfg := range []map[string]any{
		{"url": srv.URL + "/leak", "basicAuth": "hook-basic"},
		{"url": srv.URL + "/leak", "headers": map[string]string{"authorization": "Bearer tok-SECRET-123"}},
	} {
		_, err := e.run(ctx, "webhook", cfg, nil)
		mustFail(t, err, true, "400", "bad request; you sent")
		for _, s := range []string{actPassword, "tok-SECRET-123", wantAuth[len("Basic "):]} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error leaks %q: %v", s, err)
			}
		}
	}

	_, err = e.run(ctx, "webhook", map[string]any{"url": srv.URL + "/echo", "basicAuth": "nope"}, nil)
	mustFail(t, err, true, `"nope"`, "not found")
	_, err = e.run(ctx, "webhook", map[string]any{"url": srv.URL + "/echo", "basicAuth": "a-psk"}, nil)
	mustFail(t, err, true, `"a-psk"`, "username-password-credentials")
}

func TestWebhookErrors(t *testing.T) {
	e := newActEnv(t, false)
	mux := http.NewServeMux()
	for _, code := range []int{400, 404, 408, 429, 500, 503} {
		mux.HandleFunc(fmt.Sprintf("/status/%d", code), func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			fmt.Fprintf(w, "answer %d %s", code, strings.Repeat("x", 1000))
		})
	}
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("b", 100))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			io.WriteString(w, strings.Repeat("c", 10))
			w.(http.Flusher).Flush()
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	cases := []struct {
		name      string
		cfg       map[string]any
		permanent bool
		want      []string
	}{
		{"400", map[string]any{"url": srv.URL + "/status/400"}, true, []string{"400 Bad Request", "answer 400 xxx"}},
		{"404", map[string]any{"url": srv.URL + "/status/404"}, true, []string{"404"}},
		{"408", map[string]any{"url": srv.URL + "/status/408"}, false, []string{"408"}},
		{"429", map[string]any{"url": srv.URL + "/status/429"}, false, []string{"429"}},
		{"500", map[string]any{"url": srv.URL + "/status/500"}, false, []string{"500"}},
		{"503", map[string]any{"url": srv.URL + "/status/503"}, false, []string{"503 Service Unavailable", "answer 503"}},
		{"over the limit", map[string]any{"url": srv.URL + "/big", "maxResponseBytes": 99}, true, []string{"maxResponseBytes", "99 bytes"}},
		{"over the limit, chunked", map[string]any{"url": srv.URL + "/chunked", "maxResponseBytes": 99}, true, []string{"maxResponseBytes", "99 bytes"}},
		{"connection refused", map[string]any{"url": closed.URL + "/x"}, false, []string{"webhook POST"}},
		{"not http", map[string]any{"url": "ftp://example.com/x"}, true, []string{"http or https"}},
		{"no host", map[string]any{"url": "http:///x"}, true, []string{"no host"}},
		{"unparsable", map[string]any{"url": "http://a b.example/%zz"}, true, []string{"not a valid URL"}},
		{"empty", map[string]any{"url": ""}, true, []string{"url is empty"}},
		{"bad header name", map[string]any{"url": srv.URL + "/big", "headers": map[string]string{"X Bad": "v"}}, true, []string{"X Bad"}},
		{"header with a line break", map[string]any{"url": srv.URL + "/big", "headers": map[string]string{"X-Ok": "a\r\nInjected: 1"}}, true, []string{"X-Ok"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.run(t.Context(), "webhook", c.cfg, nil)
			mustFail(t, err, c.permanent, c.want...)
			if len(err.Error()) > 600 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
	// Exactly at the limit is fine.
	out, err := e.run(t.Context(), "webhook", map[string]any{"url": srv.URL + "/big", "maxResponseBytes": 100}, nil)
	if err != nil || out.(map[string]any)["body"] != strings.Repeat("b", 100) {
		t.Fatalf("%v %v", out, err)
	}
}

func TestWebhookHonoursDeadline(t *testing.T) {
	e := newActEnv(t, false)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := e.run(ctx, "webhook", map[string]any{"url": srv.URL}, nil)
	mustFail(t, err, false, "deadline")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v is not the deadline", err)
	}
}

func TestHarvestAction(t *testing.T) {
	e := newActEnv(t, true)
	ctx := t.Context()
	user := &api.Principal{OperatorID: e.op, UserName: actUser}
	read := func(out any) map[string]any {
		t.Helper()
		res := out.(map[string]any)
		tm, ok := res["time"].(int64)
		if !ok || tm <= 0 {
			t.Fatalf("time %#v", res["time"])
		}
		b := e.invoke(t, user, "DataEntry:getDataEntry", map[string]string{
			"resource_type": res["resourceType"].(string), "resource_id": res["resourceId"].(string), "time": strconv.FormatInt(tm, 10),
		}, nil, 200)
		var entry map[string]any
		if err := json.Unmarshal(b, &entry); err != nil {
			t.Fatal(err)
		}
		return entry
	}
	cases := []struct {
		name         string
		cfg          map[string]any
		input        any
		content, typ string
	}{
		{"input by default", map[string]any{"resourceId": "dev-1"}, map[string]any{"temp": 20}, `{"temp":20}`, "application/json"},
		{"object data", map[string]any{"resourceId": "dev-1", "data": map[string]any{"people": 3}}, "ignored", `{"people":3}`, "application/json"},
		{"text data", map[string]any{"resourceType": "SoraCam", "resourceId": "cam-1", "data": "hello", "contentType": "text/plain"}, nil, "hello", "text/plain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := e.run(ctx, "harvest", c.cfg, c.input)
			if err != nil {
				t.Fatal(err)
			}
			res := out.(map[string]any)
			want := c.cfg["resourceType"]
			if want == nil {
				want = "Device"
			}
			if res["resourceType"] != want || res["resourceId"] != c.cfg["resourceId"] {
				t.Fatalf("output %v", res)
			}
			entry := read(out)
			if entry["content"] != c.content || entry["contentType"] != c.typ {
				t.Fatalf("stored %v", entry)
			}
		})
	}
	_, err := e.run(ctx, "harvest", map[string]any{"resourceId": ""}, nil)
	mustFail(t, err, true, "resourceId")
	_, err = e.run(ctx, "harvest", map[string]any{"resourceId": "dev-1", "data": strings.Repeat("x", 2000)}, nil)
	mustFail(t, err, true, "413", "1024-byte")
}

func TestFilesAction(t *testing.T) {
	e := newActEnv(t, false)
	ctx := t.Context()
	jpeg := strings.Repeat("\xff\xd8jpeg", 100) // 600 bytes
	mux := http.NewServeMux()
	mux.HandleFunc("/snap.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		io.WriteString(w, jpeg)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 6 {
			io.WriteString(w, jpeg[:100])
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/snap.jpg", http.StatusFound) })
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no such snapshot", 404) })
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "try later", 503) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cases := []struct {
		name          string
		cfg           map[string]any
		path, typ     string
		size          int
		meta          map[string]any
		contentPrefix string
	}{
		{"text content", map[string]any{"path": "/notes/a.txt", "content": "hello"}, "/notes/a.txt", "text/plain; charset=utf-8", 5, nil, "hello"},
		{"JSON content", map[string]any{"path": "/notes/b.json", "content": map[string]any{"n": 1}}, "/notes/b.json", "application/json", 7, nil, `{"n":1}`},
		{"content with type and metadata", map[string]any{"path": "/notes/c.csv", "content": "a,b", "contentType": "text/csv",
			"metadata": map[string]string{"Source": "flow", "device": "dev-1"}}, "/notes/c.csv", "text/csv", 3, map[string]any{"source": "flow", "device": "dev-1"}, "a,b"},
		{"download", map[string]any{"path": "/cams/1.jpg", "url": srv.URL + "/snap.jpg", "metadata": map[string]string{"camera": "cam-1"}},
			"/cams/1.jpg", "image/jpeg", 600, map[string]any{"camera": "cam-1"}, "\xff\xd8jpeg"},
		{"download through a redirect, type given", map[string]any{"path": "/cams/2.bin", "url": srv.URL + "/moved", "contentType": "application/x-raw"},
			"/cams/2.bin", "application/x-raw", 600, nil, "\xff\xd8"},
		{"download exactly at maxBytes", map[string]any{"path": "/cams/3.jpg", "url": srv.URL + "/chunked", "maxBytes": 600},
			"/cams/3.jpg", "", 600, nil, "\xff\xd8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := e.run(ctx, "files", c.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			res := out.(map[string]any)
			if res["filePath"] != c.path || res["contentLength"] != float64(c.size) || (c.typ != "" && res["contentType"] != c.typ) {
				t.Fatalf("entry %v", res)
			}
			if fmt.Sprint(res["metadata"]) != fmt.Sprint(c.meta) && !(c.meta == nil && res["metadata"] == nil) {
				t.Fatalf("metadata %#v; want %#v", res["metadata"], c.meta)
			}
			st, err := e.files.Stat(ctx, e.op, c.path)
			if err != nil || st.ContentLength != int64(c.size) {
				t.Fatalf("stat %+v %v", st, err)
			}
			b, err := e.store.Bucket.ReadAll(ctx, e.op+c.path)
			if err != nil || !strings.HasPrefix(string(b), c.contentPrefix) {
				t.Fatalf("content %.20q", b)
			}
		})
	}

	fails := []struct {
		name      string
		cfg       map[string]any
		permanent bool
		want      []string
		path      string // must not exist afterwards
	}{
		{"over maxBytes by Content-Length", map[string]any{"path": "/big/1.jpg", "url": srv.URL + "/snap.jpg", "maxBytes": 599}, true, []string{"maxBytes", "599 bytes"}, "/big/1.jpg"},
		{"over maxBytes while streaming", map[string]any{"path": "/big/2.jpg", "url": srv.URL + "/chunked", "maxBytes": 599}, true, []string{"maxBytes"}, "/big/2.jpg"},
		{"download 404", map[string]any{"path": "/x/1", "url": srv.URL + "/gone"}, true, []string{"404", "no such snapshot"}, "/x/1"},
		{"download 503", map[string]any{"path": "/x/2", "url": srv.URL + "/busy"}, false, []string{"503", "try later"}, "/x/2"},
		{"not http", map[string]any{"path": "/x/3", "url": "file:///etc/passwd"}, true, []string{"http or https"}, "/x/3"},
		{"bad path", map[string]any{"path": "/a/../b", "content": "x"}, true, []string{"BAD0003"}, ""},
		{"bad metadata key", map[string]any{"path": "/x/4", "content": "x", "metadata": map[string]string{"no spaces": "v"}}, true, []string{"metadata key"}, "/x/4"},
		{"file where a directory is", map[string]any{"path": "/notes", "content": "x"}, true, []string{"409", "directory"}, ""},
		{"neither url nor content", map[string]any{"path": "/x/5"}, true, []string{"url or content"}, "/x/5"},
	}
	for _, c := range fails {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.run(ctx, "files", c.cfg, nil)
			mustFail(t, err, c.permanent, c.want...)
			if c.path != "" {
				var ae *api.Error
				if _, err := e.files.Stat(ctx, e.op, c.path); !errors.As(err, &ae) || ae.Status != 404 {
					t.Fatalf("%s exists after the failure: %v", c.path, err)
				}
			}
		})
	}
}

func TestAPIAction(t *testing.T) {
	e := newActEnv(t, false)
	ctx := t.Context()
	if _, _, err := e.files.Put(ctx, e.op, "/cams/a b.txt", "text/plain", strings.NewReader("hi")); err != nil {
		t.Fatal(err)
	}

	out, err := e.run(ctx, "api", map[string]any{"operation": "Device:createDevice", "user": actUser,
		"body": map[string]any{"tags": map[string]any{"name": "lobby"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dev := out.(map[string]any)
	id, _ := dev["device_id"].(string)
	if id == "" {
		t.Fatalf("created %v", dev)
	}
	out, err = e.run(ctx, "api", map[string]any{"operation": "Device:getDevice", "user": actUser, "path": map[string]string{"device_id": id}}, nil)
	if err != nil || out.(map[string]any)["device_id"] != id {
		t.Fatalf("get: %v %v", out, err)
	}
	out, err = e.run(ctx, "api", map[string]any{"operation": "Device:listDevices", "user": actUser, "query": map[string]string{"limit": "1"}}, nil)
	if l, ok := out.([]any); err != nil || !ok || len(l) != 1 {
		t.Fatalf("list: %#v %v", out, err)
	}
	// A {path...} wildcard, with a space to escape.
	out, err = e.run(ctx, "api", map[string]any{"operation": "FileEntry:getFileMetadata", "user": actUser,
		"path": map[string]string{"scope": "private", "path": "/cams/a b.txt"}}, nil)
	if err != nil || out.(map[string]any)["filePath"] != "/cams/a b.txt" {
		t.Fatalf("file metadata: %v %v", out, err)
	}

	fails := []struct {
		name string
		cfg  map[string]any
		want []string
	}{
		{"not allowed", map[string]any{"operation": "Group:createGroup", "user": actUser}, []string{"403", "PRM0001", "not allowed"}},
		{"not found", map[string]any{"operation": "Device:getDevice", "user": actUser, "path": map[string]string{"device_id": "d-none"}}, []string{"404", "NTF0001"}},
		{"bad body", map[string]any{"operation": "Device:createDevice", "user": actUser, "body": map[string]any{"nope": 1}}, []string{"400", "unknown field"}},
		{"missing path parameter", map[string]any{"operation": "Device:getDevice", "user": actUser}, []string{"device_id", "missing"}},
		{"unknown path parameter", map[string]any{"operation": "Device:listDevices", "user": actUser, "path": map[string]string{"devce_id": "x"}}, []string{"devce_id"}},
		{"unknown operation", map[string]any{"operation": "Device:nothing", "user": actUser}, []string{"Device:nothing"}},
		{"unknown user", map[string]any{"operation": "Device:listDevices", "user": "ghost"}, []string{"401", "ghost"}},
		{"root only: Auth", map[string]any{"operation": "Auth:auth", "user": actUser}, []string{"root account"}},
		{"root only: Operator", map[string]any{"operation": "Operator:getOperator", "user": actUser}, []string{"root account"}},
		{"no user", map[string]any{"operation": "Device:listDevices", "user": ""}, []string{"user is required"}},
		{"too large", map[string]any{"operation": "Device:listDevices", "user": actUser, "query": map[string]string{"limit": "1000"}}, []string{"32768 bytes"}},
	}
	// Enough devices for a listing over 32 KiB.
	for range 120 {
		if _, err := e.run(ctx, "api", map[string]any{"operation": "Device:createDevice", "user": actUser,
			"body": map[string]any{"tags": map[string]any{"padding": strings.Repeat("p", 300)}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range fails {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.run(ctx, "api", c.cfg, nil)
			mustFail(t, err, true, c.want...)
		})
	}
}

// TestActionsRegistered checks that every action kind runs real code.
func TestActionsRegistered(t *testing.T) {
	for _, k := range []string{"webhook", "api", "harvest", "files"} {
		s := reg.get(reg.actions, k)
		if s == nil || s.Run == nil {
			t.Fatalf("%s not registered", k)
		}
		_, err := s.Run(t.Context(), &Call{Deps: &Deps{}, Config: map[string]any{}})
		if err != nil && strings.Contains(err.Error(), "not built yet") {
			t.Fatalf("%s: %v", k, err)
		}
	}
}
