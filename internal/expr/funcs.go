package expr

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm/runtime"
)

// errBudget is wrapped by every error caused by a cost limit.
var errBudget = errors.New("memory budget exceeded")

// meter is the per-evaluation budget for allocations and loop iterations.
// Programs that need one create it at their start (`let $__m = …`).
type meter struct {
	bytes int
	steps int
	start time.Time
}

func (m *meter) charge(fn string, n int) error {
	if n < 0 || n > MaxAlloc-m.bytes {
		m.bytes = MaxAlloc + 1
		return fmt.Errorf("%s: %w (more than %d bytes)", fn, errBudget, MaxAlloc)
	}
	m.bytes += n
	return nil
}

// remaining is what may still be allocated, capped at limit.
func (m *meter) remaining(limit int) int {
	return max(0, min(limit, MaxAlloc-m.bytes))
}

func (m *meter) tick() error {
	m.steps++
	if m.steps == 1 {
		m.start = time.Now()
	}
	if m.steps > MaxSteps {
		return fmt.Errorf("loop limit exceeded: more than %d iterations", MaxSteps)
	}
	if m.steps&63 == 0 && time.Since(m.start) > MaxEvalTime {
		return fmt.Errorf("loop time limit exceeded: more than %s", MaxEvalTime)
	}
	return nil
}

type fnDef struct {
	name  string
	fn    func(args ...any) (any, error)
	types []any
}

type meteredFunc func(m *meter, args []any) (any, error)

// Flux functions that allocate: in phase 2 they take the meter as their
// first argument. Their phase-1 signatures give compile-time arity and type
// checks.
var fluxMetered = map[string]struct {
	fn    meteredFunc
	types []any
}{
	"toUpperCase":   {func(m *meter, a []any) (any, error) { return mapString(m, "toUpperCase", a, strings.ToUpper) }, []any{new(func(string) string)}},
	"toLowerCase":   {func(m *meter, a []any) (any, error) { return mapString(m, "toLowerCase", a, strings.ToLower) }, []any{new(func(string) string)}},
	"jsonParse":     {func(m *meter, a []any) (any, error) { return jsonParse(m, "jsonParse", a) }, []any{new(func(string) any)}},
	"jsonStringify": {func(m *meter, a []any) (any, error) { return jsonStringify(m, "jsonStringify", a) }, []any{new(func(any) string)}},
	"base64":        {func(m *meter, a []any) (any, error) { return encodeBase64(m, "base64", a) }, []any{new(func(string) string)}},
	"base64Decode":  {func(m *meter, a []any) (any, error) { return decodeBase64(m, "base64Decode", a) }, []any{new(func(string) string)}},
	"sumBy":         {sumBy, []any{new(func(any, string, string) map[string]any)}},
	"formatTime":    {formatTime, []any{new(func(any, string, ...string) string)}},
}

// meteredBuiltins replace expr-lang builtins that allocate. In phase 1 the
// builtin itself is used for checking; phase 2 calls these with the meter.
var meteredBuiltins = map[string]meteredFunc{
	"string":     func(m *meter, a []any) (any, error) { return stringOf(m, "string", a) },
	"toJSON":     func(m *meter, a []any) (any, error) { return jsonStringify(m, "toJSON", a) },
	"fromJSON":   func(m *meter, a []any) (any, error) { return jsonParse(m, "fromJSON", a) },
	"toBase64":   func(m *meter, a []any) (any, error) { return encodeBase64(m, "toBase64", a) },
	"fromBase64": func(m *meter, a []any) (any, error) { return decodeBase64(m, "fromBase64", a) },
	"repeat":     repeat,
	"join":       join,
	"replace":    replace,
	"concat":     concat,
	"flatten":    flatten,
	"trim":       postCharged("trim"),
	"trimPrefix": postCharged("trimPrefix"),
	"trimSuffix": postCharged("trimSuffix"),
	"upper":      postCharged("upper"),
	"lower":      postCharged("lower"),
	"split":      postCharged("split"),
	"splitAfter": postCharged("splitAfter"),
	"keys":       postCharged("keys"),
	"values":     postCharged("values"),
	"toPairs":    postCharged("toPairs"),
	"fromPairs":  postCharged("fromPairs"),
	"uniq":       postCharged("uniq"),
	"take":       postCharged("take"),
	"median":     postCharged("median"),
}

