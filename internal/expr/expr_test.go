package expr

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// monday is 2024-07-15T12:00:00Z, a Monday.
var monday = time.Date(2024, 7, 15, 12, 0, 0, 0, time.UTC)

var testCompiler = &Compiler{Now: func() time.Time { return monday }}

func testEnv() Env {
	return Env{
		"payload": map[string]any{
			"temperature": 35.0,
			"status":      "completed",
			"name":        "Tanaka",
			"count":       3.0,
			"items":       []any{1.0, 2.0, 3.0},
			"tags":        []any{"a", "b"},
			"nested":      map[string]any{"deep": map[string]any{"value": "x"}},
			"nothing":     nil,
			"flag":        true,
		},
		"context": map[string]any{"protocol": "http", "eventType": "device"},
		"event": map[string]any{
			"payload": map[string]any{"clicktype": "single"},
			"context": map[string]any{"eventType": "api"},
		},
		"a": map[string]any{"click type": "DOUBLE"},
	}
}

func TestConditions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  Env
		want bool
	}{
		{"flux temperature on monday", `(payload.temperature - 2.12) >= 32.8 && getUTCDayOfWeek(now()) == 1`, nil, true},
		{"flux temperature too low", `(payload.temperature - 2.12) >= 32.8 && getUTCDayOfWeek(now()) == 1`,
			Env{"payload": map[string]any{"temperature": 30.0}}, false},
		{"flux click type", `startsWith(toUpperCase(event.payload.clicktype), "SINGLE") || context.protocol == "http"`, nil, true},
		{"flux click type other", `startsWith(toUpperCase(event.payload.clicktype), "SINGLE") || context.protocol == "http"`,
			Env{"event": map[string]any{"payload": map[string]any{"clicktype": "double"}}, "context": map[string]any{"protocol": "mqtt"}}, false},
		{"flux click type missing", `startsWith(toUpperCase(event.payload.clicktype), "SINGLE")`, Env{}, false},
		{"flux date", `now() >= datetimeFromISOString("2024-07-17T00:00:00Z")`, nil, false},
		{"flux date past", `now() >= datetimeFromISOString("2024-07-15T00:00:00Z")`, nil, true},
		{"status completed", `payload.status == "completed"`, nil, true},
		{"status pending", `payload.status == "completed"`, Env{"payload": map[string]any{"status": "pending"}}, false},
		{"bracket key", `a["click type"] == "DOUBLE"`, nil, true},
		{"undefined variable", `nosuch == "x"`, nil, false},
		{"undefined variable is nil", `nosuch == nil`, nil, true},
		{"missing key", `payload.missing == "x"`, nil, false},
		{"missing key is nil", `payload.missing == nil`, nil, true},
		{"nested missing keys", `payload.a.b.c == nil`, nil, true},
		{"nested missing on nil payload", `payload.a.b == "x"`, Env{}, false},
		{"nested missing with index", `payload.a.b[0] == nil`, nil, true},
		{"nil value then member", `payload.nothing.x == nil`, nil, true},
		{"nested present", `payload.nested.deep.value == "x"`, nil, true},
		{"nil coalescing", `(payload.missing ?? "d") == "d"`, nil, true},
		{"optional chaining", `payload?.nested?.deep?.value == "x"`, nil, true},
		{"bool field", `payload.flag`, nil, true},
		{"not", `!payload.flag`, nil, false},
		{"in array", `"a" in payload.tags`, nil, true},
		{"index", `payload.items[1] == 2`, nil, true},
		{"negative index", `payload.items[-1] == 3`, nil, true},
		{"float compare int", `payload.count == 3`, nil, true},
		{"len array", `len(payload.items) == 3`, nil, true},
		{"len missing", `len(payload.missing) == 0`, nil, true},
		{"predicate", `all(payload.items, # > 0) && any(payload.tags, # == "b")`, nil, true},
		{"filter", `len(filter(payload.items, # >= 2)) == 2`, nil, true},
		{"ternary", `(payload.count > 2 ? "big" : "small") == "big"`, nil, true},
		{"infix startsWith", `payload.name startsWith "Tan"`, nil, true},
		{"infix endsWith parenthesised", `payload.name endsWith ("aka")`, nil, true},
		{"not startsWith call", `not startsWith(payload.name, "X")`, nil, true},
		{"not infix startsWith", `payload.name not startsWith "X"`, nil, true},
		{"endsWith call", `endsWith(payload.name, "aka") && !endsWith(payload.name, "x")`, nil, true},
		{"matches", `payload.name matches "^T.*a$"`, nil, true},
		{"let", `let t = payload.temperature; t > 30 && t < 40`, nil, true},
		{"string concat", `payload.name + "-" + payload.status == "Tanaka-completed"`, nil, true},
		{"number plus", `payload.count + 1 == 4`, nil, true},
		{"env var", `$env.payload.status == "completed"`, nil, true},
		{"multi-line", "payload.status == \"completed\"\n  && payload.count > 1", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := testCompiler.CompileCondition(tt.src)
			if err != nil {
				t.Fatalf("compile %q: %v", tt.src, err)
			}
			env := tt.env
			if env == nil {
				env = testEnv()
			}
			got, err := c.Eval(env)
			if err != nil {
				t.Fatalf("eval %q: %v", tt.src, err)
			}
			if got != tt.want {
				t.Errorf("%q = %v, want %v", tt.src, got, tt.want)
			}
			if c.Source() != tt.src {
				t.Errorf("Source() = %q", c.Source())
			}
		})
	}
}

