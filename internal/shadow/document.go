// Package shadow owns device shadows: AWS IoT-compatible documents kept in
// NATS KV, served over NATS/MQTT topics and HTTP.
//
// This file holds the document rules as pure functions (no storage, no
// clock): request parsing and validation, the partial merge, the delta,
// metadata and the response documents of the AWS Device Shadow service.
package shadow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"unicode/utf8"

	"github.com/nagare-iot/nagare/internal/api"
)

// Limits of the AWS Device Shadow service (see docs/shadows.md).
const (
	DefaultMaxStateBytes   = 8192      // desired + reported, metadata excluded
	DefaultMaxRequestBytes = 128 << 10 // an AWS MQTT publish
	DefaultMaxDepth        = 6         // levels inside desired / reported
	MaxClientToken         = 64        // bytes
)

// API error codes of the HTTP operations; MQTT rejections carry the
// numeric AWS code instead.
const (
	CodeInvalidRequest = "SHD0001" // 400: JSON, state, version, clientToken, nesting
	CodeInvalidName    = "SHD0002" // 400: thing or shadow name
	CodeNotFound       = "SHD0003" // 404
	CodeConflict       = "SHD0004" // 409: version conflict
	CodeTooLarge       = "SHD0005" // 413
	CodeEncoding       = "SHD0006" // 415: not UTF-8
	CodeInternal       = "SHD0007" // 500
)

// Error is a rejected request: Code is the AWS status (400, 404, 409,
// 413, 415, 500) published in /…/rejected documents; as an HTTP error it
// unwraps to an *api.Error with one of the SHD codes.
type Error struct {
	Code        int
	Message     string
	ClientToken string
	apiCode     string
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// Unwrap gives the HTTP form, so api.WriteError and callers that classify
// *api.Error (flow actions) treat a shadow rejection like any API error.
func (e *Error) Unwrap() error {
	return &api.Error{Status: e.Code, Code: e.apiCode, Message: e.Message}
}

func newError(code int, apiCode, format string, args ...any) *Error {
	return &Error{Code: code, apiCode: apiCode, Message: fmt.Sprintf(format, args...)}
}

func errInvalid(msg string) *Error { return newError(400, CodeInvalidRequest, "%s", msg) }

// errNotFound is the 404 of a missing shadow (AWS's wording).
func errNotFound(thing, name string) *Error {
	if name == "" {
		name = thing
	}
	return newError(404, CodeNotFound, "No shadow exists with name: '%s'", name)
}

func errConflict() *Error { return newError(409, CodeConflict, "Version conflict") }

func errTooLarge() *Error {
	return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "The payload exceeds the maximum size allowed")
}

func errInternal() *Error { return newError(500, CodeInternal, "Internal service failure") }

var (
	thingNameRE  = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)
	shadowNameRE = regexp.MustCompile(`^[$a-zA-Z0-9:_-]{1,64}$`)
)

// ValidThingName reports whether s is an AWS thing name.
func ValidThingName(s string) bool { return thingNameRE.MatchString(s) }

// ValidShadowName reports whether s is an AWS named-shadow name ("" is
// the classic shadow and is valid too).
func ValidShadowName(s string) bool { return s == "" || shadowNameRE.MatchString(s) }

func checkNames(thing, name string) *Error {
	if !ValidThingName(thing) {
		return newError(400, CodeInvalidName, "Invalid thing name %q: 1-128 characters of a-z, A-Z, 0-9, : _ -", thing)
	}
	if !ValidShadowName(name) {
		return newError(400, CodeInvalidName, "Invalid shadow name %q: 1-64 characters of a-z, A-Z, 0-9, $ : _ -", name)
	}
	return nil
}

// Limits bound a document; zero fields take the AWS defaults.
type Limits struct {
	MaxStateBytes   int
	MaxRequestBytes int
	MaxDepth        int
}