// functions lists the functions registered for a phase.
func (c *Compiler) functions(metered bool) []fnDef {
	defs := []fnDef{
		{"now", func(...any) (any, error) { return c.now().UnixMilli(), nil }, []any{new(func() int64)}},
		{opCallNames["startsWith"], fnStartsWith, []any{new(func(string, string) bool)}},
		{opCallNames["endsWith"], fnEndsWith, []any{new(func(string, string) bool)}},
		{"getUTCDayOfWeek", fnDayOfWeek, []any{new(func(any) int)}},
		{"datetimeFromISOString", fnDatetime, []any{new(func(string) int64)}},
	}
	for name, f := range fluxMetered {
		d := fnDef{name: name, fn: withMeter(name, f.fn)}
		if !metered {
			d.types = f.types
		}
		defs = append(defs, d)
	}
	if !metered {
		return defs
	}
	defs = append(defs,
		fnDef{"len", fnLen, []any{new(func(any) int)}},
		fnDef{newMeterFunc, func(...any) (any, error) { return &meter{}, nil }, nil},
		fnDef{addFunc, withMeter("+", add), nil},
		fnDef{tickFunc, withMeter("loop", tick), nil},
	)
	for name, f := range meteredBuiltins {
		defs = append(defs, fnDef{name: name, fn: withMeter(name, f)})
	}
	return defs
}

// withMeter adapts a metered function: it takes the meter from the first
// argument and turns a panic into an error naming the function.
func withMeter(name string, f meteredFunc) func(args ...any) (any, error) {
	return func(args ...any) (out any, err error) {
		defer func() {
			if r := recover(); r != nil {
				out, err = nil, fmt.Errorf("%s: %v", name, r)
			}
		}()
		if len(args) == 0 {
			return nil, fmt.Errorf("%s: internal error: no meter", name)
		}
		m, ok := args[0].(*meter)
		if !ok {
			return nil, fmt.Errorf("%s: internal error: no meter", name)
		}
		return f(m, args[1:])
	}
}

func tick(m *meter, a []any) (any, error) {
	if err := m.tick(); err != nil {
		return nil, err
	}
	return a[0], nil
}

// add is + for operands that may be strings: string concatenation is charged
// to the meter; everything else is expr-lang's own addition.
func add(m *meter, a []any) (any, error) {
	if x, ok := a[0].(string); ok {
		if y, ok := a[1].(string); ok {
			if err := m.charge("+", len(x)+len(y)); err != nil {
				return nil, err
			}
			return x + y, nil
		}
	}
	return runtime.Add(a[0], a[1]), nil // panics on bad operand types; withMeter reports it
}

func wantArgs(fn string, a []any, lo, hi int) error {
	if len(a) < lo || len(a) > hi {
		if lo == hi {
			return fmt.Errorf("%s: expected %d arguments, got %d", fn, lo, len(a))
		}
		return fmt.Errorf("%s: expected %d to %d arguments, got %d", fn, lo, hi, len(a))
	}
	return nil
}

// strArg returns argument i as a string; nil is the empty string.
func strArg(fn string, a []any, i int) (string, error) {
	switch v := a[i].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", fmt.Errorf("%s: argument %d must be a string, got %s", fn, i+1, typeName(a[i]))
}

func fnStartsWith(a ...any) (any, error) { return strPair("startsWith", a, strings.HasPrefix) }
func fnEndsWith(a ...any) (any, error)   { return strPair("endsWith", a, strings.HasSuffix) }

func strPair(fn string, a []any, f func(string, string) bool) (any, error) {
	if err := wantArgs(fn, a, 2, 2); err != nil {
		return nil, err
	}
	s, err := strArg(fn, a, 0)
	if err != nil {
		return nil, err
	}
	p, err := strArg(fn, a, 1)
	if err != nil {
		return nil, err
	}
	return f(s, p), nil
}

