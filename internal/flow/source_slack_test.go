// Unit tests of the slack source: request signatures, Outgoing Webhook
// forms, trigger words, Events API and slash command parsing.
package flow

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testSigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// signedHeader signs body the way Slack does, at time ts.
func signedHeader(secret string, ts time.Time, body string) http.Header {
	s := strconv.FormatInt(ts.Unix(), 10)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", s)
	h.Set("X-Slack-Signature", slackSignature(secret, s, []byte(body)))
	return h
}

func TestVerifySlackSignature(t *testing.T) {
	now := time.Unix(1531420618, 0)
	body := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Fweather&text=94070"
	// Slack's documented example (https://api.slack.com/authentication/verifying-requests-from-slack).
	doc := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	if got := slackSignature(testSigningSecret, "1531420618", []byte(doc)); got != "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503" {
		t.Fatalf("Slack's documented example signs as %s", got)
	}
	good := signedHeader(testSigningSecret, now, body)
	with := func(k, v string) http.Header {
		h := good.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	cases := []struct {
		name string
		h    http.Header
		body string
		now  time.Time
		want string // "" valid
	}{
		{"valid", good, body, now, ""},
		{"valid, clock 4 min ahead", good, body, now.Add(4 * time.Minute), ""},
		{"valid, clock 4 min behind", good, body, now.Add(-4 * time.Minute), ""},
		{"replayed after 5 min", good, body, now.Add(5*time.Minute + time.Second), "from now"},
		{"from the future", good, body, now.Add(-6 * time.Minute), "from now"},
		{"wrong secret", signedHeader("another-secret", now, body), body, now, "does not match"},
		{"body changed", good, body + "&x=1", now, "does not match"},
		{"timestamp changed", with("X-Slack-Request-Timestamp", strconv.FormatInt(now.Unix()+1, 10)), body, now, "does not match"},
		{"no signature", with("X-Slack-Signature", ""), body, now, "not signed"},
		{"no timestamp", with("X-Slack-Request-Timestamp", ""), body, now, "not signed"},
		{"timestamp not a number", with("X-Slack-Request-Timestamp", "yesterday"), body, now, "not a UNIX time"},
		{"other version", with("X-Slack-Signature", "v1="+strings.TrimPrefix(good.Get("X-Slack-Signature"), "v0=")), body, now, "does not match"},
		{"empty signature", with("X-Slack-Signature", "v0="), body, now, "does not match"},
	}
	for _, c := range cases {
		err := verifySlackSignature(c.h, []byte(c.body), testSigningSecret, c.now)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v; want %q", c.name, err, c.want)
		}
	}
}

func TestMatchTrigger(t *testing.T) {
	words := []string{"ok", "googlebot:", "呼出"}
	cases := []struct {
		text, cmd, typed, args string
		ok                     bool
	}{
		{"ok on my way", "ok", "ok", "on my way", true},
		{"OK, 向かいます", "ok", "OK", "向かいます", true},
		{"  Ok", "ok", "Ok", "", true},
		{"ok:going", "ok", "ok", "going", true},
		{"okay then", "", "", "", false},
		{"ok2", "", "", "", false},
		{"not ok", "", "", "", false},
		{"googlebot: what is 2+2", "googlebot:", "googlebot:", "what is 2+2", true},
		{"<@U0BOT> ok ready", "ok", "ok", "ready", true},
		{"呼出 田中", "呼出", "呼出", "田中", true},
		{"", "", "", "", false},
	}
	for _, c := range cases {
		cmd, typed, args, ok := matchTrigger(c.text, words)
		if cmd != c.cmd || typed != c.typed || args != c.args || ok != c.ok {
			t.Errorf("%q → %q %q %q %v; want %q %q %q %v", c.text, cmd, typed, args, ok, c.cmd, c.typed, c.args, c.ok)
		}
	}
}

// outgoingForm is what Slack posts for an Outgoing Webhook.
func outgoingForm(text, trigger string) url.Values {
	return url.Values{"token": {"XXXXXXXXXXXXXXXXXX"}, "team_id": {"T0001"}, "team_domain": {"example"},
		"service_id": {"1359908388851"}, "channel_id": {"C2147483705"}, "channel_name": {"test"},
		"timestamp": {"1355517523.000005"}, "user_id": {"U2147483697"}, "user_name": {"Steve"},
		"text": {text}, "trigger_word": {trigger}}
}