func (l Limits) withDefaults() Limits {
	if l.MaxStateBytes <= 0 {
		l.MaxStateBytes = DefaultMaxStateBytes
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}

// Request is a parsed update request. A section is nil when the request
// does not name it; Clear* says it was given as null (delete the section).
type Request struct {
	Desired, Reported           map[string]any
	ClearDesired, ClearReported bool
	// State is the request's state node as given (echoed by accepted).
	State       map[string]any
	ClientToken string
	Version     *int64
}

// decodeJSON parses b keeping numbers as written (json.Number), so a value
// is stored and echoed exactly.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// clientTokenOf extracts a clientToken from any payload, for echoing in a
// rejection of a request that is otherwise invalid.
func clientTokenOf(b []byte) string {
	var m struct {
		ClientToken any `json:"clientToken"`
	}
	if json.Unmarshal(b, &m) == nil {
		if s, ok := m.ClientToken.(string); ok && len(s) <= MaxClientToken {
			return s
		}
	}
	return ""
}

// ParseUpdate validates an update request document against the AWS rules
// that need no stored document.
func ParseUpdate(b []byte, lim Limits) (*Request, *Error) {
	lim = lim.withDefaults()
	token := clientTokenOf(b)
	fail := func(e *Error) (*Request, *Error) {
		e.ClientToken = token
		return nil, e
	}
	if len(b) > lim.MaxRequestBytes {
		return fail(errTooLarge())
	}
	if !utf8.Valid(b) {
		return fail(newError(415, CodeEncoding, "Unsupported documented encoding; supported encoding is UTF-8"))
	}
	v, err := decodeJSON(b)
	if err != nil {
		return fail(errInvalid("Invalid JSON"))
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return fail(errInvalid("Invalid JSON"))
	}
	req := &Request{}
	if t, present := doc["clientToken"]; present {
		s, ok := t.(string)
		if !ok || len(s) > MaxClientToken {
			return fail(errInvalid("Invalid clientToken"))
		}
		req.ClientToken = s
	}
	if raw, present := doc["version"]; present {
		n, ok := raw.(json.Number)
		if !ok {
			return fail(errInvalid("Invalid version"))
		}
		i, err := n.Int64()
		if err != nil {
			return fail(errInvalid("Invalid version"))
		}
		req.Version = &i
	}
	st, present := doc["state"]
	if !present || st == nil {
		return fail(errInvalid("Missing required node: state"))
	}
	state, ok := st.(map[string]any)
	if !ok {
		return fail(errInvalid("State node must be an object"))
	}
	for k, sec := range state {
		var dst *map[string]any
		var clear *bool
		switch k {
		case "desired":
			dst, clear = &req.Desired, &req.ClearDesired
		case "reported":
			dst, clear = &req.Reported, &req.ClearReported
		default:
			return fail(errInvalid("State contains an invalid node"))
		}
		if sec == nil {
			*clear = true
			continue
		}
		m, ok := sec.(map[string]any)
		if !ok {
			if k == "desired" {
				return fail(errInvalid("Desired node must be an object"))
			}
			return fail(errInvalid("Reported node must be an object"))
		}
		if depth(m) > lim.MaxDepth {
			return fail(errInvalid(fmt.Sprintf("JSON contains too many levels of nesting; maximum is %d", lim.MaxDepth)))
		}
		if nullInArray(m) {
			return fail(errInvalid("State contains an invalid node"))
		}
		*dst = m
	}
	req.State = state
	return req, nil
}

// depth counts the levels of nesting of a value: {"a":1} has one.
func depth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			d = max(d, depth(c))
		}
	case []any:
		for _, c := range x {
			d = max(d, depth(c))
		}
	default:
		return 0
	}
	return d + 1
}

// nullInArray reports an array holding null anywhere (AWS rejects it:
// null means "delete" and has no meaning inside an array).
func nullInArray(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			if nullInArray(c) {
				return true
			}
		}
	case []any:
		for _, c := range x {
			if c == nil || nullInArray(c) {
				return true
			}
		}
	}
	return false
}

// Document is a stored shadow. Deleted marks a tombstone: the shadow is
// gone, but its version carries on if it is created again soon (AWS keeps
// the numbering for 48 hours).
type Document struct {
	State     Sections `json:"state"`
	Metadata  Sections `json:"metadata"`
	Version   int64    `json:"version"`
	Timestamp int64    `json:"timestamp"`
	Deleted   int64    `json:"deleted,omitempty"`
}

// Sections are the desired and reported trees of a state or metadata
// node; an empty section is left out, as AWS does.
type Sections struct {
	Desired  map[string]any `json:"desired,omitempty"`
	Reported map[string]any `json:"reported,omitempty"`
}

// decodeDocument reads a stored document, numbers kept as written.
func decodeDocument(b []byte) (*Document, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	return &d, nil
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case []any:
		out := make([]any, len(x))
		for i, c := range x {
			out[i] = cloneValue(c)
		}
		return out
	}
	return v
}

