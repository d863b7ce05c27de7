package expr

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// 2025-01-28T03:05:00.123Z is 12:05:00.123 in Tokyo.
const seedMs = int64(1738033500123)

func TestFormatTime(t *testing.T) {
	env := Env{"payload": map[string]any{
		"ms":     float64(seedMs), // JSON numbers arrive as float64
		"int":    seedMs,
		"iso":    "2025-01-28T12:05:00.123+09:00",
		"tz":     "Asia/Tokyo",
		"noZone": nil,
	}}
	tests := []struct {
		src, want string
	}{
		// The seed's path (seed 001), in UTC and in Tokyo time.
		{`${formatTime(payload.ms, "%Y/%m/%d/soracam_%Y%m%d_%H%M%S_%L.jpg")}`, "2025/01/28/soracam_20250128_030500_123.jpg"},
		{`${formatTime(payload.ms, "%Y/%m/%d/soracam_%Y%m%d_%H%M%S_%L.jpg", "Asia/Tokyo")}`, "2025/01/28/soracam_20250128_120500_123.jpg"},
		{`${formatTime(payload.int, "%Y%m%d", payload.tz)}`, "20250128"},
		{`${formatTime(payload.iso, "%F %T.%L")}`, "2025-01-28 03:05:00.123"},
		{`${formatTime(date("2025-01-28T03:05:00Z"), "%H:%M")}`, "03:05"},
		// A null or empty zone is UTC.
		{`${formatTime(payload.ms, "%H", payload.noZone)}`, "03"},
		{`${formatTime(payload.ms, "%H", "")}`, "03"},
		// ISO-8601 with Z, or with the zone's offset.
		{`${formatTime(payload.ms, "%Y-%m-%dT%H:%M:%S.%LZ")}`, "2025-01-28T03:05:00.123Z"},
		{`${formatTime(payload.ms, "%Y-%m-%dT%H:%M:%S.%L%:z", "Asia/Tokyo")}`, "2025-01-28T12:05:00.123+09:00"},
		{`${formatTime(payload.ms, "%z %Z", "Asia/Tokyo")}`, "+0900 JST"},
		{`${formatTime(payload.ms, "%a %A %b %B %e %j %I %p %y")}`, "Tue Tuesday Jan January 28 028 03 AM 25"},
		{`${formatTime(payload.ms, "%f|%s|%%|100%%")}`, "123000|1738033500|%|100%"},
		{`${formatTime(0, "%F %T")}`, "1970-01-01 00:00:00"},
		{`day ${formatTime(payload.ms, "%d")} of ${formatTime(payload.ms, "%B")}`, "day 28 of January"},
		{`${formatTime(payload.ms, "日付 %Y年%m月%d日")}`, "日付 2025年01月28日"},
		{`${formatTime(payload.ms, "")}`, ""},
	}
	for _, tt := range tests {
		tpl, err := testCompiler.CompileTemplate(tt.src)
		if err != nil {
			t.Errorf("%s: compile: %v", tt.src, err)
			continue
		}
		got, err := tpl.RenderString(env, nil)
		if err != nil || got != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.src, got, err, tt.want)
		}
	}
}

func TestFormatTimeErrors(t *testing.T) {
	env := Env{"payload": map[string]any{"text": "yesterday", "obj": map[string]any{}}}
	tests := []struct {
		src, want string
	}{
		{`formatTime(1, "%Q")`, "unknown directive %Q"},
		{`formatTime(1, "100%")`, "lone %"},
		{`formatTime(1, "%:x")`, "%:z"},
		{`formatTime(1, "%Y", "Mars/Olympus")`, `"Mars/Olympus" is not an IANA time zone`},
		{`formatTime(1, "%Y", "Local")`, `"Local" is not an IANA time zone`},
		{`formatTime(payload.text, "%Y")`, `formatTime: cannot parse "yesterday"`},
		{`formatTime(payload.obj, "%Y")`, "UNIX time in milliseconds"},
		{`formatTime(1, 2)`, "cannot use int as argument"},
		{`formatTime(1, "%Y", "UTC", "x")`, "expected 2 to 3 arguments"},
	}
	for _, tt := range tests {
		tpl, err := testCompiler.CompileTemplate("${" + tt.src + "}")
		if err != nil {
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: compile error %v; want %q", tt.src, err, tt.want)
			}
			continue
		}
		_, err = tpl.Render(env, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want %q", tt.src, err, tt.want)
		}
	}
	// Wrong arity is caught when compiling.
	for _, src := range []string{`${formatTime(1)}`, `${formatTime(1, "%Y", "UTC", 4)}`, `${formatTime()}`} {
		if _, err := testCompiler.CompileTemplate(src); err == nil {
			t.Errorf("%s compiled", src)
		}
	}
}

// formatTime is metered like the other allocating functions: a big layout
// in a loop hits the evaluation's allocation budget.
func TestFormatTimeCost(t *testing.T) {
	env := Env{"payload": map[string]any{"layout": strings.Repeat("%B", 1<<19)}} // 1 MiB → 4 MiB
	c, err := CompileCondition(`len(map(1..100, formatTime(0, payload.layout))) > 0`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Eval(env)
	if !errors.Is(err, errBudget) && !errors.Is(err, errOutput) {
		t.Fatalf("want a limit error, got %v", err)
	}
	// One big layout alone stays within MaxOutput.
	one, err := CompileTemplate(`${formatTime(0, payload.layout)}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.Render(env, nil); !errors.Is(err, errOutput) {
		t.Fatalf("a 4 MiB result: %v", err)
	}
}

// The zone cache only keeps zones that loaded.
func TestFormatTimeZoneCache(t *testing.T) {
	for range 2 {
		if l, err := location("Asia/Tokyo"); err != nil || l.String() != "Asia/Tokyo" {
			t.Fatalf("Asia/Tokyo: %v %v", l, err)
		}
	}
	if _, err := location("No/Such_Zone"); err == nil {
		t.Fatal("No/Such_Zone loaded")
	}
	if _, ok := locations.Load("No/Such_Zone"); ok {
		t.Error("a bad zone was cached")
	}
	if l, _ := location("UTC"); l != time.UTC {
		t.Error("UTC")
	}
}
