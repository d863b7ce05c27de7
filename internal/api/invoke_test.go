package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// echoOp answers with what its handler saw.
func echoOp(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	p := PrincipalFrom(r.Context())
	user := "<none>"
	if p != nil {
		user = p.OperatorID + "/" + p.UserName
	}
	w.Header().Set("X-Seen", "yes")
	WriteJSON(w, http.StatusOK, map[string]string{
		"method": r.Method, "path": r.URL.Path, "rawPath": r.URL.EscapedPath(), "query": r.URL.RawQuery,
		"id": r.PathValue("device_id"), "rest": r.PathValue("path"), "op": r.PathValue("operator_id"),
		"body": string(b), "contentType": r.Header.Get("Content-Type"), "user": user,
	})
}

func TestInvoke(t *testing.T) {
	rt := NewRouter(fakeAuth{deny: "Dev:denied"}, nil)
	rt.Handle(Op{Name: "Dev:get", Method: "GET", Path: "/v1/devices/{device_id}", Handler: echoOp})
	rt.Handle(Op{Name: "Dev:post", Method: "POST", Path: "/v1/devices/{device_id}/x", Handler: echoOp})
	rt.Handle(Op{Name: "Dev:denied", Method: "GET", Path: "/v1/denied", Handler: echoOp})
	rt.Handle(Op{Name: "Dev:op", Method: "GET", Path: "/v1/operators/{operator_id}/things", Handler: echoOp})
	rt.Handle(Op{Name: "File:get", Method: "GET", Path: "/v1/files/{scope}/{path...}", Handler: echoOp})
	rt.Handle(Op{Name: "File:list", Method: "GET", Path: "/v1/files/{scope}/{path...}", Match: func(r *http.Request) bool {
		return strings.HasSuffix(r.PathValue("path"), "/")
	}, Handler: func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, 200, map[string]string{"list": r.PathValue("path")})
	}})
	rt.Handle(Op{Name: "Open:ping", Method: "GET", Path: "/v1/ping", Auth: AuthNone, Handler: echoOp})
	rt.Handle(Op{Name: "X:boom", Method: "GET", Path: "/v1/boom", Handler: func(http.ResponseWriter, *http.Request) { panic("boom") }})
	rt.Handle(Op{Name: "X:big", Method: "GET", Path: "/v1/big", Handler: func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			if _, err := w.Write([]byte(strings.Repeat("z", 10))); err != nil {
				return
			}
		}
	}})

	ctx := context.Background()
	p := &Principal{OperatorID: "OP9", UserName: "flow"}
	cases := []struct {
		name   string
		op     string
		path   map[string]string
		query  url.Values
		body   string
		status int
		want   map[string]string
	}{
		{"placeholder", "Dev:get", map[string]string{"device_id": "d-1"}, url.Values{"a": {"1 2"}}, "", 200,
			map[string]string{"method": "GET", "path": "/v1/devices/d-1", "id": "d-1", "query": "a=1+2", "user": "OP9/flow", "contentType": ""}},
		{"escaped placeholder", "Dev:get", map[string]string{"device_id": "a b/c?"}, nil, "", 200,
			map[string]string{"rawPath": "/v1/devices/a%20b%2Fc%3F", "id": "a b/c?"}},
		{"body", "Dev:post", map[string]string{"device_id": "d-1"}, nil, `{"x":1}`, 200,
			map[string]string{"method": "POST", "body": `{"x":1}`, "contentType": "application/json"}},
		{"operator_id defaults to the caller's", "Dev:op", nil, nil, "", 200, map[string]string{"op": "OP9"}},
		{"wildcard", "File:get", map[string]string{"scope": "private", "path": "//cams//a b.jpg"}, nil, "", 200,
			map[string]string{"rest": "cams/a b.jpg", "rawPath": "/v1/files/private/cams/a%20b.jpg"}},
		{"empty wildcard", "File:list", map[string]string{"scope": "private", "path": ""}, nil, "", 200, map[string]string{"list": ""}},
		{"by name, whatever Match says", "File:get", map[string]string{"scope": "private", "path": "dir/"}, nil, "", 200, map[string]string{"rest": "dir/"}},
		{"denied", "Dev:denied", nil, nil, "", 403, map[string]string{"code": CodeForbidden}},
		{"no auth needed", "Open:ping", nil, nil, "", 200, map[string]string{"user": "<none>"}},
		{"panic", "X:boom", nil, nil, "", 500, map[string]string{"code": CodeInternal}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			status, hdr, b, err := rt.Invoke(ctx, p, c.op, c.path, c.query, body)
			if err != nil || status != c.status {
				t.Fatalf("%d %s %v; want %d", status, b, err, c.status)
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Errorf("header %v", hdr)
			}
			var got map[string]string
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q; want %q (%s)", k, got[k], v, b)
				}
			}
		})
	}
	// The wrapped handler ran: the request was counted.
	if n := testutil.ToFloat64(rt.requests.WithLabelValues("Dev:get", "200")); n != 2 {
		t.Errorf("Dev:get counted %v times", n)
	}

	errs := []struct {
		name string
		op   string
		path map[string]string
		want string
	}{
		{"unknown operation", "Dev:nothing", nil, "Dev:nothing"},
		{"missing parameter", "Dev:get", nil, "device_id is missing"},
		{"empty parameter", "Dev:get", map[string]string{"device_id": ""}, "device_id is empty"},
		{"unknown parameter", "Dev:get", map[string]string{"device_id": "d", "devic_id": "x"}, "devic_id"},
		{"dot segment", "Dev:get", map[string]string{"device_id": ".."}, "device_id"},
		{"dot segment in a wildcard", "File:get", map[string]string{"scope": "private", "path": "a/../../etc"}, ". or .."},
	}
	for _, c := range errs {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := rt.Invoke(ctx, p, c.op, c.path, nil, nil)
			var ae *Error
			if !errors.As(err, &ae) || ae.Status >= 500 || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v; want a 4xx *Error mentioning %q", err, c.want)
			}
		})
	}

	status, _, b, err := rt.InvokeLimit(ctx, p, "X:big", nil, nil, nil, 50)
	if !errors.Is(err, ErrResponseTooLarge) || status != 200 || len(b) != 50 {
		t.Fatalf("over the limit: %d %d bytes %v", status, len(b), err)
	}
	if _, _, b, err := rt.InvokeLimit(ctx, p, "X:big", nil, nil, nil, 100); err != nil || len(b) != 100 {
		t.Fatalf("at the limit: %d bytes %v", len(b), err)
	}
	if _, _, _, err := rt.Invoke(ctx, nil, "Dev:get", map[string]string{"device_id": "d"}, nil, nil); err == nil {
		t.Fatal("no principal: no error")
	}
}

// TestInvokeIsNotHTTP checks that HTTP requests still authenticate: only
// Invoke can name a principal.
func TestInvokeIsNotHTTP(t *testing.T) {
	rt := NewRouter(fakeAuth{}, nil)
	rt.Handle(Op{Name: "Dev:get", Method: "GET", Path: "/v1/devices/{device_id}", Handler: echoOp})
	req, _ := http.NewRequestWithContext(WithPrincipal(context.Background(), &Principal{OperatorID: "OP9"}), "GET", "/v1/devices/d", nil)
	rec := newRecorder()
	rt.ServeHTTP(rec, req)
	if rec.status != 401 {
		t.Fatalf("HTTP without credentials: %d %s", rec.status, rec.buf.String())
	}
}

func newRecorder() *capRecorder { return &capRecorder{header: http.Header{}, max: 1 << 20} }
