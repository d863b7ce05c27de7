package expr

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitTemplate(t *testing.T) {
	type part struct {
		lit, expr string
		off       int
	}
	tests := []struct {
		src  string
		want []part
	}{
		{"", nil},
		{"plain", []part{{lit: "plain", off: 0}}},
		{"${a}", []part{{expr: "a", off: 0}}},
		{"x ${a} y", []part{{lit: "x ", off: 0}, {expr: "a", off: 2}, {lit: " y", off: 6}}},
		{"${a}${b}", []part{{expr: "a", off: 0}, {expr: "b", off: 4}}},
		{`${ "}" }`, []part{{expr: ` "}" `, off: 0}}},
		{`${ '}' }`, []part{{expr: ` '}' `, off: 0}}},
		{"${ `}` }", []part{{expr: " `}` ", off: 0}}},
		{`${ "\"}" }`, []part{{expr: ` "\"}" `, off: 0}}},
		{`${ "\\" }}`, []part{{expr: ` "\\" `, off: 0}, {lit: "}", off: 9}}},
		{`${ {"a": 1}.a }`, []part{{expr: ` {"a": 1}.a `, off: 0}}},
		{`${ {"a": {"b": "}"}}.a.b }!`, []part{{expr: ` {"a": {"b": "}"}}.a.b `, off: 0}, {lit: "!", off: 26}}},
		{`${ "${" }`, []part{{expr: ` "${" `, off: 0}}},
		{"$${a}", []part{{lit: "${a}", off: 0}}},
		{"x $${a} ${b}", []part{{lit: "x ${a} ", off: 0}, {expr: "b", off: 8}}},
		{"$", []part{{lit: "$", off: 0}}},
		{"$$", []part{{lit: "$$", off: 0}}},
		{"a$b {c}", []part{{lit: "a$b {c}", off: 0}}},
		{"}{", []part{{lit: "}{", off: 0}}},
		{"日本${x}語", []part{{lit: "日本", off: 0}, {expr: "x", off: 6}, {lit: "語", off: 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			raw, err := splitTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []part
			for _, r := range raw {
				got = append(got, part{lit: r.lit, expr: r.expr, off: r.off})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("split(%q) = %+v, want %+v", tt.src, got, tt.want)
			}
		})
	}
}

func TestTemplateCompileErrors(t *testing.T) {
	tests := []struct {
		src     string
		offset  int
		wantMsg string
	}{
		{"${", 0, "unterminated ${"},
		{"oops ${payload.x", 5, "unterminated ${"},
		{`a ${ "x }`, 2, "unclosed string literal"},
		{"a ${ {b }", 2, "unterminated ${"},
		{"${}", 0, "empty ${}"},
		{"ab ${  }", 3, "empty ${}"},
		{"ok ${a} bad ${payload.} end", 12, "in `${payload.}`"},
		{"ok ${a} bad ${payload.} end", 12, "(1:"},
		{"${a} ${nosuch(1)}", 5, "unknown function nosuch"},
		{"${ 1 + }", 0, ""},
		{"日本 ${x ==}", 7, ""},
		{"${startsWith(1)}", 0, "startsWith"},
		{"x ${" + strings.Repeat("1+", MaxNodes) + "1}", 2, "maximum allowed nodes"},
		{"x ${" + strings.Repeat(" ", MaxSource) + "1}", 2, "longer than"},
	}
	for _, tt := range tests {
		name := tt.src
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			_, err := CompileTemplate(tt.src)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("CompileTemplate(%q) error = %v, want *Error", tt.src, err)
			}
			if ce.Offset != tt.offset {
				t.Errorf("Offset = %d, want %d (%s)", ce.Offset, tt.offset, ce.Msg)
			}
			if !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("Msg %q does not contain %q", ce.Msg, tt.wantMsg)
			}
		})
	}
}