func mapString(m *meter, fn string, a []any, f func(string) string) (any, error) {
	if err := wantArgs(fn, a, 1, 1); err != nil {
		return nil, err
	}
	s, err := strArg(fn, a, 0)
	if err != nil {
		return nil, err
	}
	if err := m.charge(fn, len(s)); err != nil {
		return nil, err
	}
	out := f(s)
	if len(out) > len(s) {
		if err := m.charge(fn, len(out)-len(s)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fnLen is len: code points of a string, elements of an array, entries of a
// map; nil has length 0.
func fnLen(a ...any) (any, error) {
	if err := wantArgs("len", a, 1, 1); err != nil {
		return nil, err
	}
	switch v := a[0].(type) {
	case nil:
		return 0, nil
	case string:
		return utf8.RuneCountInString(v), nil
	case []any:
		return len(v), nil
	case map[string]any:
		return len(v), nil
	}
	rv := reflect.ValueOf(a[0])
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.String:
		return utf8.RuneCountInString(rv.String()), nil
	case reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len(), nil
	}
	return nil, fmt.Errorf("len: cannot take the length of %s", typeName(a[0]))
}

// msArg converts a UNIX time in milliseconds (any number, or a time.Time).
func msArg(fn string, v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			break
		}
		return int64(x), nil
	case float32:
		return msArg(fn, float64(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 1<<62 {
			break
		}
		return int64(math.Floor(x)), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		if f, err := x.Float64(); err == nil {
			return msArg(fn, f)
		}
	case time.Time:
		return x.UnixMilli(), nil
	}
	return 0, fmt.Errorf("%s: argument must be a UNIX time in milliseconds, got %s", fn, typeName(v))
}

func fnDayOfWeek(a ...any) (any, error) {
	if err := wantArgs("getUTCDayOfWeek", a, 1, 1); err != nil {
		return nil, err
	}
	ms, err := msArg("getUTCDayOfWeek", a[0])
	if err != nil {
		return nil, err
	}
	return int(time.UnixMilli(ms).UTC().Weekday()), nil
}

// isoLayouts are the ISO-8601 forms datetimeFromISOString accepts. Fractional
// seconds are accepted after the seconds by every layout that has seconds;
// a value without a zone is UTC.
var isoLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05Z07",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

func fnDatetime(a ...any) (any, error) {
	const fn = "datetimeFromISOString"
	if err := wantArgs(fn, a, 1, 1); err != nil {
		return nil, err
	}
	s, ok := a[0].(string)
	if !ok {
		return nil, fmt.Errorf("%s: argument must be a string, got %s", fn, typeName(a[0]))
	}
	t := strings.TrimSpace(s)
	for _, layout := range isoLayouts {
		if ts, err := time.Parse(layout, t); err == nil {
			return ts.UnixMilli(), nil
		}
	}
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return nil, fmt.Errorf("%s: cannot parse %q as an ISO-8601 date-time", fn, s)
}

func jsonParse(m *meter, fn string, a []any) (any, error) {
	if err := wantArgs(fn, a, 1, 1); err != nil {
		return nil, err
	}
	var s string
	switch v := a[0].(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return nil, fmt.Errorf("%s: argument must be a string, got %s", fn, typeName(a[0]))
	}
	// The decoded value is a small multiple of the text.
	if err := m.charge(fn, 2*len(s)); err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %v", fn, err)
	}
	return v, nil
}

func jsonStringify(m *meter, fn string, a []any) (any, error) {
	if err := wantArgs(fn, a, 1, 1); err != nil {
		return nil, err
	}
	w := newLimitBuf(m.remaining(MaxOutput))
	if err := writeJSON(w, a[0], 0); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if err := m.charge(fn, w.Len()); err != nil {
		return nil, err
	}
	return w.String(), nil
}

func stringOf(m *meter, fn string, a []any) (any, error) {
	if err := wantArgs(fn, a, 1, 1); err != nil {
		return nil, err
	}
	if s, ok := a[0].(string); ok {
		return s, nil
	}
	w := newLimitBuf(m.remaining(MaxOutput))
	if err := writeText(w, a[0]); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if err := m.charge(fn, w.Len()); err != nil {
		return nil, err
	}
	return w.String(), nil
}

func encodeBase64(m *meter, fn string, a []any) (any, error) {
	if err := wantArgs(fn, a, 1, 1); err != nil {
		return nil, err
	}
	s, err := strArg(fn, a, 0)
	if err != nil {
		return nil, err
	}
	if err := m.charge(fn, base64.StdEncoding.EncodedLen(len(s))); err != nil {
		return nil, err
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

var base64Encodings = []*base64.Encoding{
	base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
}

func decodeBase64(m *meter, fn string, a []any) (any, error) {
	if err := wantArgs(fn, a, 1, 1); err != nil {
		return nil, err
	}
	s, err := strArg(fn, a, 0)
	if err != nil {
		return nil, err
	}
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if err := m.charge(fn, len(s)); err != nil {
		return nil, err
	}
	var firstErr error
	for _, enc := range base64Encodings {
		b, err := enc.DecodeString(s)
		if err == nil {
			return string(b), nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("%s: invalid base64: %v", fn, firstErr)
}

func intArg(fn string, a []any, i int) (int, error) {
	switch v := a[i].(type) {
	case int:
		return v, nil
	case int64:
		if v == int64(int(v)) {
			return int(v), nil
		}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int(v), nil
		}
	default:
		rv := reflect.ValueOf(v)
		if rv.CanInt() {
			return int(rv.Int()), nil
		}
		if rv.CanUint() && rv.Uint() < 1<<53 {
			return int(rv.Uint()), nil
		}
	}
	return 0, fmt.Errorf("%s: argument %d must be an integer, got %s", fn, i+1, typeName(a[i]))
}

func repeat(m *meter, a []any) (any, error) {
	if err := wantArgs("repeat", a, 2, 2); err != nil {
		return nil, err
	}
	s, err := strArg("repeat", a, 0)
	if err != nil {
		return nil, err
	}
	n, err := intArg("repeat", a, 1)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("repeat: count must not be negative, got %d", n)
	}
	if n > 0 && len(s) > MaxAlloc/n {
		return nil, m.charge("repeat", -1)
	}
	if err := m.charge("repeat", len(s)*n); err != nil {
		return nil, err
	}
	return strings.Repeat(s, n), nil
}

func join(m *meter, a []any) (any, error) {
	if err := wantArgs("join", a, 1, 2); err != nil {
		return nil, err
	}
	sep := ""
	if len(a) == 2 {
		var err error
		if sep, err = strArg("join", a, 1); err != nil {
			return nil, err
		}
	}
	rv := reflect.ValueOf(a[0])
	if a[0] == nil {
		return "", nil
	}
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("join: argument 1 must be an array, got %s", typeName(a[0]))
	}
	w := newLimitBuf(m.remaining(MaxAlloc))
	for i := 0; i < rv.Len(); i++ {
		if i > 0 {
			w.WriteString(sep)
		}
		if err := writeText(w, rv.Index(i).Interface()); err != nil {
			if errors.Is(err, errOutput) {
				return nil, m.charge("join", -1)
			}
			return nil, fmt.Errorf("join: %w", err)
		}
	}
	if err := m.charge("join", w.Len()); err != nil {
		return nil, err
	}
	return w.String(), nil
}

func replace(m *meter, a []any) (any, error) {
	if err := wantArgs("replace", a, 3, 3); err != nil {
		return nil, err
	}
	var s [3]string
	for i := range s {
		var err error
		if s[i], err = strArg("replace", a, i); err != nil {
			return nil, err
		}
	}
	n := strings.Count(s[0], s[1])
	size := len(s[0]) + n*(len(s[2])-len(s[1]))
	if n > 0 && len(s[2]) > MaxAlloc/n {
		size = -1
	}
	if err := m.charge("replace", size); err != nil {
		return nil, err
	}
	return strings.ReplaceAll(s[0], s[1], s[2]), nil
}

func concat(m *meter, a []any) (any, error) {
	total := 0
	for i, x := range a {
		rv := reflect.ValueOf(x)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			return nil, fmt.Errorf("concat: argument %d must be an array, got %s", i+1, typeName(x))
		}
		total += rv.Len()
	}
	if err := m.charge("concat", 16*total); err != nil {
		return nil, err
	}
	return callBuiltin("concat", a)
}

func flatten(m *meter, a []any) (any, error) {
	if err := wantArgs("flatten", a, 1, 1); err != nil {
		return nil, err
	}
	limit := m.remaining(MaxAlloc) / 16
	n := countLeaves(reflect.ValueOf(a[0]), limit+1, 0)
	if err := m.charge("flatten", 16*n); err != nil {
		return nil, err
	}
	return callBuiltin("flatten", a)
}

// countLeaves counts the non-array elements of nested arrays, stopping at
// limit.
func countLeaves(v reflect.Value, limit, depth int) int {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return 1
	}
	if depth > maxDepth {
		return limit
	}
	n := 0
	for i := 0; i < v.Len() && n < limit; i++ {
		n += countLeaves(v.Index(i), limit-n, depth+1)
	}
	return n
}

