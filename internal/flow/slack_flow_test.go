// Integration tests of the seed 003 call button on a whole server (real
// embedded NATS, SQLite or PostgreSQL): a button press published over
// HTTP mentions the person on duty in Slack (a local fake of the Incoming
// Webhook) and arms a keyed timer; Slack's Outgoing Webhook and signed
// requests (slash commands, Events API) reach flows through the channel
// URL, authenticated.
package flow_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/servertest"
)

// slackHook is a fake Slack Incoming Webhook: it records the JSON posted
// to its secret path and answers 200 "ok", as Slack does.
type slackHook struct {
	srv   *httptest.Server
	path  string
	mu    sync.Mutex
	posts []map[string]any
}

func newSlackHook(t *testing.T) *slackHook {
	h := &slackHook{path: "/services/T0TEAM/B0HOOK/hookSecret0123456789"}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != h.path {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "no_service")
			return
		}
		if err := json.Unmarshal(b, &m); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "invalid_payload")
			return
		}
		h.mu.Lock()
		h.posts = append(h.posts, m)
		h.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *slackHook) got() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.posts...)
}

func credential(t *testing.T, ts *servertest.TS, id, typ string, values map[string]string) {
	t.Helper()
	if res := ts.Root.Do("POST", "/v1/credentials/"+id, map[string]any{"type": typ, "credentials": values}); res.Status != 201 {
		t.Fatalf("credential %s: %d %s", id, res.Status, res.Body)
	}
}

// hookPath is the path of a channel's secret URL.
func hookPath(t *testing.T, ts *servertest.TS, app, channel string) string {
	t.Helper()
	var v flow.AppView
	ts.Root.Do("GET", "/v1/flux/apps/"+app, nil).JSON(&v)
	for _, c := range v.Channels {
		if c.Name == channel && c.WebhookURL != "" {
			return c.WebhookURL[strings.Index(c.WebhookURL, "/v1/"):]
		}
	}
	t.Fatalf("channel %s of %s has no URL: %+v", channel, app, v.Channels)
	return ""
}

func runsOf(ts *servertest.TS, app string) []flow.Run {
	var runs []flow.Run
	ts.Root.Do("GET", "/v1/flux/apps/"+app+"/runs?limit=1000", nil).JSON(&runs)
	return runs
}

func runInput(t *testing.T, ts *servertest.TS, app, run string) map[string]any {
	t.Helper()
	var d flow.RunDetail
	ts.Root.Do("GET", "/v1/flux/apps/"+app+"/runs/"+run, nil).JSON(&d)
	var in map[string]any
	if len(d.Trace) == 0 || json.Unmarshal(d.Trace[0].Input, &in) != nil {
		t.Fatalf("run %s: %+v", run, d)
	}
	return in
}