func TestTemplateTyping(t *testing.T) {
	when := time.Date(2024, 7, 17, 1, 2, 3, 0, time.UTC)
	env := Env{
		"payload": map[string]any{
			"name":  "Tanaka",
			"n":     42.0,
			"f":     2.5,
			"ok":    true,
			"list":  []any{1.0, "two"},
			"obj":   map[string]any{"k": "v", "n": 1.0},
			"none":  nil,
			"when":  when,
			"int":   int64(-7),
			"bytes": []byte("raw"),
		},
	}
	tests := []struct {
		src  string
		want any
	}{
		// exactly one ${…}: the value itself
		{"${now()}", monday.UnixMilli()},
		{"${payload}", env["payload"]},
		{"${payload.obj}", map[string]any{"k": "v", "n": 1.0}},
		{"${payload.list}", []any{1.0, "two"}},
		{"${payload.n}", 42.0},
		{"${payload.ok}", true},
		{"${payload.none}", nil},
		{"${payload.missing}", nil},
		{"${payload.name}", "Tanaka"},
		{"${1 + 2}", 3},
		{"${payload.when}", when},
		{"${ payload.n }", 42.0},
		// anything else: a string
		{"x ${payload}", `x {"bytes":"cmF3","f":2.5,"int":-7,"list":[1,"two"],"n":42,"name":"Tanaka","none":null,"obj":{"k":"v","n":1},"ok":true,"when":"2024-07-17T01:02:03Z"}`},
		{"${payload.n} ", "42 "},
		{" ${payload.n}", " 42"},
		{"${payload.n}${payload.f}", "422.5"},
		{"n=${payload.n} f=${payload.f} i=${payload.int} b=${payload.ok}", "n=42 f=2.5 i=-7 b=true"},
		{"[${payload.none}] [${payload.missing}]", "[] []"},
		{"at ${payload.when}", "at 2024-07-17T01:02:03Z"},
		{"list ${payload.list}", `list [1,"two"]`},
		{"obj ${payload.obj}", `obj {"k":"v","n":1}`},
		{"now ${now()}", "now 1721044800000"},
		{"${len(payload.list)} items", "2 items"},
		{"big ${1e21} small ${0.000001} tiny ${1e-7} int ${10000000000}", "big 1e+21 small 0.000001 tiny 1e-7 int 10000000000"},
		{"bytes ${payload.bytes}", "bytes raw"},
		{"dur ${duration(\"90s\")}", "dur 1m30s"},
		{"esc $${payload.n} ${payload.n}", "esc ${payload.n} 42"},
		{"no expressions", "no expressions"},
		{"$${only}", "${only}"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tp, err := testCompiler.CompileTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tp.Render(env, NoEscape)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Render(%q) = %#v (%T), want %#v (%T)", tt.src, got, got, tt.want, tt.want)
			}
			if tp.Source() != tt.src {
				t.Errorf("Source() = %q", tp.Source())
			}
		})
	}
}

