package web

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type mux struct{ *http.ServeMux }

func (m mux) HandleHTTP(p string, h http.Handler) { m.Handle(p, h) }

func TestConsoleFromDir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "assets"), 0o755)
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>console</title>"), 0o644)
	os.WriteFile(filepath.Join(dir, "assets", "app-abc123.js"), []byte("console.log(1)"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("not an asset"), 0o644)
	m := mux{http.NewServeMux()}
	Register(m, dir)

	for _, c := range []struct {
		path, want string
		status     int
		cache      string
	}{
		{"/", "<title>console</title>", 200, "no-cache"},
		{"/index.html", "<title>console</title>", 200, "no-cache"},
		{"/assets/app-abc123.js", "console.log(1)", 200, "immutable"},
		{"/assets/missing.js", "", 404, ""},
		{"/assets/../secret.txt", "", 307, ""}, // ServeMux cleans the path first
		{"/secret.txt", "", 404, ""},
	} {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%s: %d %q, want %d containing %q", c.path, rec.Code, rec.Body.String(), c.status, c.want)
		}
		if c.status == 200 {
			if !strings.Contains(rec.Header().Get("Cache-Control"), c.cache) {
				t.Errorf("%s: Cache-Control %q", c.path, rec.Header().Get("Cache-Control"))
			}
			if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("%s: no CSP", c.path)
			}
		}
	}
}

func TestEmbeddedOrNotBuilt(t *testing.T) {
	m := mux{http.NewServeMux()}
	Register(m, "")
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	switch {
	case rec.Code != 200:
		t.Fatalf("GET /: %d", rec.Code)
	case Built() && !strings.Contains(body, `<div id="app">`):
		t.Fatalf("built console index without the app root: %q", body)
	case !Built() && !strings.Contains(body, "not built"):
		t.Fatalf("unbuilt console page: %q", body)
	}
}