func TestButtonPressMentionsInSlack(t *testing.T) {
	hook := newSlackHook(t)
	back := newSink(t)
	ts := startFlow(t)
	credential(t, ts, "duty-hook", "slack-incoming-webhook", map[string]string{"url": hook.srv.URL + hook.path})
	var g struct{ GroupID string }
	ts.Root.Do("POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}}).JSON(&g)
	var d struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string `json:"deviceSecret"`
	}
	ts.Root.Do("POST", "/v1/devices", map[string]any{}).JSON(&d)
	ts.Root.Do("POST", "/v1/devices/"+d.DeviceID+"/set_group", map[string]string{"groupId": g.GroupID})
	apply(t, ts, `
name: call
channels:
  press:
    sources:
      - button: {groupId: `+g.GroupID+`, clickTypes: [SINGLE, LONG]}
    actions:
      - name: mention
        slack:
          credentials: duty-hook
          mention: [U012AB3CD]
          text: "Call at booth ${payload.raw.booth} (${payload.clickType}, battery ${payload.batteryLevel})"
          iconEmoji: ":bell:"
        output:
          channel: idle
          delay: 2s
          key: "idle-${payload.deviceId}"
          transform: {deviceId: "${payload.deviceId}"}
  idle:
    actions:
      - name: back
        webhook: {url: "`+back.srv.URL+`/idle"}
`)
	publish := func(body string) {
		t.Helper()
		res := ts.Anon().Do("POST", "/v1/devices/"+d.DeviceID+"/publish", body, "x-device-secret", d.DeviceSecret, "Content-Type", "application/json")
		if res.Status != 201 {
			t.Fatalf("publish: %d %s", res.Status, res.Body)
		}
	}
	// The SORACOM LTE-M Button's payload, with data trying to notify the
	// whole channel.
	publish(`{"clickType":1,"clickTypeName":"SINGLE","batteryLevel":0.75,"binaryParserEnabled":true,"booth":"<!channel> A&B"}`)
	publish(`{"clickType":2,"clickTypeName":"DOUBLE","batteryLevel":0.75,"binaryParserEnabled":true,"booth":"x"}`) // not a wanted click
	publish(`{"temperature":21}`)                                                                                  // not a press
	waitFor(t, func() bool { return len(hook.got()) >= 1 })
	want := "<@U012AB3CD> Call at booth &lt;!channel&gt; A&amp;B (SINGLE, battery 0.75)"
	if p := hook.got(); p[0]["text"] != want || p[0]["icon_emoji"] != ":bell:" {
		t.Fatalf("Slack got %v\nwant text %q", p, want)
	}
	// The keyed timer fires once, 2 s later.
	waitFor(t, func() bool { return len(back.got()) >= 1 })
	if b := back.got(); len(b) != 1 || b[0]["deviceId"] != d.DeviceID {
		t.Errorf("idle got %v", b)
	}
	time.Sleep(time.Second)
	if n := len(hook.got()); n != 1 {
		t.Errorf("Slack got %d posts; want 1 (DOUBLE and sensor data are not wanted presses)", n)
	}
	for _, r := range runsOf(ts, "call") {
		if r.Status != flow.RunSucceeded {
			t.Errorf("run %+v", r)
		}
		if r.Source == "button" {
			in := runInput(t, ts, "call", r.RunID)
			if in["clickType"] != "SINGLE" || in["deviceId"] != d.DeviceID || in["batteryLevel"] != 0.75 {
				t.Errorf("button message %v", in)
			}
		}
	}
	// The trace shows the credential's ID, never the webhook URL.
	res := ts.Root.Do("GET", "/v1/flux/apps/call/runs?limit=10", nil)
	var runs []flow.Run
	res.JSON(&runs)
	for _, r := range runs {
		det := ts.Root.Do("GET", "/v1/flux/apps/call/runs/"+r.RunID, nil)
		if strings.Contains(string(det.Body), "hookSecret") {
			t.Errorf("run %s shows the webhook URL: %s", r.RunID, det.Body)
		}
	}
}

