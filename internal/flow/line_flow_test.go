// Integration tests of the seed 004 LINE bot on a whole server (real
// embedded NATS, SQLite or PostgreSQL) against a local fake of the LINE
// Messaging API: signed webhooks start runs, an image is stored in
// Harvest Files, replies carry Flex JSON exactly as templated, pushes
// carry a stable retry key.
package flow_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/servertest"
)

const (
	lineSecret = "8d8f3c1b6a2e4f0d9c7b5a3e1f2d4c6b"
	lineToken  = "lineChannelAccessToken0123456789"
	lineUser   = "U4af4980629a1b2c3d4e5f60718293a4b"
)

func startLine(t *testing.T) (*servertest.TS, *servertest.LineFake) {
	fake := servertest.NewLineFake(t, lineToken)
	ts := startFlow(t, func(c *config.Config) { c.LineAPIURL, c.LineDataURL = fake.URL, fake.URL+"/" })
	credential(t, ts, "bot", "line-channel", map[string]string{"channelSecret": lineSecret, "channelAccessToken": lineToken})
	return ts, fake
}

// lineBody is a webhook with one event.
func lineBody(eventID, event string) string {
	return `{"destination":"Uxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","events":[{"mode":"active","timestamp":1627356924722,` +
		`"source":{"type":"user","userId":"` + lineUser + `"},"webhookEventId":"` + eventID + `",` +
		`"deliveryContext":{"isRedelivery":false},` + event + `}]}`
}

