package expr

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDepth bounds the nesting of values written as JSON (and so cycles).
const maxDepth = 200

// errOutput is wrapped by output-size errors.
var errOutput = errors.New("output too large")

// Escaper adapts stringified values to where the text goes.
type Escaper func(string) string

var (
	// NoEscape leaves text as it is.
	NoEscape Escaper = func(s string) string { return s }
	// JSONString escapes text for the inside of a JSON string literal
	// (quotes, backslashes, control characters, U+2028/U+2029; invalid
	// UTF-8 becomes U+FFFD). It does not add the surrounding quotes.
	JSONString Escaper = func(s string) string {
		if !needsJSONEscape(s) {
			return s
		}
		return string(appendJSONEscaped(nil, s))
	}
	// URLQuery escapes text for a URL query parameter (url.QueryEscape).
	URLQuery Escaper = url.QueryEscape
	// URLPath escapes text for a URL path segment (url.PathEscape).
	URLPath Escaper = url.PathEscape
	// SlackText escapes &, < and > as Slack requires, so that values cannot
	// inject mentions (<!channel>) or links.
	SlackText Escaper = slackReplacer.Replace
)

var slackReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// limitBuf is a byte buffer that refuses to grow past max.
type limitBuf struct {
	b   []byte
	max int
	err error
}

func newLimitBuf(max int) *limitBuf { return &limitBuf{max: max} }

func (w *limitBuf) check() bool {
	if w.err != nil {
		return false
	}
	if len(w.b) > w.max {
		w.b = w.b[:w.max]
		w.err = fmt.Errorf("%w: more than %d bytes", errOutput, w.max)
		return false
	}
	return true
}

func (w *limitBuf) WriteString(s string) {
	if w.err != nil {
		return
	}
	if len(s) > w.max-len(w.b) {
		w.b = append(w.b, s[:w.max-len(w.b)+1]...)
	} else {
		w.b = append(w.b, s...)
	}
	w.check()
}

func (w *limitBuf) putByte(c byte) {
	if w.err == nil {
		w.b = append(w.b, c)
		w.check()
	}
}

func (w *limitBuf) Len() int       { return len(w.b) }
func (w *limitBuf) String() string { return string(w.b) }

// textOf stringifies a value for a template: a string as it is, nil as "",
// numbers without exponents up to 1e21, time.Time in RFC 3339, maps, arrays
// and structs as compact JSON.
func textOf(v any, max int) (string, error) {
	if s, ok := v.(string); ok {
		if len(s) > max {
			return "", fmt.Errorf("%w: more than %d bytes", errOutput, max)
		}
		return s, nil
	}
	w := newLimitBuf(max)
	if err := writeText(w, v); err != nil {
		return "", err
	}
	return w.String(), nil
}

func writeText(w *limitBuf, v any) error {
	switch x := v.(type) {
	case nil:
	case string:
		w.WriteString(x)
	case bool:
		w.b = strconv.AppendBool(w.b, x)
	case int:
		w.b = strconv.AppendInt(w.b, int64(x), 10)
	case int64:
		w.b = strconv.AppendInt(w.b, x, 10)
	case float64:
		w.b = appendTextFloat(w.b, x, 64)
	case json.Number:
		w.WriteString(string(x))
	case time.Time:
		w.b = x.AppendFormat(w.b, time.RFC3339Nano)
	case time.Duration:
		w.WriteString(x.String())
	case []byte:
		w.WriteString(string(x))
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.String:
			w.WriteString(rv.String())
		case reflect.Bool:
			w.b = strconv.AppendBool(w.b, rv.Bool())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			w.b = strconv.AppendInt(w.b, rv.Int(), 10)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			w.b = strconv.AppendUint(w.b, rv.Uint(), 10)
		case reflect.Float32:
			w.b = appendTextFloat(w.b, rv.Float(), 32)
		case reflect.Float64:
			w.b = appendTextFloat(w.b, rv.Float(), 64)
		case reflect.Pointer, reflect.Interface:
			if rv.IsNil() {
				return w.err
			}
			if _, ok := v.(json.Marshaler); !ok {
				return writeText(w, rv.Elem().Interface())
			}
			return writeJSON(w, v, 0)
		default:
			return writeJSON(w, v, 0)
		}
	}
	w.check()
	return w.err
}

// appendTextFloat formats like JavaScript's String(n): NaN, Infinity, and
// otherwise the JSON form.
func appendTextFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	return appendJSONFloat(b, f, bits)
}

