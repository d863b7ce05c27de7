// Tests of the slack action: escaping of data in text and blocks,
// mentions, validation, and the action against a local fake of Slack's
// Incoming Webhook (https://api.slack.com/messaging/webhooks).
package flow

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/credentials"
	"github.com/nagare-iot/nagare/internal/expr"
)

// Data trying to notify everyone, mention someone or add a link.
var injections = map[string]any{
	"channel": "<!channel>",
	"here":    "hi <!here> there",
	"user":    "<@U0EVIL99>",
	"link":    "<https://evil.example|click me>",
	"amp":     "Tom & Jerry &lt;",
	"num":     42,
	"obj":     map[string]any{"k": "<!everyone>"},
}

func TestSlackTextEscaping(t *testing.T) {
	env := expr.Env{"payload": injections}
	cases := []struct{ src, want string }{
		// A lone ${…} is escaped too: the whole text may come from data.
		{"${payload.channel}", "&lt;!channel&gt;"},
		{"${payload.here}", "hi &lt;!here&gt; there"},
		{"From ${payload.user}: ${payload.link}", "From &lt;@U0EVIL99&gt;: &lt;https://evil.example|click me&gt;"},
		{"${payload.amp}", "Tom &amp; Jerry &amp;lt;"},
		{"n=${payload.num} ${payload.obj}", `n=42 {"k":"&lt;!everyone&gt;"}`},
		// The author's own markup stays markup.
		{"<!here> <https://board.example|board> ${payload.user}", "<!here> <https://board.example|board> &lt;@U0EVIL99&gt;"},
		{"no data & <b>", "no data & <b>"},
	}
	fields := reg.get(reg.actions, "slack").Fields
	for _, c := range cases {
		got, err := renderConfig(fields, map[string]any{"text": c.src, "username": "${payload.channel}"}, env)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got["text"] != c.want {
			t.Errorf("text %q → %q; want %q", c.src, got["text"], c.want)
		}
		if got["username"] != "<!channel>" { // not mrkdwn: left alone
			t.Errorf("username → %q", got["username"])
		}
	}
	// Blocks: strings from data are escaped wherever they land; literal
	// text, numbers and structure are kept.
	blocks := []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn",
		"text": "*Call* from ${payload.user}", "verbatim": false}},
		map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn", "text": "${payload.channel}"}}},
		map[string]any{"type": "divider", "n": "${payload.num}"}}
	got, err := renderConfig(fields, map[string]any{"blocks": blocks}, env)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got["blocks"])
	want := `[{"text":{"text":"*Call* from \u0026lt;@U0EVIL99\u0026gt;","type":"mrkdwn","verbatim":false},"type":"section"},{"elements":[{"text":"\u0026lt;!channel\u0026gt;","type":"mrkdwn"}],"type":"context"},{"n":42,"type":"divider"}]`
	if string(b) != want {
		t.Errorf("blocks\n got %s\nwant %s", b, want)
	}
	// Other escapings keep their rule: a lone ${…} in a URL is not escaped.
	wh := reg.get(reg.actions, "webhook").Fields
	u, _ := renderConfig(wh, map[string]any{"url": "${payload.link}"}, env)
	if u["url"] != injections["link"] {
		t.Errorf("webhook url %q", u["url"])
	}
}