func TestConditionNilEnv(t *testing.T) {
	c, err := CompileCondition(`payload.status == "completed"`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Eval(nil)
	if err != nil || got {
		t.Fatalf("Eval(nil) = %v, %v", got, err)
	}
}

func TestConditionNotBoolean(t *testing.T) {
	tests := []struct {
		src      string
		wantType string
	}{
		{`payload.status`, "string"},
		{`payload.count`, "number"},
		{`payload.missing`, "nil"},
		{`payload.items`, "array"},
		{`payload.nested`, "map"},
		{`payload.count > 1 ? "yes" : false`, "string"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			c, err := CompileCondition(tt.src)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			_, err = c.Eval(testEnv())
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), "not a boolean") || !strings.Contains(err.Error(), tt.wantType) {
				t.Errorf("error %q should say the result is %s, not a boolean", err, tt.wantType)
			}
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Expr != tt.src {
				t.Errorf("error %T should be an *EvalError for %q", err, tt.src)
			}
		})
	}
}

func TestConditionCompileErrors(t *testing.T) {
	tests := []struct {
		src     string
		wantMsg string
	}{
		{``, "empty"},
		{`   `, "empty"},
		{`1 + 2`, "expected bool"},
		{`"text"`, "expected bool"},
		{`toUpperCase(payload.x)`, "expected bool"},
		{`payload.status = "x"`, ""},
		{`payload.status ==`, "(1:"},
		{`(payload.a`, ""},
		{`nosuchfunc(1) == 1`, ""},
		{`startsWith("a") == true`, "startsWith"},
		{`startsWith("a", 1)`, "startsWith"},
		{`getUTCDayOfWeek() == 1`, "getUTCDayOfWeek"},
		{`${payload.flag}`, "drop the ${ }"},
		{"payload.a == 1 &&\n  payload.b ==", "(2:"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := CompileCondition(tt.src)
			if err == nil {
				t.Fatal("want a compile error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *Error", err)
			}
			if ce.Offset != 0 {
				t.Errorf("Offset = %d, want 0", ce.Offset)
			}
			if !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("Msg %q does not contain %q", ce.Msg, tt.wantMsg)
			}
			if strings.Contains(ce.Msg, "startsWit_") || strings.Contains(ce.Msg, "$__") || strings.Contains(ce.Msg, "\n") {
				t.Errorf("Msg %q leaks internals or spans lines", ce.Msg)
			}
			if !strings.HasPrefix(ce.Error(), "offset 0: ") {
				t.Errorf("Error() = %q", ce.Error())
			}
		})
	}
}

// eval evaluates one expression as a single-${} template.
func eval(t *testing.T, src string, env Env) (any, error) {
	t.Helper()
	tp, err := testCompiler.CompileTemplate("${" + src + "}")
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return tp.Render(env, NoEscape)
}