// appendJSONFloat is encoding/json's float format: shortest representation,
// no exponent for 1e-6 <= |f| < 1e21.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// writeJSON writes v as compact JSON. Map keys are sorted; NaN and
// infinities become null; time.Time is an RFC 3339 string, time.Duration a
// string such as "1m30s", []byte base64 (as encoding/json).
func writeJSON(w *limitBuf, v any, depth int) error {
	if w.err != nil {
		return w.err
	}
	if depth > maxDepth {
		return fmt.Errorf("value nested deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		w.WriteString("null")
	case bool:
		w.b = strconv.AppendBool(w.b, x)
	case string:
		writeJSONString(w, x)
	case int:
		w.b = strconv.AppendInt(w.b, int64(x), 10)
	case int64:
		w.b = strconv.AppendInt(w.b, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			w.WriteString("null")
		} else {
			w.b = appendJSONFloat(w.b, x, 64)
		}
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err == nil && json.Valid([]byte(x)) {
			w.WriteString(string(x))
		} else {
			writeJSONString(w, string(x))
		}
	case time.Time:
		w.putByte('"')
		w.b = x.AppendFormat(w.b, time.RFC3339Nano)
		w.putByte('"')
	case time.Duration:
		writeJSONString(w, x.String())
	case []byte:
		w.putByte('"')
		if base64.StdEncoding.EncodedLen(len(x)) > w.max-len(w.b) {
			w.b = append(w.b, make([]byte, w.max-len(w.b)+1)...)
		} else {
			w.b = base64.StdEncoding.AppendEncode(w.b, x)
		}
		w.putByte('"')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		w.putByte('{')
		for i, k := range keys {
			if i > 0 {
				w.putByte(',')
			}
			writeJSONString(w, k)
			w.putByte(':')
			if err := writeJSON(w, x[k], depth+1); err != nil {
				return err
			}
		}
		w.putByte('}')
	case []any:
		w.putByte('[')
		for i, e := range x {
			if i > 0 {
				w.putByte(',')
			}
			if err := writeJSON(w, e, depth+1); err != nil {
				return err
			}
		}
		w.putByte(']')
	case json.Marshaler:
		return writeMarshaler(w, x)
	default:
		return writeJSONReflect(w, reflect.ValueOf(v), depth)
	}
	w.check()
	return w.err
}

func writeMarshaler(w *limitBuf, m json.Marshaler) error {
	if rv := reflect.ValueOf(m); rv.Kind() == reflect.Pointer && rv.IsNil() {
		w.WriteString("null")
		return w.err
	}
	b, err := json.Marshal(m) // validates and compacts MarshalJSON's output
	if err != nil {
		return err
	}
	w.WriteString(string(b))
	return w.err
}

func writeJSONReflect(w *limitBuf, rv reflect.Value, depth int) error {
	switch rv.Kind() {
	case reflect.Invalid:
		w.WriteString("null")
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			w.WriteString("null")
			break
		}
		return writeJSON(w, rv.Elem().Interface(), depth+1)
	case reflect.String:
		writeJSONString(w, rv.String())
	case reflect.Bool:
		w.b = strconv.AppendBool(w.b, rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.b = strconv.AppendInt(w.b, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		w.b = strconv.AppendUint(w.b, rv.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			w.WriteString("null")
		} else {
			w.b = appendJSONFloat(w.b, f, rv.Type().Bits())
		}
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			w.WriteString("null")
			break
		}
		w.putByte('[')
		for i := 0; i < rv.Len() && w.err == nil; i++ {
			if i > 0 {
				w.putByte(',')
			}
			if err := writeJSON(w, rv.Index(i).Interface(), depth+1); err != nil {
				return err
			}
		}
		w.putByte(']')
	case reflect.Map:
		if rv.IsNil() {
			w.WriteString("null")
			break
		}
		type kv struct {
			k string
			v reflect.Value
		}
		entries := make([]kv, 0, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			k := it.Key()
			var ks string
			switch k.Kind() {
			case reflect.String:
				ks = k.String()
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				ks = strconv.FormatInt(k.Int(), 10)
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
				ks = strconv.FormatUint(k.Uint(), 10)
			default:
				return fmt.Errorf("cannot write a map with %s keys as JSON", k.Type())
			}
			entries = append(entries, kv{ks, it.Value()})
		}
		slices.SortFunc(entries, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		w.putByte('{')
		for i, e := range entries {
			if i > 0 {
				w.putByte(',')
			}
			writeJSONString(w, e.k)
			w.putByte(':')
			if err := writeJSON(w, e.v.Interface(), depth+1); err != nil {
				return err
			}
		}
		w.putByte('}')
	case reflect.Struct:
		// Structs come from Go callers, not from expressions: let
		// encoding/json apply its field rules.
		var sb strings.Builder
		enc := json.NewEncoder(&sb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rv.Interface()); err != nil {
			return err
		}
		w.WriteString(strings.TrimSuffix(sb.String(), "\n"))
	default:
		return fmt.Errorf("cannot write a value of type %s as JSON", rv.Type())
	}
	w.check()
	return w.err
}

func writeJSONString(w *limitBuf, s string) {
	if w.err != nil {
		return
	}
	if len(s) > w.max-len(w.b) {
		w.b = append(w.b, make([]byte, w.max-len(w.b)+1)...)
		w.check()
		return
	}
	w.b = append(w.b, '"')
	w.b = appendJSONEscaped(w.b, s)
	w.b = append(w.b, '"')
	w.check()
}

func needsJSONEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

const hexDigits = "0123456789abcdef"

// appendJSONEscaped appends s escaped for the inside of a JSON string.
func appendJSONEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}