func TestSlackMentions(t *testing.T) {
	cases := []struct {
		in   any
		want []string
		err  string
	}{
		{nil, nil, ""},
		{"U012AB3CD", []string{"<@U012AB3CD>"}, ""},
		{[]any{"U012AB3CD", "W0123ABC", ""}, []string{"<@U012AB3CD>", "<@W0123ABC>"}, ""},
		{"U1> <!channel", nil, "not a Slack user ID"},
		{"u012ab3cd", nil, "not a Slack user ID"},
		{"UX", nil, "not a Slack user ID"},
		{"<@U012AB3CD>", nil, "not a Slack user ID"},
		{[]any{"U012AB3CD", 7.0}, nil, "not a Slack user ID"},
		{map[string]any{"id": "U1"}, nil, "an object"},
	}
	for _, c := range cases {
		got, err := slackMentions(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !IsPermanent(err) {
				t.Errorf("%v: error %v; want permanent %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) && len(got)+len(c.want) > 0 {
			t.Errorf("%v → %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestSlackActionValidation(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"ok", `{credentials: hook, text: "hi ${payload.x}", mention: [U012AB3CD, "${payload.who}"]}`, ""},
		{"blocks only", `{credentials: hook, blocks: [{type: divider}]}`, ""},
		{"blocks from data", `{credentials: hook, blocks: "${payload.blocks}"}`, ""},
		{"nothing to say", `{credentials: hook}`, "needs text or blocks"},
		{"bad literal mention", `{credentials: hook, text: x, mention: ["@alice"]}`, `mention[0]: "@alice" is not a Slack user ID`},
		{"bad single mention", `{credentials: hook, text: x, mention: "<!channel>"}`, "is not a Slack user ID"},
		{"blocks not a list", `{credentials: hook, blocks: {type: divider}}`, "blocks must be a list"},
		{"no credentials", `{text: x}`, `slack needs "credentials"`},
	}
	for _, c := range cases {
		src := "name: s\nchannels:\n  in:\n    actions:\n      - name: a\n        slack: " + c.body + "\n"
		_, err := Parse("s.yaml", []byte(src), Lookup{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v; want %q", c.name, err, c.want)
		}
	}
}

// fakeSlack is Slack's Incoming Webhook endpoint as documented: it takes
// a JSON POST, answers 200 "ok", or the error it is told to answer.
type fakeSlack struct {
	srv  *httptest.Server
	path string // the secret part of the URL
	mu   sync.Mutex
	got  []map[string]any
	next []fakeAnswer // answered first, in order
}

type fakeAnswer struct {
	status int
	body   string
	hdr    map[string]string
}

func newFakeSlack(t testing.TB) *fakeSlack {
	f := &fakeSlack{path: "/services/T0TEAM/B0HOOK/sEcReT0123456789abcdef"}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.next) > 0 {
			a := f.next[0]
			f.next = f.next[1:]
			for k, v := range a.hdr {
				w.Header().Set(k, v)
			}
			w.WriteHeader(a.status)
			io.WriteString(w, a.body)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != f.path {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "no_service")
			return
		}
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || json.Unmarshal(b, &m) != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "invalid_payload")
			return
		}
		f.got = append(f.got, m)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) url() string { return f.srv.URL + f.path }

func (f *fakeSlack) posts() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.got...)
}

func (f *fakeSlack) answer(a ...fakeAnswer) {
	f.mu.Lock()
	f.next = append(f.next, a...)
	f.mu.Unlock()
}