func TestSlackOutgoingWebhookSource(t *testing.T) {
	ts := startFlow(t)
	credential(t, ts, "slack-out", "api-token-credentials", map[string]string{"token": "XXXXXXXXXXXXXXXXXX"})
	apply(t, ts, `
name: answer
channels:
  ok:
    sources:
      - slack: {mode: outgoing-webhook, credentials: slack-out, triggerWords: [ok], reply: 現場急行中!}
    actions:
      - name: running
        condition: payload.command == "ok" && context.eventType == "slack" && context.mode == "outgoing-webhook"
        republish: {}
`)
	path := hookPath(t, ts, "answer", "ok")
	post := func(form url.Values) *servertest.Response {
		return ts.Anon().Do("POST", path, form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}
	form := url.Values{"token": {"XXXXXXXXXXXXXXXXXX"}, "team_id": {"T0001"}, "team_domain": {"example"},
		"channel_id": {"C2147483705"}, "channel_name": {"staff"}, "timestamp": {"1355517523.000005"},
		"user_id": {"U2147483697"}, "user_name": {"tanaka"}, "text": {"OK 向かいます <!channel>"}, "trigger_word": {"OK"}}
	res := post(form)
	if res.Status != 200 || strings.TrimSpace(string(res.Body)) != `{"text":"現場急行中!"}` {
		t.Fatalf("outgoing webhook: %d %s", res.Status, res.Body)
	}
	// Slack retrying the same message (same channel and ts): one run.
	if res := post(form); res.Status != 200 {
		t.Errorf("retry: %d %s", res.Status, res.Body)
	}
	// A wrong or missing token: 401, nothing starts.
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("token", "wrong")
	bad.Set("timestamp", "1355517524.000001")
	if res := post(bad); res.Status != 401 {
		t.Errorf("wrong token: %d %s", res.Status, res.Body)
	}
	bad.Del("token")
	if res := post(bad); res.Status != 401 {
		t.Errorf("no token: %d %s", res.Status, res.Body)
	}
	// Not a trigger word: 200 {} and nothing starts.
	other := url.Values{}
	for k, v := range form {
		other[k] = v
	}
	other.Set("text", "okay, later")
	other.Set("timestamp", "1355517525.000001")
	if res := post(other); res.Status != 200 || strings.TrimSpace(string(res.Body)) != "{}" {
		t.Errorf("other text: %d %s", res.Status, res.Body)
	}
	waitFor(t, func() bool {
		r := runsOf(ts, "answer")
		return len(r) == 1 && r[0].Status == flow.RunSucceeded
	})
	time.Sleep(500 * time.Millisecond)
	runs := runsOf(ts, "answer")
	if len(runs) != 1 || runs[0].Source != "slack" {
		t.Fatalf("runs %+v; want one slack run", runs)
	}
	in := runInput(t, ts, "answer", runs[0].RunID)
	if in["command"] != "ok" || in["args"] != "向かいます <!channel>" || in["user_name"] != "tanaka" || in["channel_name"] != "staff" || in["trigger_word"] != "OK" {
		t.Errorf("message %v", in)
	}
	if ev, _ := in["event"].(map[string]any); ev == nil || ev["token"] != nil {
		t.Errorf("event %v (no token)", in["event"])
	}
}

// signed posts body to path signed with secret at time at.
func signed(ts *servertest.TS, path, secret, ctype, body string, at time.Time, hdr ...string) *servertest.Response {
	stamp := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + stamp + ":" + body))
	h := append([]string{"Content-Type", ctype, "X-Slack-Request-Timestamp", stamp,
		"X-Slack-Signature", "v0=" + hex.EncodeToString(mac.Sum(nil))}, hdr...)
	return ts.Anon().Do("POST", path, body, h...)
}