// postCharged wraps a builtin whose result is at most a small multiple of
// its input: the result is charged after the call.
func postCharged(name string) meteredFunc {
	return func(m *meter, a []any) (any, error) {
		out, err := callBuiltin(name, a)
		if err != nil {
			return nil, err
		}
		if err := m.charge(name, sizeOf(out)); err != nil {
			return nil, err
		}
		return out, nil
	}
}

// callBuiltin calls an expr-lang builtin by name. Builtins assume the
// arguments were type-checked; a panic becomes an error naming the function.
func callBuiltin(name string, a []any) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%s: %v", name, r)
		}
	}()
	f := builtin.Builtins[builtin.Index[name]]
	for i, x := range a {
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && !rv.IsNil() {
			a[i] = rv.Elem().Interface()
		}
	}
	switch {
	case f.Fast != nil && len(a) == 1:
		return f.Fast(a[0]), nil
	case f.Func != nil:
		out, err = f.Func(a...)
	case f.Safe != nil:
		out, _, err = f.Safe(a...)
	default:
		return nil, fmt.Errorf("%s: cannot be called here", name)
	}
	if err != nil && !strings.Contains(err.Error(), name) {
		err = fmt.Errorf("%s: %w", name, err)
	}
	return out, err
}

// sizeOf estimates the bytes a freshly built value occupies, not counting
// elements shared with its inputs.
func sizeOf(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []byte:
		return len(v)
	case []any:
		return 16 * len(v)
	case []string:
		return 16 * len(v)
	case map[string]any:
		return 48 * len(v)
	case nil, bool, int, int64, float64:
		return 8
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		return 16 * rv.Len()
	case reflect.Map:
		return 48 * rv.Len()
	}
	return 16
}

