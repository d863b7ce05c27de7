package expr

import "testing"

func benchEnv() Env {
	return Env{
		"payload": map[string]any{"temperature": 35.5, "status": "completed", "url": "https://example.com/a.jpg", "txt": "<!channel> & co"},
		"event":   map[string]any{"payload": map[string]any{"clicktype": "SINGLE"}},
		"context": map[string]any{"protocol": "http"},
	}
}

func BenchmarkConditionEval(b *testing.B) {
	for _, bc := range []struct{ name, src string }{
		{"status", `payload.status == "completed"`},
		{"flux_temperature", `(payload.temperature - 2.12) >= 32.8 && getUTCDayOfWeek(now()) == 1`},
		{"flux_clicktype", `startsWith(toUpperCase(event.payload.clicktype), "SINGLE") || context.protocol == "http"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := CompileCondition(bc.src)
			if err != nil {
				b.Fatal(err)
			}
			env := benchEnv()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Eval(env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTemplateRender(b *testing.B) {
	tp, err := CompileTemplate("Image ${payload.url} at ${now()} by <@U123ABC> (${payload.status}): ${payload.txt}")
	if err != nil {
		b.Fatal(err)
	}
	env := benchEnv()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Render(env, SlackText); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONTemplateRender(b *testing.B) {
	jt, err := CompileJSONTemplate(`{"time": ${now()}, "status": "${payload.status}", "p": ${payload}}`)
	if err != nil {
		b.Fatal(err)
	}
	env := benchEnv()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jt.Render(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileCondition(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileCondition(`startsWith(toUpperCase(event.payload.clicktype), "SINGLE") || context.protocol == "http"`); err != nil {
			b.Fatal(err)
		}
	}
}
