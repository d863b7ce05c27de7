package api

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AuthMode says how an operation authenticates its caller.
type AuthMode int

const (
	// AuthToken requires X-Soracom-API-Key and X-Soracom-Token and a
	// permission statement allowing the operation's name.
	AuthToken AuthMode = iota
	// AuthNone: the handler is public or checks its own secret (device
	// publish, login, signed URLs, signed webhooks).
	AuthNone
)

// Op is one named API operation.
type Op struct {
	Name    string // "Service:operation", matched by permission statements
	Method  string
	Path    string // Go 1.22 ServeMux pattern path, e.g. /v1/devices/{device_id}
	Auth    AuthMode
	Summary string // one line for docs
	Handler http.HandlerFunc
	// Match tells apart operations that share Method and Path (e.g. a file
	// GET and a directory listing with a trailing slash): the first
	// operation whose Match is true serves the request; nil matches last.
	Match func(*http.Request) bool
}

// Principal is the authenticated caller of an operation.
type Principal struct {
	OperatorID string
	UserName   string // empty for the operator's root account
	APIKey     string
}

// Root reports whether the caller is the operator's root account.
func (p *Principal) Root() bool { return p.UserName == "" }

// Authenticator resolves API credentials and decides permissions. It is
// implemented by the auth package.
type Authenticator interface {
	Authenticate(ctx context.Context, apiKey, token string) (*Principal, error)
	Authorize(ctx context.Context, p *Principal, op string, r *http.Request) error
}

type ctxKey int

const principalKey ctxKey = 0

// PrincipalFrom returns the caller of an AuthToken operation.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey).(*Principal)
	return p
}

// WithPrincipal attaches p to ctx (used by in-process callers and tests).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

var opNameRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*:[a-z][A-Za-z0-9]*$`)

// Router is the registry of operations and the HTTP handler that serves them.
type Router struct {
	mux    *http.ServeMux
	auth   Authenticator
	ops    []Op
	names  map[string]bool
	shared map[string][]Op // "METHOD PATH" → operations on that pattern
	byName map[string]Op   // name → operation with its wrapped handler (Invoke)

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewRouter creates a router whose metrics are registered with reg.
func NewRouter(auth Authenticator, reg prometheus.Registerer) *Router {
	rt := &Router{
		mux:    http.NewServeMux(),
		auth:   auth,
		names:  map[string]bool{},
		shared: map[string][]Op{},
		byName: map[string]Op{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nagare_http_requests_total", Help: "API requests by operation and status code.",
		}, []string{"op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nagare_http_request_duration_seconds", Help: "API request latency by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op"}),
	}
	if reg != nil {
		reg.MustRegister(rt.requests, rt.duration)
	}
	return rt
}

// Handle registers an operation. Names must be unique and well-formed;
// a mistake here is a programming error, so it panics at start-up.
func (rt *Router) Handle(op Op) {
	if !opNameRE.MatchString(op.Name) {
		panic("api: bad operation name " + op.Name)
	}
	if rt.names[op.Name] {
		panic("api: duplicate operation " + op.Name)
	}
	rt.names[op.Name] = true
	rt.ops = append(rt.ops, op)
	pattern := op.Method + " " + op.Path
	group := rt.shared[pattern]
	// Keep operations with a Match ahead of the catch-all one.
	i := len(group)
	if op.Match != nil {
		for i = 0; i < len(group) && group[i].Match != nil; i++ {
		}
	}
	op.Handler = rt.wrap(op).ServeHTTP
	rt.byName[op.Name] = op
	group = append(group[:i], append([]Op{op}, group[i:]...)...)
	rt.shared[pattern] = group
	if len(group) == 1 {
		rt.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			for _, o := range rt.shared[pattern] {
				if o.Match == nil || o.Match(r) {
					o.Handler(w, r)
					return
				}
			}
			WriteJSON(w, http.StatusNotFound, NotFound("no API operation at %s %s", r.Method, r.URL.Path))
		})
	}
}

// HandleHTTP mounts a plain handler (health, metrics, static files) that is
// not an API operation.
func (rt *Router) HandleHTTP(pattern string, h http.Handler) { rt.mux.Handle(pattern, h) }

// Ops lists the registered operations sorted by name (for docs).
func (rt *Router) Ops() []Op {
	out := append([]Op(nil), rt.ops...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (rt *Router) wrap(op Op) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				slog.ErrorContext(r.Context(), "panic in handler", "op", op.Name, "panic", v)
				if sw.status == 0 {
					WriteJSON(sw, http.StatusInternalServerError, Errorf(http.StatusInternalServerError, CodeInternal, "internal error"))
				}
			}
			rt.requests.WithLabelValues(op.Name, strconv.Itoa(sw.status)).Inc()
			rt.duration.WithLabelValues(op.Name).Observe(time.Since(start).Seconds())
		}()
		if op.Auth == AuthToken {
			// An in-process call (Invoke) names its principal; anything
			// arriving over HTTP authenticates with its headers.
			p := invokedAs(r.Context())
			if p == nil {
				var err error
				p, err = rt.auth.Authenticate(r.Context(), r.Header.Get("X-Soracom-API-Key"), r.Header.Get("X-Soracom-Token"))
				if err != nil {
					WriteError(sw, r, err)
					return
				}
			}
			if err := rt.auth.Authorize(r.Context(), p, op.Name, r); err != nil {
				WriteError(sw, r, err)
				return
			}
			r = r.WithContext(WithPrincipal(r.Context(), p))
		}
		op.Handler(sw, r)
	})
}

// ServeHTTP normalises the path before routing: repeated slashes collapse
// (soracom-cli lists the root as /v1/files/private//) and dot segments are
// refused outright instead of being redirected by ServeMux.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.Contains(p, "//") {
		for strings.Contains(p, "//") {
			p = strings.ReplaceAll(p, "//", "/")
		}
		r.URL.Path = p
		r.URL.RawPath = ""
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			WriteJSON(w, http.StatusBadRequest, Errorf(http.StatusBadRequest, CodeBadPath, "path must not contain . or .. segments"))
			return
		}
	}
	if _, pattern := rt.mux.Handler(r); pattern == "" && strings.HasPrefix(p, "/v1/") {
		// Answer unknown API paths in the API's own error shape.
		if allowed := rt.methodsFor(r); allowed != "" {
			w.Header().Set("Allow", allowed)
			WriteJSON(w, http.StatusMethodNotAllowed, Errorf(http.StatusMethodNotAllowed, CodeBadRequest, "method %s not allowed on %s", r.Method, p))
			return
		}
		WriteJSON(w, http.StatusNotFound, NotFound("no API operation at %s %s", r.Method, p))
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// methodsFor lists the other methods that would match r's path.
func (rt *Router) methodsFor(r *http.Request) string {
	var ms []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := rt.mux.Handler(r2); pat != "" {
			ms = append(ms, m)
		}
	}
	return strings.Join(ms, ", ")
}

// QueryInt parses an optional integer query parameter within [min,max].
func QueryInt(r *http.Request, name string, def, min, max int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, BadRequest("query parameter %s: %q is not an integer", name, s)
	}
	if v < min || v > max {
		return 0, BadRequest("query parameter %s: %d is out of range [%d, %d]", name, v, min, max)
	}
	return v, nil
}