// sumBy totals a list of objects by one of their keys:
// sumBy(faces' emotions, "Type", "Confidence") → {"HAPPY": 190.2, "SAD": 4.1, …}.
// Objects without the key, or whose value is not a number, are skipped.
func sumBy(m *meter, a []any) (any, error) {
	if err := wantArgs("sumBy", a, 3, 3); err != nil {
		return nil, err
	}
	key, err := strArg("sumBy", a, 1)
	if err != nil {
		return nil, err
	}
	val, err := strArg("sumBy", a, 2)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if a[0] == nil {
		return out, nil
	}
	rv := reflect.ValueOf(a[0])
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("sumBy: argument 1 must be an array, got %s", typeName(a[0]))
	}
	for i := 0; i < rv.Len(); i++ {
		if err := m.tick(); err != nil {
			return nil, err
		}
		obj, ok := rv.Index(i).Interface().(map[string]any)
		if !ok {
			continue
		}
		k, ok := obj[key].(string)
		if !ok {
			if obj[key] == nil {
				continue
			}
			k = fmt.Sprint(obj[key])
		}
		f, ok := number(obj[val])
		if !ok {
			continue
		}
		prev, seen := out[k].(float64)
		if !seen {
			if err := m.charge("sumBy", len(k)+32); err != nil {
				return nil, err
			}
		}
		out[k] = prev + f
	}
	return out, nil
}