func TestSlackSignedSource(t *testing.T) {
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	ts := startFlow(t)
	credential(t, ts, "slack-app", "slack-signing-secret", map[string]string{"signingSecret": secret})
	apply(t, ts, `
name: slash
channels:
  cmd:
    sources:
      - slack: {mode: signed, credentials: slack-app, triggerWords: [ok]}
    actions:
      - name: r
        republish: {}
`)
	path := hookPath(t, ts, "slash", "cmd")
	const form = "application/x-www-form-urlencoded"
	const js = "application/json"
	now := time.Now()

	// The Events API's URL verification is answered at once.
	res := signed(ts, path, secret, js, `{"token":"x","challenge":"chal-123","type":"url_verification"}`, now)
	if res.Status != 200 || strings.TrimSpace(string(res.Body)) != `{"challenge":"chal-123"}` {
		t.Fatalf("url_verification: %d %s", res.Status, res.Body)
	}
	// A slash command: 200 with an empty body (Slack shows nothing).
	slash := "token=t&team_id=T0001&channel_id=C1&channel_name=staff&user_id=U2147483697&user_name=tanaka&command=%2Fcall&text=booth+3&trigger_id=1334.7384.8088abc"
	if res := signed(ts, path, secret, form, slash, now); res.Status != 200 || len(res.Body) != 0 {
		t.Fatalf("slash command: %d %q", res.Status, res.Body)
	}
	// An event, then Slack's retry of it: one run.
	event := `{"type":"event_callback","team_id":"T0001","event_id":"Ev0123","event_time":1700000000,
		"event":{"type":"message","channel":"C1","user":"U2147483697","text":"ok on my way","ts":"1700000000.000100"}}`
	if res := signed(ts, path, secret, js, event, now); res.Status != 200 {
		t.Fatalf("event: %d %s", res.Status, res.Body)
	}
	if res := signed(ts, path, secret, js, event, now, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout"); res.Status != 200 {
		t.Fatalf("event retry: %d %s", res.Status, res.Body)
	}
	// A message without the trigger word, and a bot's: 200, nothing starts.
	for _, ev := range []string{
		`{"type":"event_callback","event_id":"Ev0124","event":{"type":"message","user":"U1","text":"lunch?"}}`,
		`{"type":"event_callback","event_id":"Ev0125","event":{"type":"message","subtype":"bot_message","bot_id":"B1","text":"ok"}}`,
	} {
		if res := signed(ts, path, secret, js, ev, now); res.Status != 200 {
			t.Errorf("ignored event: %d %s", res.Status, res.Body)
		}
	}
	// Unauthenticated: 401 and nothing starts (nor is a challenge echoed).
	fresh := `{"type":"event_callback","event_id":"Ev9","event":{"type":"message","user":"U1","text":"ok attack"}}`
	for name, res := range map[string]*servertest.Response{
		"wrong secret": signed(ts, path, "not-the-secret", js, fresh, now),
		"replayed":     signed(ts, path, secret, js, fresh, now.Add(-6*time.Minute)),
		"future":       signed(ts, path, secret, js, fresh, now.Add(6*time.Minute)),
		"unsigned":     ts.Anon().Do("POST", path, fresh, "Content-Type", js),
		"challenge":    signed(ts, path, "nope", js, `{"challenge":"x","type":"url_verification"}`, now),
	} {
		if res.Status != 401 || strings.Contains(string(res.Body), "challenge") {
			t.Errorf("%s: %d %s", name, res.Status, res.Body)
		}
	}
	waitFor(t, func() bool { return len(runsOf(ts, "slash")) >= 2 })
	time.Sleep(500 * time.Millisecond)
	runs := runsOf(ts, "slash")
	if len(runs) != 2 {
		t.Fatalf("%d runs; want 2 (the slash command and the event once)", len(runs))
	}
	modes := map[string]map[string]any{}
	for _, r := range runs {
		var d flow.RunDetail
		ts.Root.Do("GET", "/v1/flux/apps/slash/runs/"+r.RunID, nil).JSON(&d)
		var in map[string]any
		json.Unmarshal(d.Trace[0].Input, &in)
		modes[in["command"].(string)] = in
	}
	if c := modes["/call"]; c == nil || c["args"] != "booth 3" || c["user_name"] != "tanaka" {
		t.Errorf("slash command message %v", modes)
	}
	if c := modes["ok"]; c == nil || c["args"] != "on my way" || c["user_id"] != "U2147483697" || c["team_id"] != "T0001" {
		t.Errorf("event message %v", modes)
	}
}

func TestSlackSourceValidation(t *testing.T) {
	cases := []struct{ name, sources, want string }{
		{"ok", `[{slack: {mode: signed, credentials: c}}]`, ""},
		{"no mode", `[{slack: {credentials: c}}]`, `slack needs "mode"`},
		{"bad mode", `[{slack: {mode: rtm, credentials: c}}]`, "not one of outgoing-webhook, signed"},
		{"trigger word with a space", `[{slack: {mode: signed, credentials: c, triggerWords: ["on my"]}}]`, "must be one word"},
		{"webhook too", `[{webhook: {}}, {slack: {mode: signed, credentials: c}}]`, "at most one of them"},
		{"button", `[{button: {deviceId: d1, clickTypes: [SINGLE, TRIPLE]}}]`, `"TRIPLE" is not one of SINGLE, DOUBLE, LONG`},
		{"button needs a device", `[{button: {}}]`, "exactly one of deviceId, groupId"},
	}
	for _, c := range cases {
		src := "name: v\nchannels:\n  a:\n    sources: " + c.sources + "\n"
		_, err := flow.Parse("v.yaml", []byte(src), flow.Lookup{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v; want %q", c.name, err, c.want)
		}
	}
}
