package expr

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCompileTemplate checks that compiling and rendering arbitrary
// templates (and the same text as a JSON template and as a condition) never
// panics, and that what renders keeps the package's promises.
func FuzzCompileTemplate(f *testing.F) {
	for _, seed := range []string{
		"",
		"plain",
		"${payload.a}",
		"x ${payload} y",
		`${ {"a": 1}.a } ${ "}" } $${x}`,
		"${",
		"${}",
		"$${",
		"${ '}' }${ `}` }",
		`{"time": ${now()}, "name": "${payload.name}", "p": ${payload}}`,
		`{"a": "${payload.s}\\"}`,
		`${startsWith(toUpperCase(event.payload.clicktype), "SINGLE") || context.protocol == "http"}`,
		`${(payload.temperature - 2.12) >= 32.8 && getUTCDayOfWeek(now()) == 1}`,
		`${datetimeFromISOString("2024-07-17T00:00:00Z")}`,
		`${jsonParse(payload.s)} ${jsonStringify(payload)} ${base64Decode(base64(payload.s))}`,
		`${map(payload.list, # * 2)} ${filter(payload.list, # > 1)} ${reduce(1..5, #acc + #, 0)}`,
		`${let x = payload.a; x ?? "d"}`,
		`${payload.a.b.c[0]}`,
		`${repeat(payload.s, 3)} ${join(split(payload.s, ""), "-")}`,
		"${payload.s + payload.s}",
		"${not startsWith(payload.s, \"x\")}",
		"${payload.s startsWith \"x\"}",
	} {
		f.Add(seed)
	}
	env := Env{
		"payload": map[string]any{
			"a": 1.0, "s": `q"\<>&` + "\n", "name": "n", "list": []any{1.0, 2.0, "x", nil},
			"temperature": 40.0, "obj": map[string]any{"k": []any{true}},
		},
		"event":   map[string]any{"payload": map[string]any{"clicktype": "single"}},
		"context": map[string]any{"protocol": "http"},
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 {
			return
		}
		tp, err := testCompiler.CompileTemplate(src)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("compile error %T is not *Error: %v", err, err)
			}
			if ce.Offset < 0 || ce.Offset > len(src) {
				t.Fatalf("offset %d outside [0, %d]", ce.Offset, len(src))
			}
			if strings.Contains(ce.Msg, "internal error") {
				t.Fatalf("%q: %v", src, err)
			}
		} else {
			_ = tp.Vars()
			if _, err := tp.Render(env, SlackText); err != nil && !errors.Is(err, errOutput) {
				var ee *EvalError
				if !errors.As(err, &ee) {
					t.Fatalf("render error %T: %v", err, err)
				}
			}
			s, err := tp.RenderString(env, JSONString)
			if err == nil {
				if len(s) > MaxOutput {
					t.Fatalf("rendered %d bytes", len(s))
				}
				if tp.IsLiteral() && strings.Contains(src, "${") && !strings.Contains(src, "$${") {
					t.Fatalf("literal template %q contains ${", src)
				}
				// With clean literal text, the JSON-escaped result is a valid
				// JSON string body.
				if cleanJSONText(src) {
					var back string
					if err := json.Unmarshal([]byte(`"`+s+`"`), &back); err != nil {
						t.Fatalf("JSONString output %q is not a valid JSON string body: %v", s, err)
					}
				}
			}
		}

		jt, err := testCompiler.CompileJSONTemplate(src)
		if err == nil {
			b, err := jt.Render(env)
			if err == nil && !json.Valid(b) {
				t.Fatalf("JSON template %q rendered invalid JSON %q", src, b)
			}
		} else {
			var ce *Error
			if !errors.As(err, &ce) || ce.Offset < 0 || ce.Offset > len(src) {
				t.Fatalf("JSON compile error %v", err)
			}
		}

		if c, err := testCompiler.CompileCondition(src); err == nil {
			_, _ = c.Eval(env)
		} else if strings.Contains(err.Error(), "internal error") {
			t.Fatalf("%q: %v", src, err)
		}
	})
}

// cleanJSONText reports whether s may appear as is inside a JSON string.
func cleanJSONText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
