package expr

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMaxNodes(t *testing.T) {
	ok := strings.Repeat("payload.a + ", 200) + "1 > 0"
	if _, err := CompileCondition(ok); err != nil {
		t.Fatalf("an 800-node condition should compile: %v", err)
	}
	tooBig := strings.Repeat("payload.a + ", MaxNodes) + "1 > 0"
	_, err := CompileCondition(tooBig)
	if err == nil || !strings.Contains(err.Error(), "maximum allowed nodes") {
		t.Fatalf("a %d-node condition: err = %v", 2*MaxNodes, err)
	}
}

// TestCostLimits runs expressions that would use unbounded memory or time
// without the limits. Each must fail with a limit error, quickly.
func TestCostLimits(t *testing.T) {
	big := strings.Repeat("x", 1<<20) // 1 MiB, as a device payload could be
	env := Env{"payload": map[string]any{"big": big, "small": "ab"}}
	tests := []struct {
		name    string
		src     string
		wantMsg string
	}{
		{"vm memory budget: range", `len(map(1..2000000, #)) > 0`, "memory budget exceeded"},
		{"repeat huge count", `repeat("x", 100000000) != ""`, "memory budget exceeded"},
		{"repeat of a big string", `repeat(payload.big, 100) != ""`, "memory budget exceeded"},
		{"string doubling with reduce", `reduce(1..64, #acc + #acc, "x") != ""`, "memory budget exceeded"},
		{"string doubling with let", `let a = payload.big; let b = a + a; let c = b + b; let d = c + c; let e = d + d; let f = e + e; f != ""`, "memory budget exceeded"},
		{"quadratic string building", `reduce(1..100000, #acc + "0123456789", "") != ""`, "memory budget exceeded"},
		{"join of many big strings", `join(map(1..100, payload.big)) != ""`, "memory budget exceeded"},
		{"replace amplification", `replace(payload.big, "x", "yyyyyyyyyyyyyyyyyyyy") != ""`, "memory budget exceeded"},
		{"base64 growth", `let a = base64(payload.big); let b = base64(a); let c = base64(b); let d = base64(c); let e = base64(d); let f = base64(e); let g = base64(f); let h = base64(g); let i = base64(h); let j = base64(i); j != ""`, "memory budget exceeded"},
		{"upper in a loop", `len(map(1..100, upper(payload.big))) > 0`, "memory budget exceeded"},
		{"split in a loop", `len(map(1..100, split(payload.big, ""))) > 0`, "memory budget exceeded"},
		{"concat doubling", `let a = 1..100; let b = concat(a, a, a, a, a, a, a, a, a, a); let c = concat(b, b, b, b, b, b, b, b, b, b); let d = concat(c, c, c, c, c, c, c, c, c, c); let e = concat(d, d, d, d, d, d, d, d, d, d); len(e) > 0`, "memory budget exceeded"},
		{"flatten of shared arrays", sharedNest(40) + `len(flatten(z)) > 0`, "memory budget exceeded"},
		{"jsonStringify of shared arrays", sharedNest(40) + `jsonStringify(z) != ""`, "output too large"},
		{"string() of shared arrays", sharedNest(40) + `string(z) != ""`, "output too large"},
		{"toJSON of shared arrays", sharedNest(40) + `toJSON(z) != ""`, "output too large"},
		{"join of shared arrays", sharedNest(40) + `join([z]) != ""`, "memory budget exceeded"},
		{"nested loops", `let a = 1..1000; sum(map(a, count(a, # > 0))) > 0`, "limit exceeded"}, // the step limit, or under -race on a busy machine the time limit
		{"triple nested loops", `let a = 1..100; all(a, all(a, all(a, all(a, # > 0))))`, "limit exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CompileCondition(tt.src)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			start := time.Now()
			_, err = c.Eval(env)
			if err == nil {
				t.Fatal("want a limit error")
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if !errors.Is(err, errBudget) && !errors.Is(err, errOutput) && !strings.Contains(err.Error(), "limit exceeded") && !strings.Contains(err.Error(), "memory budget") {
				t.Errorf("error %q is not a limit error", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// sharedNest builds z, an array nested n deep whose two elements are the
// same array: 2^n leaves in a few bytes.
func sharedNest(n int) string {
	var b strings.Builder
	b.WriteString(`let z0 = ["xxxxxxxx", "yyyyyyyy"]; `)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "let z%d = [z%d, z%d]; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "let z = z%d; ", n)
	return b.String()
}

func TestLimitsAllowNormalWork(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	env := Env{"payload": map[string]any{"big": big, "items": make([]any, 10000)}}
	for _, src := range []string{
		`len(payload.big + payload.big) == 2097152`,
		`len(upper(payload.big)) == 1048576`,
		`len(repeat("ab", 1000000)) == 2000000`,
		`len(map(1..100000, # * 2)) == 100000`,
		`count(payload.items, # == nil) == 10000`,
		`let a = 1..300; sum(map(a, count(a, # > 150))) == 45000`,
		sharedNest(10) + `len(flatten(z)) == 2048`,
	} {
		c, err := CompileCondition(src)
		if err != nil {
			t.Fatalf("compile %q: %v", src, err)
		}
		ok, err := c.Eval(env)
		if err != nil || !ok {
			t.Errorf("%q = %v, %v", src, ok, err)
		}
	}
}

func TestOutputCap(t *testing.T) {
	env := Env{"payload": map[string]any{"half": strings.Repeat("h", MaxOutput/2+1)}}
	tests := []struct {
		name string
		src  string
		json bool
	}{
		{"text over the cap", "${payload.half}${payload.half}", false},
		{"text with literal over the cap", "${payload.half} and ${payload.half}", false},
		{"single string over the cap", `${repeat("x", 2000000)}`, false},
		{"single shared structure", "${" + sharedNest(30) + "z}", false},
		{"text shared structure", "x ${" + sharedNest(30) + "z}", false},
		{"escaping pushes over the cap", `${repeat("<", 300000)}`, false},
		{"json value", `{"a": ${payload.half}, "b": ${payload.half}}`, true},
		{"json string", `{"a": "${payload.half}${payload.half}"}`, true},
		{"json shared structure", `{"a": ${` + sharedNest(30) + `z}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.json {
				jt, cerr := CompileJSONTemplate(tt.src)
				if cerr != nil {
					t.Fatal(cerr)
				}
				_, err = jt.Render(env)
			} else {
				tp, cerr := CompileTemplate(tt.src)
				if cerr != nil {
					t.Fatal(cerr)
				}
				_, err = tp.Render(env, SlackText)
			}
			if err == nil || !errors.Is(err, errOutput) {
				t.Fatalf("err = %v, want output too large", err)
			}
		})
	}
	// Just under the cap is fine.
	tp, _ := CompileTemplate("${payload.half}")
	if _, err := tp.RenderString(env, nil); err != nil {
		t.Errorf("half the cap: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	cond, err := testCompiler.CompileCondition(`payload.n % 2 == 0 && startsWith(toUpperCase(payload.s), "ITEM") && len(filter(payload.list, # > 1)) == 2`)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := testCompiler.CompileTemplate("#${payload.n}: ${toUpperCase(payload.s)} ${payload.list} <${payload.s + \"!\"}>")
	if err != nil {
		t.Fatal(err)
	}
	jt, err := testCompiler.CompileJSONTemplate(`{"n": ${payload.n}, "s": "${payload.s}", "t": ${now()}}`)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, iterations = 16, 300
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iterations {
				n := g*iterations + i
				s := fmt.Sprintf("item-%d", n)
				env := Env{"payload": map[string]any{"n": n, "s": s, "list": []any{1, 2, 3}}}
				ok, err := cond.Eval(env)
				if err != nil || ok != (n%2 == 0) {
					errs <- fmt.Errorf("cond(%d) = %v, %v", n, ok, err)
					return
				}
				out, err := tp.Render(env, SlackText)
				want := fmt.Sprintf("#%d: ITEM-%d [1,2,3] <item-%d!>", n, n, n)
				if err != nil || out != want {
					errs <- fmt.Errorf("template(%d) = %q, %v; want %q", n, out, err, want)
					return
				}
				b, err := jt.Render(env)
				wantJSON := fmt.Sprintf(`{"n": %d, "s": "%s", "t": %d}`, n, s, monday.UnixMilli())
				if err != nil || string(b) != wantJSON {
					errs <- fmt.Errorf("json(%d) = %s, %v", n, b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLoopTimeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes MaxEvalTime")
	}
	// Each iteration scans 1 MiB: the step limit alone would allow minutes.
	env := Env{"payload": map[string]any{"big": strings.Repeat("x", 1<<20)}}
	c, err := CompileCondition(`let a = 1..1000; all(a, all(a, !(payload.big contains "zz")))`)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Eval(env)
	if err == nil || !strings.Contains(err.Error(), "loop time limit exceeded") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d < MaxEvalTime || d > 3*MaxEvalTime {
		t.Errorf("took %v, want about %v", d, MaxEvalTime)
	}
}

// Method calls on values would escape the cost limits: refused.
func TestMethodCallsRefused(t *testing.T) {
	for _, src := range []string{`date("2026-01-02").Format("2006")`, `map(1..200, date("2026-01-02").Format(payload.big))`, `duration("5m").Seconds()`} {
		if _, err := CompileTemplate("${" + src + "}"); err == nil || !strings.Contains(err.Error(), "method calls are not allowed") {
			t.Errorf("%s: %v", src, err)
		}
	}
}