// Clone is a deep copy.
func (d *Document) Clone() *Document {
	c := *d
	c.State = Sections{Desired: cloneMap(d.State.Desired), Reported: cloneMap(d.State.Reported)}
	c.Metadata = Sections{Desired: cloneMap(d.Metadata.Desired), Reported: cloneMap(d.Metadata.Reported)}
	return &c
}

func leafMeta(ts int64) map[string]any { return map[string]any{"timestamp": ts} }

// metaOf mirrors a request tree: {"timestamp": ts} at every leaf (arrays
// and null are leaves), objects recursed into.
func metaOf(v any, ts int64) any {
	if m, ok := v.(map[string]any); ok {
		out := make(map[string]any, len(m))
		for k, c := range m {
			out[k] = metaOf(c, ts)
		}
		return out
	}
	return leafMeta(ts)
}

// merge applies a partial update to a section and its metadata: objects
// merge recursively, null deletes, anything else (arrays included)
// replaces.
func merge(state, meta, patch map[string]any, ts int64) {
	for k, pv := range patch {
		if pv == nil {
			delete(state, k)
			delete(meta, k)
			continue
		}
		po, isObj := pv.(map[string]any)
		if !isObj {
			state[k] = cloneValue(pv)
			meta[k] = leafMeta(ts)
			continue
		}
		so, wasObj := state[k].(map[string]any)
		mo, _ := meta[k].(map[string]any)
		if !wasObj {
			// A value becomes an object: its old leaf metadata goes too.
			so, mo = map[string]any{}, map[string]any{}
			state[k], meta[k] = so, mo
		} else if mo == nil {
			mo = map[string]any{}
			meta[k] = mo
		}
		merge(so, mo, po, ts)
	}
}

// Apply merges an accepted request into cur (nil or a tombstone: a new
// document) and returns the next document. Version checks are the
// caller's (they depend on tombstone age).
func Apply(cur *Document, req *Request, version, ts int64) *Document {
	next := &Document{Version: version, Timestamp: ts}
	if cur != nil && cur.Deleted == 0 {
		next = cur.Clone()
		next.Version, next.Timestamp = version, ts
	}
	section := func(state, meta *map[string]any, patch map[string]any, clear bool) {
		if clear {
			*state, *meta = nil, nil
			return
		}
		if patch == nil {
			return
		}
		if *state == nil {
			*state, *meta = map[string]any{}, map[string]any{}
		}
		if *meta == nil {
			*meta = map[string]any{}
		}
		merge(*state, *meta, patch, ts)
	}
	section(&next.State.Desired, &next.Metadata.Desired, req.Desired, req.ClearDesired)
	section(&next.State.Reported, &next.Metadata.Reported, req.Reported, req.ClearReported)
	return next
}

// StateSize is what counts against the state limit: desired + reported
// as JSON, metadata excluded.
func StateSize(d *Document) int {
	n := 0
	for _, m := range []map[string]any{d.State.Desired, d.State.Reported} {
		if len(m) > 0 {
			b, _ := json.Marshal(m)
			n += len(b)
		}
	}
	return n
}

// Delta is every desired field that reported does not match: missing,
// different, or (in nested objects) the differing leaves with their path.
func Delta(desired, reported map[string]any) map[string]any {
	out := map[string]any{}
	for k, dv := range desired {
		rv, ok := reported[k]
		if !ok {
			out[k] = cloneValue(dv)
			continue
		}
		dm, dObj := dv.(map[string]any)
		rm, rObj := rv.(map[string]any)
		if dObj && rObj {
			if sub := Delta(dm, rm); len(sub) > 0 {
				out[k] = sub
			}
			continue
		}
		if !equal(dv, rv) {
			out[k] = cloneValue(dv)
		}
	}
	return out
}

// deltaMeta picks the desired metadata of the delta's fields.
func deltaMeta(delta, meta map[string]any) map[string]any {
	out := make(map[string]any, len(delta))
	for k, v := range delta {
		sub, isObj := v.(map[string]any)
		mv, metaObj := meta[k].(map[string]any)
		if isObj && metaObj {
			out[k] = deltaMeta(sub, mv)
		} else if meta[k] != nil {
			out[k] = cloneValue(meta[k])
		}
	}
	return out
}

// equal compares JSON values; numbers by value (1 and 1.0 are equal).
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		p, ok1 := new(big.Float).SetString(string(x))
		q, ok2 := new(big.Float).SetString(string(y))
		return ok1 && ok2 && p.Cmp(q) == 0
	default:
		return a == b
	}
}