func TestOutgoingWebhookMessages(t *testing.T) {
	src := func(cfg map[string]any) *Source {
		if _, ok := cfg["ignoreBots"]; !ok {
			cfg["ignoreBots"] = true
		}
		return &Source{Kind: "slack", Config: cfg}
	}
	cases := []struct {
		name   string
		form   url.Values
		src    *Source
		wanted bool
		want   map[string]any
	}{
		{"trigger word configured here", outgoingForm("OK 向かいます", "ok"), src(map[string]any{"triggerWords": []string{"ok"}}), true,
			map[string]any{"command": "ok", "args": "向かいます", "trigger_word": "OK", "text": "OK 向かいます", "user_name": "Steve", "user_id": "U2147483697"}},
		{"other word", outgoingForm("okay", "ok"), src(map[string]any{"triggerWords": []string{"ok"}}), false, nil},
		{"Slack's trigger word", outgoingForm("googlebot: What is the air-speed", "googlebot:"), src(map[string]any{}), true,
			map[string]any{"command": "googlebot:", "args": "What is the air-speed", "trigger_word": "googlebot:"}},
		{"every message of a channel", outgoingForm("hello", ""), src(map[string]any{}), true,
			map[string]any{"command": "", "args": "hello", "trigger_word": ""}},
		{"a bot's post is ignored", func() url.Values { f := outgoingForm("ok", "ok"); f.Set("bot_id", "B123"); return f }(), src(map[string]any{}), false, nil},
		{"slackbot is ignored", func() url.Values { f := outgoingForm("ok", "ok"); f.Set("user_id", "USLACKBOT"); return f }(), src(map[string]any{}), false, nil},
		{"bots allowed", func() url.Values { f := outgoingForm("ok", "ok"); f.Set("bot_id", "B123"); return f }(), src(map[string]any{"ignoreBots": false}), true,
			map[string]any{"command": "ok"}},
	}
	for _, c := range cases {
		msg := outgoingMessage(c.form)
		if got := slackWanted(msg, c.src); got != c.wanted {
			t.Errorf("%s: wanted = %v", c.name, got)
			continue
		}
		for k, v := range c.want {
			if msg.payload[k] != v {
				t.Errorf("%s: %s = %#v; want %#v", c.name, k, msg.payload[k], v)
			}
		}
		ev := msg.payload["event"].(map[string]any)
		if _, leaked := ev["token"]; leaked || ev["service_id"] != "1359908388851" {
			t.Errorf("%s: event %v (the token must be dropped)", c.name, ev)
		}
		if msg.mode != "outgoing-webhook" || msg.id == "" || msg.context["eventType"] != "slack" {
			t.Errorf("%s: %+v", c.name, msg)
		}
	}
}

func TestSignedMessages(t *testing.T) {
	h := http.Header{}
	// URL verification: answered with the challenge, nothing starts.
	msg, answer, err := signedMessage(h, []byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`))
	if err != nil || msg != nil || answer.(map[string]any)["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("url_verification: %v %v %v", msg, answer, err)
	}
	// An Events API message.
	h.Set("X-Slack-Retry-Num", "1")
	msg, answer, err = signedMessage(h, []byte(`{"token":"x","team_id":"T123ABC456","api_app_id":"A123","type":"event_callback",
		"event":{"type":"message","channel":"C123ABC456","user":"U123ABC456","text":"ok 向かいます","ts":"1355517523.000005","channel_type":"channel"},
		"event_id":"Ev123ABC456","event_time":1355517523}`))
	if err != nil || answer != nil || msg == nil {
		t.Fatalf("event_callback: %v %v %v", msg, answer, err)
	}
	if msg.mode != "events-api" || msg.id == "" || msg.payload["user_id"] != "U123ABC456" || msg.payload["channel_id"] != "C123ABC456" ||
		msg.payload["team_id"] != "T123ABC456" || msg.context["eventId"] != "Ev123ABC456" || msg.context["retryNum"] != "1" {
		t.Errorf("event message %+v", msg)
	}
	if !slackWanted(msg, &Source{Config: map[string]any{"triggerWords": []string{"ok"}, "ignoreBots": true}}) || msg.payload["args"] != "向かいます" {
		t.Errorf("trigger on an event: %+v", msg.payload)
	}
	// A bot's message event is ignored; other callback types start nothing.
	msg, _, _ = signedMessage(h, []byte(`{"type":"event_callback","event_id":"Ev2","event":{"type":"message","subtype":"bot_message","bot_id":"B1","text":"hi"}}`))
	if slackWanted(msg, &Source{Config: map[string]any{"ignoreBots": true}}) {
		t.Error("a bot message was wanted")
	}
	if msg, answer, err := signedMessage(h, []byte(`{"type":"app_rate_limited","minute_rate_limited":1518467820}`)); msg != nil || answer != nil || err != nil {
		t.Errorf("app_rate_limited: %v %v %v", msg, answer, err)
	}
	if _, _, err := signedMessage(h, []byte(`{"type":`)); err == nil {
		t.Error("broken JSON accepted")
	}
	// A slash command (Slack's documented form).
	form := "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&enterprise_id=E0001&enterprise_name=Globular%20Construct%20Inc" +
		"&channel_id=C2147483705&channel_name=test&user_id=U2147483697&user_name=Steve&command=/weather&text=94070" +
		"&response_url=https://hooks.slack.com/commands/1234/5678&trigger_id=13345224609.738474920.8088930838d88f008e0&api_app_id=A123456"
	msg, answer, err = signedMessage(http.Header{}, []byte(form))
	if err != nil || answer != nil || msg == nil {
		t.Fatalf("slash command: %v %v %v", msg, answer, err)
	}
	if msg.mode != "slash-command" || msg.payload["command"] != "/weather" || msg.payload["args"] != "94070" || msg.payload["user_name"] != "Steve" || msg.id == "" {
		t.Errorf("slash command %+v", msg.payload)
	}
	if _, leaked := msg.payload["event"].(map[string]any)["token"]; leaked {
		t.Error("the slash command's token reached the flow")
	}
	// Interactivity payloads are not handled by this source.
	if msg, _, err := signedMessage(http.Header{}, []byte("payload=%7B%22type%22%3A%22block_actions%22%7D")); msg != nil || err != nil {
		t.Errorf("interactivity: %v %v", msg, err)
	}
}