// number is v as a float64 when it is a number.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// formatTime formats a moment with a strftime-style layout, in UTC or in
// an IANA time zone: formatTime(ms, "%Y/%m/%d/cam_%Y%m%d_%H%M%S_%L.jpg",
// "Asia/Tokyo"). The moment is UNIX ms (as now() gives), an ISO-8601 string
// or a time (date(…)); an empty or null zone is UTC. Directives: %Y %y %m
// %d %e %j %H %I %M %S %L (ms) %f (µs) %p %a %A %b %B %z (+0900) %:z
// (+09:00) %Z (JST) %s (UNIX seconds) %F (%Y-%m-%d) %T (%H:%M:%S) %%.
func formatTime(m *meter, a []any) (any, error) {
	const fn = "formatTime"
	if err := wantArgs(fn, a, 2, 3); err != nil {
		return nil, err
	}
	var t time.Time
	switch v := a[0].(type) {
	case string:
		ms, err := fnDatetime(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", fn, strings.TrimPrefix(err.Error(), "datetimeFromISOString: "))
		}
		t = time.UnixMilli(ms.(int64))
	case time.Time:
		t = v
	default:
		ms, err := msArg(fn, a[0])
		if err != nil {
			return nil, err
		}
		t = time.UnixMilli(ms)
	}
	layout, err := strArg(fn, a, 1)
	if err != nil {
		return nil, err
	}
	loc := time.UTC
	if len(a) == 3 {
		name, err := strArg(fn, a, 2)
		if err != nil {
			return nil, err
		}
		if loc, err = location(name); err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
	}
	// The output is at most a few times the layout: charge the layout
	// first, the rest once it is known.
	if err := m.charge(fn, len(layout)); err != nil {
		return nil, err
	}
	w := newLimitBuf(m.remaining(MaxOutput))
	if err := strftime(w, t.In(loc), layout); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if w.err != nil {
		return nil, fmt.Errorf("%s: %w", fn, w.err)
	}
	if n := w.Len() - len(layout); n > 0 {
		if err := m.charge(fn, n); err != nil {
			return nil, err
		}
	}
	return w.String(), nil
}

// locations caches loaded time zones by name (only names that loaded, so
// the cache is bounded by the zone database).
var locations sync.Map // string → *time.Location

func location(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	// Local would be the server's zone, which differs between nodes.
	if len(name) > 64 || name == "Local" {
		return nil, fmt.Errorf("%q is not an IANA time zone", truncate(name, 64))
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone (such as Asia/Tokyo or UTC)", name)
	}
	locations.Store(name, l)
	return l, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func pad(w *limitBuf, v, width int) {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		w.putByte('0')
	}
	w.WriteString(s)
}

// strftime writes t formatted with a strftime-style layout.
func strftime(w *limitBuf, t time.Time, layout string) error {
	for i := 0; i < len(layout) && w.err == nil; i++ {
		c := layout[i]
		if c != '%' {
			w.putByte(c)
			continue
		}
		i++
		if i == len(layout) {
			return errors.New("layout ends with a lone %")
		}
		switch layout[i] {
		case 'Y':
			pad(w, t.Year(), 4)
		case 'y':
			pad(w, t.Year()%100, 2)
		case 'm':
			pad(w, int(t.Month()), 2)
		case 'd':
			pad(w, t.Day(), 2)
		case 'e':
			if t.Day() < 10 {
				w.putByte(' ')
			}
			pad(w, t.Day(), 1)
		case 'j':
			pad(w, t.YearDay(), 3)
		case 'H':
			pad(w, t.Hour(), 2)
		case 'I':
			pad(w, (t.Hour()+11)%12+1, 2)
		case 'M':
			pad(w, t.Minute(), 2)
		case 'S':
			pad(w, t.Second(), 2)
		case 'L':
			pad(w, t.Nanosecond()/1e6, 3)
		case 'f':
			pad(w, t.Nanosecond()/1e3, 6)
		case 'p':
			w.WriteString(t.Format("PM"))
		case 'a':
			w.WriteString(t.Format("Mon"))
		case 'A':
			w.WriteString(t.Format("Monday"))
		case 'b':
			w.WriteString(t.Format("Jan"))
		case 'B':
			w.WriteString(t.Format("January"))
		case 'z':
			w.WriteString(t.Format("-0700"))
		case ':':
			if i+1 < len(layout) && layout[i+1] == 'z' {
				i++
				w.WriteString(t.Format("-07:00"))
				continue
			}
			return errors.New("unknown directive %: (did you mean %:z?)")
		case 'Z':
			w.WriteString(t.Format("MST"))
		case 's':
			w.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'F':
			w.WriteString(t.Format("2006-01-02"))
		case 'T':
			w.WriteString(t.Format("15:04:05"))
		case '%':
			w.putByte('%')
		default:
			r, _ := utf8.DecodeRuneInString(layout[i:])
			return fmt.Errorf("unknown directive %%%c (see the list in docs/flows.md)", r)
		}
	}
	return nil
}