func TestFunctions(t *testing.T) {
	nowMs := monday.UnixMilli()
	tests := []struct {
		src  string
		want any
	}{
		{`now()`, nowMs},
		{`len("héllo")`, 5},
		{`len("")`, 0},
		{`len(payload.items)`, 3},
		{`len(payload.nested)`, 1},
		{`len(payload.missing)`, 0},
		{`len(payload.weather)`, 0},
		{`startsWith("abc", "ab")`, true},
		{`startsWith("abc", "bc")`, false},
		{`startsWith(payload.missing, "a")`, false},
		{`startsWith("abc", "")`, true},
		{`endsWith("abc", "bc")`, true},
		{`endsWith("abc", "ab")`, false},
		{`toUpperCase("àbc")`, "ÀBC"},
		{`toUpperCase(payload.name)`, "TANAKA"},
		{`toUpperCase(payload.missing)`, ""},
		{`toLowerCase("ÀBC")`, "àbc"},
		{`getUTCDayOfWeek(now())`, 1},
		{`getUTCDayOfWeek(0)`, 4},                        // 1970-01-01 was a Thursday
		{`getUTCDayOfWeek(1721001600000)`, 1},            // 2024-07-15T00:00:00Z
		{`getUTCDayOfWeek(1721001599999)`, 0},            // one ms earlier: Sunday
		{`getUTCDayOfWeek(1721001600000.7)`, 1},          // fractional ms
		{`getUTCDayOfWeek(-1)`, 3},                       // 1969-12-31, a Wednesday
		{`getUTCDayOfWeek(payload.count * 86400000)`, 0}, // 1970-01-04
		{`datetimeFromISOString("2024-07-17T00:00:00Z")`, int64(1721174400000)},
		{`datetimeFromISOString("2024-07-17T00:00:00.123Z")`, int64(1721174400123)},
		{`datetimeFromISOString("2024-07-17T09:00:00+09:00")`, int64(1721174400000)},
		{`datetimeFromISOString("2024-07-17T09:00:00+0900")`, int64(1721174400000)},
		{`datetimeFromISOString("2024-07-17T09:00:00.5+09:00")`, int64(1721174400500)},
		{`datetimeFromISOString("2024-07-17T00:00:00")`, int64(1721174400000)},
		{`datetimeFromISOString("2024-07-17T00:00:00.25")`, int64(1721174400250)},
		{`datetimeFromISOString("2024-07-17T00:00")`, int64(1721174400000)},
		{`datetimeFromISOString("2024-07-17")`, int64(1721174400000)},
		{`datetimeFromISOString("2024-07-17 00:00:00")`, int64(1721174400000)},
		{`datetimeFromISOString(" 2024-07-17T00:00:00Z ")`, int64(1721174400000)},
		{`jsonParse("{\"a\": [1, 2.5, \"x\", null, true]}")`, map[string]any{"a": []any{1.0, 2.5, "x", nil, true}}},
		{`jsonParse("3")`, 3.0},
		{`jsonParse("\"s\"")`, "s"},
		{`jsonParse("null")`, nil},
		{`jsonParse("{\"a\": {\"b\": 2}}").a.b`, 2.0},
		{`jsonStringify(payload.nested)`, `{"deep":{"value":"x"}}`},
		{`jsonStringify({"b": 1, "a": [true, nil, "<&>"]})`, `{"a":[true,null,"<&>"],"b":1}`},
		{`jsonStringify("a\"b")`, `"a\"b"`},
		{`jsonStringify(1.5)`, `1.5`},
		{`jsonStringify(payload.missing)`, `null`},
		{`base64("hello")`, "aGVsbG8="},
		{`base64("")`, ""},
		{`base64("日本")`, "5pel5pys"},
		{`base64Decode("aGVsbG8=")`, "hello"},
		{`base64Decode("aGVsbG8")`, "hello"},
		{`base64Decode("aGVs\nbG8=")`, "hello"},
		{`base64Decode("-_8=")`, "\xfb\xff"},
		{`base64Decode(base64("round trip ✓"))`, "round trip ✓"},
		// expr-lang builtins that stay available (metered)
		{`upper("abc")`, "ABC"},
		{`lower("ABC")`, "abc"},
		{`trim("  x ")`, "x"},
		{`split("a,b", ",")`, []string{"a", "b"}},
		{`join(["a", "b"], "-")`, "a-b"},
		{`join(split("a,b,c", ","))`, "abc"},
		{`join([1, "x", nil, true], ",")`, "1,x,,true"},
		{`replace("aaa", "a", "bb")`, "bbbbbb"},
		{`repeat("ab", 3)`, "ababab"},
		{`string(12)`, "12"},
		{`string({"a": 1})`, `{"a":1}`},
		{`toJSON([1, "a"])`, `[1,"a"]`},
		{`fromJSON("[1]")`, []any{1.0}},
		{`toBase64("hi")`, "aGk="},
		{`fromBase64("aGk=")`, "hi"},
		{`keys({"a": 1})`, []any{"a"}},
		{`concat([1], [2, 3])`, []any{1, 2, 3}},
		{`flatten([1, [2, [3]]])`, []any{1, 2, 3}},
		{`reverse([1, 2])`, []any{2, 1}},
		{`sort([3, 1, 2])`, []any{1, 2, 3}},
		{`sum(payload.items)`, 6.0},
		{`max(1, 5, 3)`, 5},
		{`abs(-2)`, 2},
		{`int("42")`, 42},
		{`get(payload.items, 10)`, nil},
		{`first(payload.tags)`, "a"},
		{`map(payload.items, # * 2)`, []any{2.0, 4.0, 6.0}},
		{`reduce(payload.items, #acc + #, 0)`, 6.0},
		{`count(payload.items, # > 1)`, 2},
		{`"a" + "b"`, "ab"},
		{`1 + 2`, 3},
		{`1.5 + payload.count`, 4.5},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := eval(t, tt.src, testEnv())
			if err != nil {
				t.Fatalf("%q: %v", tt.src, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%q = %#v (%T), want %#v (%T)", tt.src, got, got, tt.want, tt.want)
			}
		})
	}
}

