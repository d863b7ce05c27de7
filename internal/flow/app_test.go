package flow

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseCrowding(t *testing.T) {
	src, err := os.ReadFile("testdata/crowding.yaml")
	if err != nil {
		t.Fatal(err)
	}
	app, err := Parse("crowding.yaml", src, Lookup{
		Credential: func(id string) bool { return id == "sink-login" },
		Operation:  func(string) bool { return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if app.Name != "crowding-monitor" || !app.Enabled || len(app.Channels) != 2 || string(app.Source) != string(src) {
		t.Fatalf("%+v", app)
	}
	tick, poll := app.Channels[0], app.Channels[1]
	if tick.Name != "tick" || len(tick.Sources) != 1 || tick.Sources[0].Kind != "timer" ||
		tick.Sources[0].Config["cron"] != "0 */5 * * * *" || tick.Sources[0].Config["timezone"] != "Asia/Tokyo" {
		t.Fatalf("tick: %+v %+v", tick, tick.Sources[0])
	}
	check := poll.Actions[0]
	if check.Kind != "api" || check.Condition != `payload.status != "completed"` || check.Output.Channel != "poll" ||
		check.Output.Delay != 2*time.Second || check.Timeout != DefaultTimeout || check.Retries != DefaultRetries {
		t.Fatalf("check: %+v %+v", check, check.Output)
	}
	store := poll.Actions[1]
	if store.Kind != "webhook" || store.Config["method"] != "POST" || store.Config["maxResponseBytes"] != 65536 ||
		store.Retries != 5 || store.Timeout != 30*time.Second || store.Output != nil {
		t.Fatalf("store: %+v", store)
	}
	if h := store.Config["headers"].(map[string]string); h["X-Source"] != "nagare" {
		t.Fatalf("headers %v", h)
	}
}

// TestParseBadGolden: every problem is reported at once, with positions.
func TestParseBadGolden(t *testing.T) {
	src, _ := os.ReadFile("testdata/bad.yaml")
	_, err := Parse("bad.yaml", src, Lookup{Credential: func(string) bool { return false }})
	if err == nil {
		t.Fatal("bad.yaml accepted")
	}
	got := err.Error() + "\n"
	if *update {
		os.WriteFile("testdata/bad.golden", []byte(got), 0o644)
	}
	want, _ := os.ReadFile("testdata/bad.golden")
	if got != string(want) {
		t.Fatalf("got:\n%s\nwant (go test ./internal/flow -update):\n%s", got, want)
	}
}

func TestParseProblems(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"empty", ``, "1:1: the file is empty"},
		{"not yaml", "name: [", "did not find expected node content"},
		{"no channels", "name: a\n", "1:1: the app needs channels"},
		{"no name", "channels: {c: {}}\n", "the app needs a name"},
		{"missing credential", "name: a\nchannels:\n  c:\n    actions:\n      - name: w\n        webhook: {url: 'http://x', basicAuth: nope}\n",
			`6:47: basicAuth: no credential "nope"`},
		{"template offset", "name: a\nchannels:\n  c:\n    actions:\n      - name: w\n        webhook: {url: 'http://x/${payload.a'}\n",
			"6:34: unterminated ${"},
		{"bad condition syntax", "name: a\nchannels:\n  c:\n    actions:\n      - name: w\n        condition: '1 +'\n        republish: {}\n",
			"6:21: condition: "},
		{"channel ref", "name: a\nchannels:\n  c:\n    actions:\n      - name: w\n        republish: {}\n        output: {channel: d}\n",
			`7:27: unknown channel "d"`},
		{"bad cron", "name: a\nchannels:\n  c:\n    sources:\n      - timer: {cron: '61 * * * * *'}\n",
			`cron: seconds field "61": 61 is outside 0-59`},
		{"files prefix", "name: a\nchannels:\n  c:\n    sources:\n      - files: {prefix: cams}\n", "prefix must start with /"},
		{"unknown operation", "name: a\nchannels:\n  c:\n    actions:\n      - name: x\n        api: {operation: 'Device:nope', user: bot}\n",
			`6:26: operation: no API operation "Device:nope"`},
		{"device one of", "name: a\nchannels:\n  c:\n    sources:\n      - device: {}\n", "needs exactly one of deviceId, groupId"},
		{"files one of", "name: a\nchannels:\n  c:\n    actions:\n      - name: f\n        files: {path: /a, url: 'http://x', content: x}\n", "needs exactly one of url, content (got 2)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.src), Lookup{
				Credential: func(string) bool { return false },
				Operation:  func(op string) bool { return op == "Device:getDevice" },
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestCheckCron(t *testing.T) {
	for _, ok := range []string{"0 */5 * * * *", "0 0 9 * * MON-FRI", "30 15 10 1,15 JAN *", "* * * * * *"} {
		if err := checkCron(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"*/5 * * * *", "0 0 24 * * *", "0 0 0 0 * *", "x * * * * *", "0 */0 * * * *", "0 0 0 * FOO *"} {
		if err := checkCron(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRegistryDoc(t *testing.T) {
	d := Doc()
	for _, want := range []string{"### `timer`", "### `webhook`", "| `basicAuth` | credential |", "Exactly one of: `interval`, `cron`."} {
		if !strings.Contains(d, want) {
			t.Errorf("Doc lacks %q", want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a kind twice did not panic")
		}
	}()
	RegisterAction(Spec{Kind: "webhook"})
}

func TestWithEnabled(t *testing.T) {
	cases := []struct {
		name, src string
		enabled   bool
		want      string
	}{
		{"replaces the line, keeps the comment", "name: a\nenabled: true # on\nchannels: {}\n", false, "name: a\nenabled: false # on\nchannels: {}\n"},
		{"adds one after name when disabling", "# my app\nname: a\nchannels: {}\n", false, "# my app\nname: a\nenabled: false\nchannels: {}\n"},
		{"absent already means enabled", "name: a\nchannels: {}\n", true, "name: a\nchannels: {}\n"},
		{"enables", "name: a\nenabled: false\nchannels: {}\n", true, "name: a\nenabled: true\nchannels: {}\n"},
		{"nested enabled keys are not touched", "name: a\nchannels:\n  c:\n    enabled: true\n", false, "name: a\nenabled: false\nchannels:\n  c:\n    enabled: true\n"},
		{"JSON stays as it is", `{"name": "a", "channels": {}}`, false, `{"name": "a", "channels": {}}`},
		{"an edit that would not parse is not made", "name: a\nenabled:\n  true\nchannels: {}\n", false, "name: a\nenabled:\n  true\nchannels: {}\n"},
	}
	for _, c := range cases {
		if got := withEnabled(c.src, c.enabled); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