func TestLineImageStoredInFiles(t *testing.T) {
	// ../shared sits beside the repository (see the README).
	jpeg, err := os.ReadFile("../../../shared/testdata/vision/group-3.jpg")
	if err != nil {
		t.Fatal("test photo:", err)
	}
	ts, fake := startLine(t)
	fake.Serve("354718705033693861", jpeg)
	apply(t, ts, `
name: happy
channels:
  bot:
    sources:
      - line: {credentials: bot}
    actions:
      - name: save
        condition: payload.messageType == "image"
        line:
          operation: content
          credentials: bot
          messageId: ${payload.messageId}
          path: /line/${payload.userId}/${payload.messageId}.jpg
`)
	path := hookPath(t, ts, "happy", "bot")
	body := lineBody("01FZ74A0TDDPYRVKNK77XKC3ZR", `"type":"message","replyToken":"7840b71058e24a5d91f9b5726c7512c9",`+
		`"message":{"type":"image","id":"354718705033693861","quoteToken":"q3Plxr4AgKd","contentProvider":{"type":"line"}}`)

	// Unsigned, or signed with another secret: 401, nothing starts.
	for name, res := range map[string]*servertest.Response{
		"unsigned":     servertest.LineSigned(ts, path, "", body),
		"wrong secret": servertest.LineSigned(ts, path, "not-the-channel-secret", body),
		"garbage":      ts.Anon().Do("POST", path, body, "Content-Type", "application/json", "X-Line-Signature", "!!"),
	} {
		if res.Status != 401 {
			t.Errorf("%s: %d %s", name, res.Status, res.Body)
		}
	}
	// The console's Verify button: no events, 200.
	if res := servertest.LineSigned(ts, path, lineSecret, `{"destination":"Uxxx","events":[]}`); res.Status != 200 {
		t.Errorf("verify: %d %s", res.Status, res.Body)
	}
	// The event, then LINE redelivering it: one run.
	for i := 0; i < 2; i++ {
		if res := servertest.LineSigned(ts, path, lineSecret, body); res.Status != 200 {
			t.Fatalf("webhook %d: %d %s", i, res.Status, res.Body)
		}
	}
	waitFor(t, func() bool {
		r := runsOf(ts, "happy")
		return len(r) >= 1 && r[0].Status == flow.RunSucceeded
	})
	time.Sleep(500 * time.Millisecond)
	runs := runsOf(ts, "happy")
	if len(runs) != 1 || runs[0].Source != "line" {
		t.Fatalf("runs %+v; want one line run", runs)
	}
	in := runInput(t, ts, "happy", runs[0].RunID)
	if in["type"] != "message" || in["messageType"] != "image" || in["messageId"] != "354718705033693861" ||
		in["userId"] != lineUser || in["replyToken"] != "7840b71058e24a5d91f9b5726c7512c9" ||
		in["webhookEventId"] != "01FZ74A0TDDPYRVKNK77XKC3ZR" || in["text"] != nil || in["raw"] == nil {
		t.Errorf("message %v", in)
	}
	if n := len(fake.Got("/v2/bot/message/354718705033693861/content")); n != 1 {
		t.Errorf("%d content downloads; want 1", n)
	}
	// The photo is in Files, byte for byte.
	var d flow.RunDetail
	ts.Root.Do("GET", "/v1/flux/apps/happy/runs/"+runs[0].RunID, nil).JSON(&d)
	var out struct {
		Path          string
		ContentType   string
		Size          int64
		PresignedUrls struct{ Get string }
	}
	last := d.Trace[len(d.Trace)-1]
	if err := json.Unmarshal(last.Output, &out); err != nil {
		t.Fatalf("output %s: %v", last.Output, err)
	}
	if out.Path != "/line/"+lineUser+"/354718705033693861.jpg" || out.ContentType != "image/jpeg" || out.Size != int64(len(jpeg)) || out.PresignedUrls.Get == "" {
		t.Fatalf("content output %+v", out)
	}
	resp, err := http.Get(out.PresignedUrls.Get)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, jpeg) {
		t.Errorf("stored %d bytes; want the %d of group-3.jpg", len(got), len(jpeg))
	}
	if strings.Contains(string(mustJSON(t, d)), lineToken) {
		t.Error("the run shows the channel access token")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLineReplyFlexAndPush(t *testing.T) {
	ts, fake := startLine(t)
	apply(t, ts, `
name: happy
channels:
  bot:
    sources:
      - line: {credentials: bot}
    actions:
      - name: answer
        condition: payload.messageType == "text"
        line:
          operation: reply
          credentials: bot
          replyToken: ${payload.replyToken}
          messages:
            - {type: text, text: "you said: ${payload.text}"}
            - type: flex
              altText: 解析結果
              contents: {"type":"bubble","body":{"type":"box","layout":"horizontal","contents":[{"type":"text","text":"幸福度 ${payload.text} pt!","weight":"bold","size":"xl"},{"type":"text","text":"x","flex":2}]},"footer":{"type":"box","layout":"vertical","contents":[{"type":"button","style":"link","action":{"type":"uri","label":"詳しく見る","uri":"https://liff.line.me/1234-abcd?user_id=${payload.userId}&m=1"}}]}}
      - name: welcome
        condition: payload.type == "follow"
        line:
          operation: push
          credentials: bot
          to: ${payload.userId}
          notificationDisabled: true
          messages: [{type: text, text: ようこそ}]
`)
	path := hookPath(t, ts, "happy", "bot")
	text := lineBody("01HTEXT0000000000000000001", `"type":"message","replyToken":"r-token-1",`+
		`"message":{"type":"text","id":"468789577898262530","quoteToken":"q1","text":"\"95\" <b>"}`)
	follow := lineBody("01HFOLLOW00000000000000001", `"type":"follow","replyToken":"r-token-2","follow":{"isUnblocked":false}`)
	for _, b := range []string{text, follow} {
		if res := servertest.LineSigned(ts, path, lineSecret, b); res.Status != 200 {
			t.Fatalf("webhook: %d %s", res.Status, res.Body)
		}
	}
	waitFor(t, func() bool {
		return len(fake.Got("/v2/bot/message/reply")) >= 1 && len(fake.Got("/v2/bot/message/push")) >= 1
	})
	reply := fake.Got("/v2/bot/message/reply")[0]
	if reply.Header.Get("Authorization") != "Bearer "+lineToken {
		t.Errorf("reply Authorization %q", reply.Header.Get("Authorization"))
	}
	var req struct {
		ReplyToken string
		Messages   []json.RawMessage
	}
	if err := json.Unmarshal(reply.Body, &req); err != nil || req.ReplyToken != "r-token-1" || len(req.Messages) != 2 {
		t.Fatalf("reply body %s (%v)", reply.Body, err)
	}
	if string(req.Messages[0]) != `{"type":"text","text":"you said: \"95\" <b>"}` {
		t.Errorf("text message %s", req.Messages[0])
	}
	// The Flex contents arrive as templated: no "flex":0 added, flex 2
	// kept, data substituted into string values only.
	var flex struct {
		Type, AltText string
		Contents      json.RawMessage
	}
	json.Unmarshal(req.Messages[1], &flex)
	want := `{"body":{"contents":[{"size":"xl","text":"幸福度 \"95\" <b> pt!","type":"text","weight":"bold"},{"flex":2,"text":"x","type":"text"}],"layout":"horizontal","type":"box"},` +
		`"footer":{"contents":[{"action":{"label":"詳しく見る","type":"uri","uri":"https://liff.line.me/1234-abcd?user_id=` + lineUser + `&m=1"},"style":"link","type":"button"}],"layout":"vertical","type":"box"},"type":"bubble"}`
	if flex.Type != "flex" || flex.AltText != "解析結果" || string(flex.Contents) != want {
		t.Errorf("flex message %s\nwant contents %s", req.Messages[1], want)
	}
	if bytes.Contains(reply.Body, []byte(`"flex":0`)) {
		t.Errorf(`"flex":0 in %s`, reply.Body)
	}
	push := fake.Got("/v2/bot/message/push")[0]
	if string(push.Body) != `{"to":"`+lineUser+`","messages":[{"type":"text","text":"ようこそ"}],"notificationDisabled":true}` {
		t.Errorf("push body %s", push.Body)
	}
	if k := push.Header.Get("X-Line-Retry-Key"); len(k) != 36 || k[14] != '4' {
		t.Errorf("push retry key %q", k)
	}
	waitFor(t, func() bool {
		runs := runsOf(ts, "happy")
		return len(runs) == 2 && runs[0].Status == flow.RunSucceeded && runs[1].Status == flow.RunSucceeded
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(fake.Got("/v2/bot/message/reply")); n != 1 {
		t.Errorf("%d replies; want 1", n)
	}
}

func TestLineErrorsFailTheRun(t *testing.T) {
	ts, fake := startLine(t)
	fake.Fail(400, `{"message":"The request body has 2 error(s)","details":[{"message":"May not be empty","property":"messages[0].text"},{"message":"Must be one of the following values: [text, image]","property":"messages[1].type"}]}`)
	apply(t, ts, `
name: bad
channels:
  bot:
    sources:
      - line: {credentials: bot}
    actions:
      - name: answer
        line: {operation: reply, credentials: bot, replyToken: "${payload.replyToken}", messages: [{type: text, text: hi}]}
`)
	path := hookPath(t, ts, "bad", "bot")
	body := lineBody("01HBAD00000000000000000001", `"type":"message","replyToken":"r1","message":{"type":"sticker","id":"1","packageId":"446","stickerId":"1988"}`)
	if res := servertest.LineSigned(ts, path, lineSecret, body); res.Status != 200 {
		t.Fatalf("webhook: %d %s", res.Status, res.Body)
	}
	waitFor(t, func() bool {
		r := runsOf(ts, "bad")
		return len(r) == 1 && r[0].Status == flow.RunFailed
	})
	r := runsOf(ts, "bad")[0]
	if !strings.Contains(r.Error, "May not be empty") || !strings.Contains(r.Error, "messages[0].text") {
		t.Errorf("error %q", r.Error)
	}
	if n := len(fake.Got("/v2/bot/message/reply")); n != 1 {
		t.Errorf("%d replies; want 1 (a 400 is not retried)", n)
	}
	if in := runInput(t, ts, "bad", r.RunID); in["messageType"] != "sticker" || in["messageId"] != "1" {
		t.Errorf("sticker message %v", in)
	}
}

// LINE's rate limit is waited out and retried; a push LINE already took
// (409 with X-Line-Accepted-Request-Id, the answer to a repeated retry
// key) counts as sent; content over max-file-bytes stores nothing.
func TestLineRetriesAndLimits(t *testing.T) {
	fake := servertest.NewLineFake(t, lineToken)
	ts := startFlow(t, func(c *config.Config) {
		c.LineAPIURL, c.LineDataURL = fake.URL, fake.URL
		c.MaxFileBytes = 1 << 10
	})
	credential(t, ts, "bot", "line-channel", map[string]string{"channelSecret": lineSecret, "channelAccessToken": lineToken})
	apply(t, ts, `
name: limits
channels:
  push:
    actions:
      - name: send
        line: {operation: push, credentials: bot, to: "${payload.to}", messages: [{type: text, text: hi}]}
  content:
    actions:
      - name: save
        retries: 0
        line: {operation: content, credentials: bot, messageId: "${payload.id}", path: /line/big.jpg}
`)
	fake.FailTimes(1, 429, `{"message":"Too Many Requests"}`, "Retry-After", "1")
	start := time.Now()
	d := testRun(t, ts, "limits", "push", map[string]any{"to": lineUser})
	if d.Status != flow.RunSucceeded || time.Since(start) < time.Second {
		t.Errorf("429 then 200: run %s %q after %s", d.Status, d.Error, time.Since(start))
	}
	pushes := fake.Got("/v2/bot/message/push")
	if len(pushes) != 2 || pushes[0].Header.Get("X-Line-Retry-Key") == "" || pushes[0].Header.Get("X-Line-Retry-Key") != pushes[1].Header.Get("X-Line-Retry-Key") {
		t.Errorf("pushes %+v; want two with the same retry key", pushes)
	}
	if s := steps(d, "send"); len(s) != 2 || s[0].Status != flow.StepRetrying || !strings.Contains(s[0].Error, "429") {
		t.Errorf("steps %+v", s)
	}

	fake.FailTimes(1, 409, `{"message":"The retry key is already accepted"}`, "X-Line-Accepted-Request-Id", "8b0f3a4e-1a2b-4c5d-8e9f-0a1b2c3d4e5f")
	if d := testRun(t, ts, "limits", "push", map[string]any{"to": lineUser}); d.Status != flow.RunSucceeded {
		t.Errorf("409 accepted: run %s %q", d.Status, d.Error)
	}

	fake.Serve("7001", bytes.Repeat([]byte{0xff}, 4<<10))
	d = testRun(t, ts, "limits", "content", map[string]any{"id": "7001"})
	if d.Status != flow.RunFailed || !strings.Contains(d.Error, "exceeds 1024 bytes") {
		t.Errorf("oversized content: run %s %q", d.Status, d.Error)
	}
	if res := ts.Root.Do("GET", "/v1/files/private/line/big.jpg?metadata", nil); res.Status != 404 {
		t.Errorf("oversized content stored: %d %s", res.Status, res.Body)
	}
}

func TestLineValidation(t *testing.T) {
	cases := []struct{ name, actions, want string }{
		{"ok", `[{name: a, line: {operation: push, credentials: c, to: U1, messages: [{type: text, text: hi}]}}]`, ""},
		{"reply needs token", `[{name: a, line: {operation: reply, credentials: c, messages: [{type: text, text: hi}]}}]`, "operation reply needs replyToken"},
		{"content needs path", `[{name: a, line: {operation: content, credentials: c, messageId: "1"}}]`, "operation content needs path"},
		{"flex needs altText", `[{name: a, line: {operation: push, credentials: c, to: U1, messages: [{type: flex, contents: {type: bubble}}]}}]`, "needs altText"},
		{"flex contents text", `[{name: a, line: {operation: push, credentials: c, to: U1, messages: [{type: flex, altText: a, contents: '{"type":"${payload.t}"}'}]}}]`, "flex contents must be an object"},
		{"too many", `[{name: a, line: {operation: push, credentials: c, to: U1, messages: [{type: text, text: a},{type: text, text: a},{type: text, text: a},{type: text, text: a},{type: text, text: a},{type: text, text: a}]}}]`, "LINE takes 1 to 5"},
		{"image message", `[{name: a, line: {operation: push, credentials: c, to: U1, messages: [{type: image}]}}]`, `"image" is not supported`},
	}
	for _, c := range cases {
		src := "name: v\nchannels:\n  a:\n    actions: " + c.actions + "\n"
		_, err := flow.Parse("v.yaml", []byte(src), flow.Lookup{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v; want %q", c.name, err, c.want)
		}
	}
	src := "name: v\nchannels:\n  a:\n    sources: [{webhook: {}}, {line: {credentials: c}}]\n"
	if _, err := flow.Parse("v.yaml", []byte(src), flow.Lookup{}); err == nil || !strings.Contains(err.Error(), "at most one of them") {
		t.Errorf("webhook and line: %v", err)
	}
}
