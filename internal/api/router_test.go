package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fakeAuth struct{ deny string }

func (f fakeAuth) Authenticate(_ context.Context, key, token string) (*Principal, error) {
	if key != "k" || token != "t" {
		return nil, Unauthenticated("bad token")
	}
	return &Principal{OperatorID: "OP1", UserName: "u", APIKey: key}, nil
}

func (f fakeAuth) Authorize(_ context.Context, _ *Principal, op string, _ *http.Request) error {
	if op == f.deny {
		return Forbidden("no %s", op)
	}
	return nil
}

func name(n string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, 200, map[string]string{"op": n, "path": r.PathValue("path"), "user": PrincipalFrom(r.Context()).UserName})
	}
}

func newTestRouter() *Router {
	rt := NewRouter(fakeAuth{deny: "File:deleteDirectory"}, nil)
	dir := func(r *http.Request) bool { p := r.PathValue("path"); return p == "" || strings.HasSuffix(p, "/") }
	rt.Handle(Op{Name: "File:get", Method: "GET", Path: "/v1/files/{path...}", Handler: name("get")})
	rt.Handle(Op{Name: "File:list", Method: "GET", Path: "/v1/files/{path...}", Match: dir, Handler: name("list")})
	rt.Handle(Op{Name: "File:deleteFile", Method: "DELETE", Path: "/v1/files/{path...}", Handler: name("delete")})
	rt.Handle(Op{Name: "File:deleteDirectory", Method: "DELETE", Path: "/v1/files/{path...}", Match: dir, Handler: name("deleteDir")})
	rt.Handle(Op{Name: "Open:ping", Method: "POST", Path: "/v1/ping", Auth: AuthNone, Handler: func(w http.ResponseWriter, r *http.Request) {
		var v struct{ A int }
		if err := DecodeJSON(w, r, &v, false); err != nil {
			WriteError(w, r, err)
			return
		}
		WriteJSON(w, 200, v)
	}})
	return rt
}

func TestRouter(t *testing.T) {
	rt := newTestRouter()
	cases := []struct {
		method, path, body string
		auth               bool
		status             int
		want               string // substring of the body
	}{
		{"GET", "/v1/files/a/b.jpg", "", true, 200, `"op":"get"`},
		{"GET", "/v1/files/a/", "", true, 200, `"op":"list"`},
		{"GET", "/v1/files//", "", true, 200, `"op":"list","path":""`}, // soracom-cli's root listing
		{"GET", "/v1/files///a//b.jpg", "", true, 200, `"path":"a/b.jpg"`},
		{"DELETE", "/v1/files/a/b.jpg", "", true, 200, `"op":"delete"`},
		{"DELETE", "/v1/files/a/", "", true, 403, `PRM0001`}, // authorized under its own name
		{"GET", "/v1/files/a/../etc/passwd", "", true, 400, `BAD0003`},
		{"GET", "/v1/files/./x", "", true, 400, `BAD0003`},
		{"GET", "/v1/files/a/b.jpg", "", false, 401, `AUT0001`},
		{"GET", "/v1/nothing", "", true, 404, `NTF0001`},
		{"PUT", "/v1/files/a", "", true, 405, `not allowed`},
		{"POST", "/v1/ping", `{"A":1}`, false, 200, `"A":1`},
		{"POST", "/v1/ping", `{"A":"x"}`, false, 400, `field \"A\"`},
		{"POST", "/v1/ping", `{"B":1}`, false, 400, `unknown field`},
		{"POST", "/v1/ping", `{"A":1} {}`, false, 400, `unexpected data`},
		{"POST", "/v1/ping", ``, false, 400, `empty`},
		{"POST", "/v1/ping", `{"A":1,"pad":"` + strings.Repeat("x", DefaultMaxJSON) + `"}`, false, 413, `LRG0001`},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req := httptest.NewRequest(c.method, "http://x"+c.path, strings.NewReader(c.body))
			if c.auth {
				req.Header.Set("X-Soracom-API-Key", "k")
				req.Header.Set("X-Soracom-Token", "t")
			}
			rec := httptest.NewRecorder()
			rt.ServeHTTP(rec, req)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
				t.Fatalf("got %d %s, want %d containing %s", rec.Code, rec.Body, c.status, c.want)
			}
			if rec.Code >= 400 {
				var e Error
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || len(e.Code) != 7 || e.Message == "" {
					t.Fatalf("error body %q is not {code,message}", rec.Body)
				}
			}
		})
	}
}

func TestHandlePanicsOnBadNames(t *testing.T) {
	for _, n := range []string{"nocolon", "lower:op", "Dup:op"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", n)
				}
			}()
			rt := NewRouter(fakeAuth{}, nil)
			rt.Handle(Op{Name: "Dup:op", Method: "GET", Path: "/a", Handler: name("a")})
			rt.Handle(Op{Name: n, Method: "GET", Path: "/b", Handler: name("b")})
		}()
	}
}

func TestHandlerPanicIs500(t *testing.T) {
	rt := NewRouter(fakeAuth{}, nil)
	rt.Handle(Op{Name: "X:boom", Method: "GET", Path: "/v1/boom", Auth: AuthNone, Handler: func(http.ResponseWriter, *http.Request) { panic("boom") }})
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/boom", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "INT0001") || strings.Contains(rec.Body.String(), "boom") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
