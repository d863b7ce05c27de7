// Package web serves nagare's browser console: the TypeScript/Vite app in
// this directory, built into dist/ (npm run build, run by make) and
// embedded in the binary, so the console needs nothing installed.
package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// csp keeps the console to its own origin: scripts and styles from the
// binary only; images may also come from blob: (authenticated downloads)
// and any https/http URL a dashboard's image panel names.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data: https: http:; connect-src 'self' ws: wss:; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"

const notBuilt = `<!doctype html><meta charset="utf-8"><title>nagare</title>
<h1>nagare</h1><p>The web console was not built into this binary. Build it with
<code>make build</code> (needs Node.js 20 and npm), or use the API at <code>/v1</code>.</p>`

// Built reports whether the console was built before compiling.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}

// Register mounts the console: GET / (index.html), GET /p/… (public
// dashboards, the same page without login) and GET /assets/….
// A non-empty dir serves a build from disk instead (config web-dir).
func Register(mux interface {
	HandleHTTP(pattern string, h http.Handler)
}, dir string) {
	c := &console{files: dist, root: "dist"}
	if dir != "" {
		c = &console{files: os.DirFS(dir), root: "."}
	}
	mux.HandleHTTP("GET /{$}", http.HandlerFunc(c.serveIndex))
	mux.HandleHTTP("GET /index.html", http.HandlerFunc(c.serveIndex))
	mux.HandleHTTP("GET /p/{operator}/{name}", http.HandlerFunc(c.serveIndex))
	mux.HandleHTTP("GET /assets/", http.HandlerFunc(c.serveAsset))
}

type console struct {
	files fs.FS
	root  string
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

func (c *console) serveIndex(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	b, err := fs.ReadFile(c.files, path.Join(c.root, "index.html"))
	if err != nil {
		b = []byte(notBuilt)
	}
	w.Write(b)
}

func (c *console) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := path.Clean(strings.TrimPrefix(r.URL.Path, "/"))
	b, err := fs.ReadFile(c.files, path.Join(c.root, name))
	if err != nil || !strings.HasPrefix(name, "assets/") {
		http.NotFound(w, r)
		return
	}
	securityHeaders(w.Header())
	// Vite puts a content hash in every asset name.
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}