func TestRenderString(t *testing.T) {
	env := Env{"payload": map[string]any{"n": 42.0, "obj": map[string]any{"a": "<b>"}, "s": `a"b`}}
	tests := []struct {
		src  string
		esc  Escaper
		want string
	}{
		{"${payload.n}", nil, "42"},
		{"${payload.missing}", nil, ""},
		{"${payload.obj}", nil, `{"a":"<b>"}`},
		{"${payload.obj}", SlackText, `{"a":"&lt;b&gt;"}`},
		{"${payload.s}", JSONString, `a\"b`},
		{"${now()}", nil, "1721044800000"},
		{"${true}", nil, "true"},
		{"lit", SlackText, "lit"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tp, err := testCompiler.CompileTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tp.RenderString(env, tt.esc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("RenderString = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEscapers(t *testing.T) {
	tests := []struct {
		name string
		esc  Escaper
		in   string
		want string
	}{
		{"none", NoEscape, `<!channel> "&\`, `<!channel> "&\`},
		{"json plain", JSONString, "plain", "plain"},
		{"json quote backslash newline", JSONString, "a\"b\\c\nd", `a\"b\\c\nd`},
		{"json controls", JSONString, "\t\r\x00\x1f\x7f", `\t\r\u0000\u001f` + "\x7f"},
		{"json html kept", JSONString, "<&>", "<&>"},
		{"json unicode", JSONString, "日本 ✓", "日本 ✓"},
		{"json line separators", JSONString, "a\u2028b\u2029", `a\u2028b\u2029`},
		{"json invalid utf8", JSONString, "a\xffb", `a\ufffdb`},
		{"url query", URLQuery, "a b&c=d/é", "a+b%26c%3Dd%2F%C3%A9"},
		{"url path", URLPath, "a b/c?d", "a%20b%2Fc%3Fd"},
		{"slack", SlackText, "<!channel> & <@U123|x>", "&lt;!channel&gt; &amp; &lt;@U123|x&gt;"},
		{"slack plain", SlackText, "hello", "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.esc(tt.in); got != tt.want {
				t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	// Every JSONString output is valid inside quotes and round-trips.
	for _, s := range []string{"", "a\"b\\c\nd\te", "\x00\x01\x1f", "<script>", "日本\u2028", "\\u0041"} {
		var back string
		if err := json.Unmarshal([]byte(`"`+JSONString(s)+`"`), &back); err != nil || back != s {
			t.Errorf("JSONString(%q) does not round-trip: %q, %v", s, back, err)
		}
	}
}

func TestTemplateEscaping(t *testing.T) {
	env := Env{"payload": map[string]any{
		"txt":  "<!channel> & co",
		"q":    "a b&c",
		"path": "x/y z",
		"evil": "\"},\n\"admin\": true, \"x\": \"\\",
		"obj":  map[string]any{"html": "<b>"},
		"n":    1.5,
	}}
	tests := []struct {
		name string
		src  string
		esc  Escaper
		want any
	}{
		{"slack neutralises injected mention, keeps literal one",
			"Image at ${payload.n} by <@U123ABC>: ${payload.txt}", SlackText,
			"Image at 1.5 by <@U123ABC>: &lt;!channel&gt; &amp; co"},
		{"slack single value is escaped", "${payload.txt}", SlackText, "&lt;!channel&gt; &amp; co"},
		{"slack single number keeps type", "${payload.n}", SlackText, 1.5},
		{"slack object as JSON then escaped", "o=${payload.obj}", SlackText, `o={"html":"&lt;b&gt;"}`},
		{"json string content", `{"text": "${payload.evil}"}`, JSONString, `{"text": "\"},\n\"admin\": true, \"x\": \"\\"}`},
		{"url query", "https://h/p?q=${payload.q}&x=1", URLQuery, "https://h/p?q=a+b%26c&x=1"},
		{"url path", "https://h/files/${payload.path}", URLPath, "https://h/files/x%2Fy%20z"},
		{"literal text untouched", "<b>${payload.n}</b>", SlackText, "<b>1.5</b>"},
		{"nil escaper", "${payload.txt}!", nil, "<!channel> & co!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := CompileTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tp.Render(env, tt.esc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	// The JSON-escaped body is valid JSON and carries the hostile string
	// as data.
	tp, _ := CompileTemplate(`{"text": "${payload.evil}"}`)
	body, _ := tp.RenderString(env, JSONString)
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if len(m) != 1 || m["text"] != env["payload"].(map[string]any)["evil"] {
		t.Errorf("body decoded to %#v", m)
	}
}

func TestTemplateMeta(t *testing.T) {
	tests := []struct {
		src     string
		literal bool
		vars    []string
	}{
		{"", true, []string{}},
		{"plain $${x}", true, []string{}},
		{"${payload.a}", false, []string{"payload"}},
		{"${payload.a} ${event.b} ${payload.c} ${result.output}", false, []string{"event", "payload", "result"}},
		{"${now()}", false, []string{}},
		{"${len(payload.weather)}", false, []string{"payload"}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tp, err := CompileTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if tp.IsLiteral() != tt.literal {
				t.Errorf("IsLiteral() = %v", tp.IsLiteral())
			}
			if got := tp.Vars(); !reflect.DeepEqual(got, tt.vars) && !(len(got) == 0 && len(tt.vars) == 0) {
				t.Errorf("Vars() = %#v, want %#v", got, tt.vars)
			}
		})
	}
	// Vars returns a copy.
	tp, _ := CompileTemplate("${payload.a}")
	tp.Vars()[0] = "changed"
	if tp.Vars()[0] != "payload" {
		t.Error("Vars() exposes internal state")
	}
}

func TestTemplateRuntimeErrors(t *testing.T) {
	tp, err := CompileTemplate("a ${payload.n} b ${payload.name + 1}")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tp.Render(Env{"payload": map[string]any{"n": 1.0, "name": "x"}}, nil)
	var ee *EvalError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v (%T), want *EvalError", err, err)
	}
	if ee.Expr != "${payload.name + 1}" || !strings.Contains(err.Error(), "invalid operation") {
		t.Errorf("error = %q (expr %q)", err, ee.Expr)
	}
}

func TestJSONTemplate(t *testing.T) {
	hostile := "\"}, \"admin\": true, \"x\": {\"\\\n\t\x00</script>\u2028"
	env := Env{"payload": map[string]any{
		"name":    "Tanaka",
		"hostile": hostile,
		"n":       21.5,
		"i":       7.0,
		"obj":     map[string]any{"a": []any{1.0, "b", nil}},
		"none":    nil,
		"ok":      false,
	}}
	tests := []struct {
		src  string
		want string
	}{
		{`{"time": ${now()}, "name": "${payload.name}", "p": ${payload.obj}}`,
			`{"time": 1721044800000, "name": "Tanaka", "p": {"a":[1,"b",null]}}`},
		{`{"n": ${payload.n}, "i": ${payload.i}, "ok": ${payload.ok}, "none": ${payload.none}, "missing": ${payload.missing}}`,
			`{"n": 21.5, "i": 7, "ok": false, "none": null, "missing": null}`},
		{`{"s": "n=${payload.n} obj=${payload.obj} none=${payload.none}"}`,
			`{"s": "n=21.5 obj={\"a\":[1,\"b\",null]} none="}`},
		{`{"payload": "${payload.obj}", "ai_response": "${payload.name}"}`,
			`{"payload": "{\"a\":[1,\"b\",null]}", "ai_response": "Tanaka"}`},
		{`${payload.obj}`, `{"a":[1,"b",null]}`},
		{`[${payload.n}, "${payload.n}", ${payload.name}]`, `[21.5, "21.5", "Tanaka"]`},
		{`{"esc": "a\"${payload.name}\\", "lit": "$${x}"}`, `{"esc": "a\"Tanaka\\", "lit": "${x}"}`},
		{`{"${payload.name}": 1}`, `{"Tanaka": 1}`},
		{`{${payload.name}: 1}`, `{"Tanaka": 1}`},
		{`{"text": "brace } and ${ "}" } in string"}`, `{"text": "brace } and } in string"}`},
		{"  {\"a\": ${1 + 1}}\n", "  {\"a\": 2}\n"},
		{`"${payload.hostile}"`, ""}, // checked by decoding below
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			jt, err := testCompiler.CompileJSONTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := jt.Render(env)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
			if tt.want != "" && string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}

	// Hostile strings stay data, wherever they go.
	jt, err := CompileJSONTemplate(`{"in": "x${payload.hostile}y", "out": ${payload.hostile}, "${payload.hostile}": ${payload.obj}}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jt.Render(env)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if len(m) != 3 || m["in"] != "x"+hostile+"y" || m["out"] != hostile || m[hostile] == nil {
		t.Errorf("decoded %#v", m)
	}
	if want := []string{"payload"}; !reflect.DeepEqual(jt.Vars(), want) {
		t.Errorf("Vars() = %v", jt.Vars())
	}
	if jt.Source() == "" {
		t.Error("Source() is empty")
	}
}

func TestJSONTemplateErrors(t *testing.T) {
	compileTests := []struct {
		src     string
		offset  int
		wantMsg string
	}{
		{`{"a": ${x}`, 10, "unexpected end of JSON input"},
		{`{"a": ${x} "b": 1}`, 11, "after object key:value pair"},
		{`{"a": 1${x}}`, 7, "after object key:value pair"},
		{`{"a": ${x}${y}}`, 10, ""},
		{`{"a": tru}`, 9, "invalid character"},
		{`{"a": ${x`, 6, "unterminated ${"},
		{`{"a": ${}}`, 6, "empty ${}"},
		{`{"a": ${x.}}`, 6, "in `${x.}`"},
		{``, 0, "unexpected end of JSON input"},
		{`plain text`, 0, "invalid character"},
	}
	for _, tt := range compileTests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := CompileJSONTemplate(tt.src)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want *Error", err)
			}
			if ce.Offset != tt.offset {
				t.Errorf("Offset = %d, want %d (%s)", ce.Offset, tt.offset, ce.Msg)
			}
			if !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("Msg %q does not contain %q", ce.Msg, tt.wantMsg)
			}
		})
	}

	// A ${…} used as a key outside quotes must give a string.
	jt, err := CompileJSONTemplate(`{${payload.n}: 1}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jt.Render(Env{"payload": map[string]any{"n": 1.0}}); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("numeric key: err = %v", err)
	}
	// Run-time errors name the expression.
	jt, _ = CompileJSONTemplate(`{"a": ${payload.x + 1}}`)
	_, err = jt.Render(Env{"payload": map[string]any{"x": "s"}})
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Expr != "${payload.x + 1}" {
		t.Errorf("err = %v", err)
	}
}
