package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// MaxInvokeResponse is the response body Invoke keeps.
const MaxInvokeResponse = 1 << 20

// ErrResponseTooLarge is wrapped by the error InvokeLimit returns when the
// operation wrote more than the limit.
var ErrResponseTooLarge = errors.New("API response too large")

type invokeKey struct{}

// invokedAs returns the principal of an in-process call. Only Invoke sets
// it (the key is unexported), so HTTP requests can never carry one.
func invokedAs(ctx context.Context) *Principal {
	p, _ := ctx.Value(invokeKey{}).(*Principal)
	return p
}

// Invoke calls the operation named opName in-process as p: no credentials
// are checked, but p must be authorized for the operation exactly as over
// HTTP (AuthNone operations just run). pathParams fill the placeholders
// of the operation's path ({operator_id} defaults to p's operator); query
// and body (JSON, nil for none) complete the request. The handler runs
// with the router's metrics and panic recovery, and its answer is
// returned as it would be sent: errors the operation reports, a denied
// permission included, are a status and a {"code","message"} body, not
// err. err reports a request that could not be made (unknown operation,
// missing path parameter), ctx ending, or a response over
// MaxInvokeResponse bytes.
func (rt *Router) Invoke(ctx context.Context, p *Principal, opName string, pathParams map[string]string, query url.Values, body []byte) (status int, header http.Header, respBody []byte, err error) {
	return rt.InvokeLimit(ctx, p, opName, pathParams, query, body, MaxInvokeResponse)
}

// InvokeLimit is Invoke keeping at most maxBody bytes of the response; a
// longer response is an error wrapping ErrResponseTooLarge (the status,
// header and the first maxBody bytes are returned with it).
func (rt *Router) InvokeLimit(ctx context.Context, p *Principal, opName string, pathParams map[string]string, query url.Values, body []byte, maxBody int) (int, http.Header, []byte, error) {
	if p == nil || p.OperatorID == "" {
		return 0, nil, nil, errors.New("api: Invoke needs a principal with an operator")
	}
	op, ok := rt.byName[opName]
	if !ok {
		return 0, nil, nil, NotFound("no API operation %q", opName)
	}
	path, values, err := fillPath(op.Path, pathParams, p.OperatorID)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %w", opName, err)
	}
	target := "http://localhost" + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, invokeKey{}, p), op.Method, target, rd)
	if err != nil {
		return 0, nil, nil, Invalid("%s: %v", opName, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range values {
		req.SetPathValue(k, v)
	}
	w := &capRecorder{header: http.Header{}, max: maxBody}
	op.Handler(w, req)
	if w.status == 0 {
		w.snap = w.header.Clone()
		w.status = http.StatusOK
	}
	if w.over {
		return w.status, w.snap, w.buf.Bytes(), fmt.Errorf("%w: %s answered more than %d bytes", ErrResponseTooLarge, opName, maxBody)
	}
	if err := ctx.Err(); err != nil && w.status >= 500 {
		// The handler failed because the caller gave up.
		return w.status, w.snap, w.buf.Bytes(), err
	}
	return w.status, w.snap, w.buf.Bytes(), nil
}

// fillPath replaces the wildcards of a ServeMux pattern path with the
// escaped values of params and returns the path with the values the mux
// would have given the handler. A trailing {name...} takes a value with
// slashes, treated as the HTTP router treats a request path (repeated
// slashes collapse, a leading one is dropped).
func fillPath(pattern string, params map[string]string, operatorID string) (string, map[string]string, error) {
	segs := strings.Split(pattern, "/")
	values := map[string]string{}
	used := map[string]bool{}
	var names []string
	for i, seg := range segs {
		if !strings.HasPrefix(seg, "{") || !strings.HasSuffix(seg, "}") {
			continue
		}
		name := seg[1 : len(seg)-1]
		if name == "$" {
			segs[i] = ""
			continue
		}
		rest := strings.HasSuffix(name, "...")
		name = strings.TrimSuffix(name, "...")
		names = append(names, name)
		v, ok := params[name]
		used[name] = ok
		if !ok && name == "operator_id" {
			v, ok = operatorID, true
		}
		if !ok {
			return "", nil, Invalid("path parameter %s is missing (the path is %s)", name, pattern)
		}
		if rest {
			for strings.Contains(v, "//") {
				v = strings.ReplaceAll(v, "//", "/")
			}
			v = strings.TrimPrefix(v, "/")
			parts := strings.Split(v, "/")
			for j, s := range parts {
				if s == "." || s == ".." {
					return "", nil, Errorf(http.StatusBadRequest, CodeBadPath, "path parameter %s must not contain . or .. segments", name)
				}
				parts[j] = url.PathEscape(s)
			}
			segs[i] = strings.Join(parts, "/")
		} else {
			switch v {
			case "":
				return "", nil, Invalid("path parameter %s is empty", name)
			case ".", "..":
				return "", nil, Errorf(http.StatusBadRequest, CodeBadPath, "path parameter %s must not be . or ..", name)
			}
			segs[i] = url.PathEscape(v)
		}
		values[name] = v
	}
	var extra []string
	for k := range params {
		if !used[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		have := "none"
		if len(names) > 0 {
			have = strings.Join(names, ", ")
		}
		return "", nil, Invalid("path parameter %s is not in the path %s (its parameters: %s)", strings.Join(extra, ", "), pattern, have)
	}
	return strings.Join(segs, "/"), values, nil
}

// capRecorder is an in-memory ResponseWriter that keeps at most max bytes
// of the body; writes beyond fail, so a streaming handler stops early.
type capRecorder struct {
	header http.Header
	snap   http.Header // the header as sent with the status
	status int
	buf    bytes.Buffer
	max    int
	over   bool
}

func (w *capRecorder) Header() http.Header { return w.header }

func (w *capRecorder) WriteHeader(status int) {
	if w.status != 0 || status < 200 {
		return
	}
	w.status = status
	w.snap = w.header.Clone()
}

func (w *capRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if room := w.max - w.buf.Len(); len(b) > room {
		w.buf.Write(b[:max(room, 0)])
		w.over = true
		return max(room, 0), ErrResponseTooLarge
	}
	return w.buf.Write(b)
}