func TestSlackAction(t *testing.T) {
	e := newActEnv(t, false)
	ctx := t.Context()
	fake := newFakeSlack(t)
	for id, in := range map[string]*credentials.Input{
		"hook":    {Type: "slack-incoming-webhook", Credentials: map[string]any{"url": fake.url()}},
		"badurl":  {Type: "slack-incoming-webhook", Credentials: map[string]any{"url": "hooks.slack.com/services/x"}},
		"a-token": {Type: "api-token-credentials", Credentials: map[string]any{"token": "t"}},
	} {
		if _, err := e.creds.Create(ctx, e.op, id, in); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.run(ctx, "slack", map[string]any{"credentials": "hook", "text": "Call: &lt;!channel&gt;",
		"mention": []any{"U012AB3CD", "W0123ABC"}, "username": "Call button", "iconEmoji": ":bell:",
		"blocks": []any{map[string]any{"type": "divider"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, map[string]any{"status": 200, "body": "ok"}) {
		t.Errorf("output %v", out)
	}
	want := map[string]any{"text": "<@U012AB3CD> <@W0123ABC> Call: &lt;!channel&gt;", "username": "Call button",
		"icon_emoji": ":bell:", "blocks": []any{map[string]any{"type": "divider"}}}
	if p := fake.posts(); len(p) != 1 || !reflect.DeepEqual(p[0], want) {
		t.Errorf("Slack got %v\nwant %v", p, want)
	}

	secret := strings.TrimPrefix(fake.path, "/")
	noURL := func(err error) {
		t.Helper()
		for _, s := range []string{fake.url(), fake.path, secret, "sEcReT"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error leaks the webhook URL: %v", err)
			}
		}
	}
	// Slack's documented refusals: 4xx fail at once, 5xx and 429 retry,
	// 429 after its Retry-After.
	for _, c := range []struct {
		a         fakeAnswer
		permanent bool
		want      []string
		wait      time.Duration
	}{
		{fakeAnswer{status: 400, body: "invalid_payload"}, true, []string{"400", "invalid_payload", "not valid"}, 0},
		{fakeAnswer{status: 404, body: "no_service"}, true, []string{"404", "no_service", "disabled or removed"}, 0},
		{fakeAnswer{status: 403, body: "action_prohibited"}, true, []string{"403", "action_prohibited"}, 0},
		{fakeAnswer{status: 410, body: "channel_is_archived"}, true, []string{"410", "archived"}, 0},
		{fakeAnswer{status: 429, body: "rate_limited", hdr: map[string]string{"Retry-After": "7"}}, false, []string{"429", "retry after 7s"}, 7 * time.Second},
		{fakeAnswer{status: 500, body: "rollup_error"}, false, []string{"500", "rollup_error"}, 0},
		{fakeAnswer{status: 201, body: "ok?"}, true, []string{"201"}, 0},
		{fakeAnswer{status: 400, body: "echo " + fake.url()}, true, []string{"400", "****"}, 0},
	} {
		fake.answer(c.a)
		_, err := e.run(ctx, "slack", map[string]any{"credentials": "hook", "text": "x"}, nil)
		mustFail(t, err, c.permanent, c.want...)
		noURL(err)
		if got := retryAfter(err); got != c.wait {
			t.Errorf("%d: retryAfter %s; want %s", c.a.status, got, c.wait)
		}
	}
	// An unreachable Slack: retried, and the URL stays out of the error.
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if _, err := e.creds.Create(ctx, e.op, "down", &credentials.Input{Type: "slack-incoming-webhook",
		Credentials: map[string]any{"url": down.URL + fake.path}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.run(ctx, "slack", map[string]any{"credentials": "down", "text": "x"}, nil)
	mustFail(t, err, false, "slack webhook")
	noURL(err)

	for _, c := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"credentials": "nope", "text": "x"}, `"nope" not found`},
		{map[string]any{"credentials": "a-token", "text": "x"}, "slack-incoming-webhook is needed"},
		{map[string]any{"credentials": "badurl", "text": "x"}, "not an http(s) URL"},
		{map[string]any{"credentials": "hook", "text": "x", "mention": "<!channel>"}, "not a Slack user ID"},
		{map[string]any{"credentials": "hook", "text": ""}, "the message is empty"},
		{map[string]any{"credentials": "hook", "blocks": "not blocks"}, "a list of blocks"},
	} {
		_, err := e.run(ctx, "slack", c.cfg, nil)
		mustFail(t, err, true, c.want)
	}
	if n := len(fake.posts()); n != 1 {
		t.Errorf("Slack got %d posts; want 1 (failures post nothing)", n)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "30": 30 * time.Second, "0": 0, "-3": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q → %s; want %s", in, got, want)
		}
	}
	// The engine's cap.
	if got := retryAfter(Permanent(&slackError{wait: time.Hour})); got != MaxOutputDelay {
		t.Errorf("retryAfter caps at %s, got %s", MaxOutputDelay, got)
	}
	if got := retryAfter(errors.New("x")); got != 0 {
		t.Errorf("plain error: %s", got)
	}
}