// Response documents. Field order follows the AWS examples.

// Accepted is the /update/accepted document: the request's state as
// given, with metadata for exactly those fields.
type Accepted struct {
	State       map[string]any `json:"state"`
	Metadata    map[string]any `json:"metadata"`
	Version     int64          `json:"version"`
	Timestamp   int64          `json:"timestamp"`
	ClientToken string         `json:"clientToken,omitempty"`
}

// AcceptedOf builds the /update/accepted document of req.
func AcceptedOf(req *Request, version, ts int64) *Accepted {
	a := &Accepted{State: map[string]any{}, Metadata: map[string]any{}, Version: version, Timestamp: ts, ClientToken: req.ClientToken}
	for k, v := range req.State {
		a.State[k] = v
		a.Metadata[k] = metaOf(v, ts)
	}
	return a
}

// DeltaDoc is the /update/delta document: the delta itself as state (no
// desired/reported level) and the desired metadata of its fields.
type DeltaDoc struct {
	State       map[string]any `json:"state"`
	Metadata    map[string]any `json:"metadata"`
	Version     int64          `json:"version"`
	Timestamp   int64          `json:"timestamp"`
	ClientToken string         `json:"clientToken,omitempty"`
}

// DeltaOf returns the delta document of d, or nil when desired and
// reported agree.
func DeltaOf(d *Document, ts int64, token string) *DeltaDoc {
	delta := Delta(d.State.Desired, d.State.Reported)
	if len(delta) == 0 {
		return nil
	}
	return &DeltaDoc{State: delta, Metadata: deltaMeta(delta, d.Metadata.Desired), Version: d.Version, Timestamp: ts, ClientToken: token}
}

// Snapshot is a full document inside /update/documents.
type Snapshot struct {
	State    Sections `json:"state"`
	Metadata Sections `json:"metadata"`
	Version  int64    `json:"version"`
}

// SnapshotOf is d as a previous/current snapshot; a missing document (or
// a tombstone) is an empty state at its version.
func SnapshotOf(d *Document) *Snapshot {
	if d == nil {
		return &Snapshot{}
	}
	if d.Deleted != 0 {
		return &Snapshot{Version: d.Version}
	}
	return &Snapshot{State: d.State, Metadata: d.Metadata, Version: d.Version}
}

// Documents is the /update/documents document.
type Documents struct {
	Previous    *Snapshot `json:"previous"`
	Current     *Snapshot `json:"current"`
	Timestamp   int64     `json:"timestamp"`
	ClientToken string    `json:"clientToken,omitempty"`
}

// GetState is the state node of /get/accepted, with the delta.
type GetState struct {
	Desired  map[string]any `json:"desired,omitempty"`
	Reported map[string]any `json:"reported,omitempty"`
	Delta    map[string]any `json:"delta,omitempty"`
}

// GetDoc is the /get/accepted document (and the HTTP GetThingShadow answer).
type GetDoc struct {
	State       GetState `json:"state"`
	Metadata    Sections `json:"metadata"`
	Version     int64    `json:"version"`
	Timestamp   int64    `json:"timestamp"`
	ClientToken string   `json:"clientToken,omitempty"`
}

// GetOf is the /get/accepted document of d.
func GetOf(d *Document, ts int64, token string) *GetDoc {
	g := &GetDoc{State: GetState{Desired: d.State.Desired, Reported: d.State.Reported},
		Metadata: d.Metadata, Version: d.Version, Timestamp: ts, ClientToken: token}
	if delta := Delta(d.State.Desired, d.State.Reported); len(delta) > 0 {
		g.State.Delta = delta
	}
	return g
}

// DeleteDoc is the /delete/accepted document.
type DeleteDoc struct {
	Version     int64  `json:"version"`
	Timestamp   int64  `json:"timestamp"`
	ClientToken string `json:"clientToken,omitempty"`
}

// Rejected is the /…/rejected document.
type Rejected struct {
	Code        int    `json:"code"`
	Message     string `json:"message"`
	Timestamp   int64  `json:"timestamp"`
	ClientToken string `json:"clientToken,omitempty"`
}

// RejectedOf is the rejection document of e.
func RejectedOf(e *Error, ts int64) *Rejected {
	return &Rejected{Code: e.Code, Message: e.Message, Timestamp: ts, ClientToken: e.ClientToken}
}

// marshal encodes a response without HTML escaping (values are echoed as
// the client sent them).
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own types and decoded JSON get here.
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