func TestFunctionErrors(t *testing.T) {
	tests := []struct {
		src     string
		wantMsg string
	}{
		{`startsWith(payload.count, "a")`, "startsWith: argument 1 must be a string, got number"},
		{`endsWith("a", payload.items)`, "endsWith: argument 2 must be a string, got array"},
		{`toUpperCase(payload.count)`, "toUpperCase: argument 1 must be a string"},
		{`toLowerCase(payload.flag)`, "toLowerCase: argument 1 must be a string, got bool"},
		{`len(payload.count)`, "len: cannot take the length of number"},
		{`getUTCDayOfWeek(payload.name)`, "getUTCDayOfWeek: argument must be a UNIX time in milliseconds, got string"},
		{`getUTCDayOfWeek(payload.missing)`, "getUTCDayOfWeek"},
		{`datetimeFromISOString("garbage")`, `datetimeFromISOString: cannot parse "garbage"`},
		{`datetimeFromISOString("2024-13-01T00:00:00Z")`, "datetimeFromISOString"},
		{`datetimeFromISOString("2024-07-17T00:00:00Zjunk")`, "datetimeFromISOString"},
		{`datetimeFromISOString(payload.count)`, "datetimeFromISOString: argument must be a string"},
		{`datetimeFromISOString(payload.missing)`, "datetimeFromISOString: argument must be a string, got nil"},
		{`jsonParse("{")`, "jsonParse: invalid JSON"},
		{`jsonParse(payload.count)`, "jsonParse: argument must be a string"},
		{`jsonParse(payload.missing)`, "jsonParse: argument must be a string, got nil"},
		{`base64(payload.items)`, "base64: argument 1 must be a string"},
		{`base64Decode("!!!")`, "base64Decode: invalid base64"},
		{`repeat("x", -1)`, "repeat"},
		{`join(payload.name)`, "join: argument 1 must be an array"},
		{`payload.name + 1`, "invalid operation"},
		{`payload.items[10]`, "index out of range"},
		{`upper(payload.count)`, "upper"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := eval(t, tt.src, testEnv())
			if err == nil {
				t.Fatalf("%q: want an error", tt.src)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("%q: error %q does not contain %q", tt.src, err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestNowUsesCompilerClock(t *testing.T) {
	clock := time.Unix(1000, 5e6)
	c := &Compiler{Now: func() time.Time { return clock }}
	tp, err := c.CompileTemplate("${now()}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.Render(nil, nil)
	if err != nil || got != int64(1000005) {
		t.Fatalf("now() = %#v, %v", got, err)
	}
	clock = clock.Add(time.Second)
	if got, _ := tp.Render(nil, nil); got != int64(1001005) {
		t.Fatalf("now() after a second = %#v", got)
	}

	// The default compiler uses the real clock.
	before := time.Now().UnixMilli()
	tp, err = CompileTemplate("${now()}")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := tp.Render(nil, nil)
	if ms, ok := v.(int64); !ok || ms < before || ms > time.Now().UnixMilli() {
		t.Fatalf("default now() = %#v", v)
	}
}

func TestVars(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{`payload.a == 1`, []string{"payload"}},
		{`payload.a == 1 && event.payload.b == context.c && result.output != ""`, []string{"context", "event", "payload", "result"}},
		{`len(payload.items) > 0 && startsWith(toUpperCase(event.x), "A")`, []string{"event", "payload"}},
		{`let x = payload.a; x == 1`, []string{"payload"}},
		{`all(payload.items, # > limit)`, []string{"limit", "payload"}},
		{`now() > 0`, []string{}},
		{`true`, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			c, err := CompileCondition(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Vars(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Vars() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestNumbersAreNotMangled(t *testing.T) {
	// Large values from JSON payloads are float64; they must not come out
	// in exponent form when stringified.
	tp, err := CompileTemplate("t=${payload.ts} f=${payload.f} n=${payload.n} big=${payload.big} small=${payload.small} nan=${payload.nan}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.RenderString(Env{"payload": map[string]any{
		"ts": 1721174400123.0, "f": 0.30000000000000004, "n": -0.5, "big": 1e21, "small": 1e-7, "nan": math.NaN(),
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "t=1721174400123 f=0.30000000000000004 n=-0.5 big=1e+21 small=1e-7 nan=NaN"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// The happiness score of seed 004 from a faces result: HAPPY summed over
// faces, and every emotion summed (sumBy).
func TestFaceScores(t *testing.T) {
	env := Env{"result": map[string]any{"FaceDetails": []any{
		map[string]any{"Emotions": []any{
			map[string]any{"Type": "HAPPY", "Confidence": 90.5},
			map[string]any{"Type": "SAD", "Confidence": 4.0},
		}},
		map[string]any{"Emotions": []any{
			map[string]any{"Type": "CALM", "Confidence": 60.0},
			map[string]any{"Type": "HAPPY", "Confidence": 30.25},
		}},
	}}}
	for _, tc := range []struct {
		src  string
		want any
	}{
		{`sum(result.FaceDetails, sum(filter(.Emotions, .Type == "HAPPY"), .Confidence))`, 120.75},
		{`sumBy(flatten(map(result.FaceDetails, .Emotions)), "Type", "Confidence")`, map[string]any{"HAPPY": 120.75, "SAD": 4.0, "CALM": 60.0}},
		{`sumBy(result.missing, "Type", "Confidence")`, map[string]any{}},
		{`sumBy([], "Type", "Confidence")`, map[string]any{}},
		// Not objects, no key, not a number: skipped.
		{`sumBy([{"Type": "A", "Confidence": 1}, "x", {"Confidence": 2}, {"Type": "A", "Confidence": "3"}, {"Type": 7, "Confidence": 4}], "Type", "Confidence")`,
			map[string]any{"A": 1.0, "7": 4.0}},
	} {
		got, err := eval(t, tc.src, env)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %#v; want %#v", tc.src, got, tc.want)
		}
	}
	if _, err := eval(t, `sumBy("abc", "Type", "Confidence")`, env); err == nil || !strings.Contains(err.Error(), "must be an array") {
		t.Errorf("sumBy of a string: %v", err)
	}
}
