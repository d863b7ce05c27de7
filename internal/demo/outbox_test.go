package demo

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The outbox answers as Slack and LINE document it and records what it got.
func TestOutbox(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	o := newOutbox("tok", func(_ context.Context, m map[string]any) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	o.serveContent("42", []byte("jpeg"))
	o.profile("U1", "さくら")
	srv := httptest.NewServer(o.handler())
	defer srv.Close()
	bearer := []string{"Authorization", "Bearer tok"}
	for _, c := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		answer                   string
	}{
		{"slack", "POST", slackBase + "hook", `{"text":"<@U1> 呼び出し"}`, nil, 200, "ok"},
		{"slack empty", "POST", slackBase + "hook", `{}`, nil, 400, "invalid_payload"},
		{"line reply", "POST", lineBase + "/v2/bot/message/reply", `{"replyToken":"abcdefghijk","messages":[{"type":"flex","altText":"幸福度 3 pt","contents":{}}]}`, bearer, 200, "sentMessages"},
		{"line push", "POST", lineBase + "/v2/bot/message/push", `{"to":"U1","messages":[{"type":"text","text":"hi"}]}`, bearer, 200, "sentMessages"},
		{"line no messages", "POST", lineBase + "/v2/bot/message/push", `{"to":"U1","messages":[]}`, bearer, 400, "messages"},
		{"line bad token", "POST", lineBase + "/v2/bot/message/push", `{"to":"U1","messages":[{"type":"text","text":"hi"}]}`, []string{"Authorization", "Bearer x"}, 401, "Authentication failed"},
		{"content", "GET", lineBase + "/v2/bot/message/42/content", "", bearer, 200, "jpeg"},
		{"content missing", "GET", lineBase + "/v2/bot/message/43/content", "", bearer, 404, "Not found"},
		{"profile", "GET", lineBase + "/v2/bot/profile/U1", "", bearer, 200, "さくら"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		for i := 0; i+1 < len(c.header); i += 2 {
			req.Header.Set(c.header[i], c.header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.status || !strings.Contains(string(b), c.answer) {
			t.Errorf("%s: %d %s; want %d with %q", c.name, res.StatusCode, b, c.status, c.answer)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"slack incoming-webhook hook <@U1> 呼び出し", "line reply reply abcdefgh… [Flex] 幸福度 3 pt", "line push U1 hi"}
	if len(got) != len(want) {
		t.Fatalf("recorded %v", got)
	}
	for i, w := range want {
		m := got[i]
		if s := strings.Join([]string{m["service"].(string), m["operation"].(string), m["to"].(string), m["text"].(string)}, " "); s != w {
			t.Errorf("record %d: %q; want %q", i, s, w)
		}
	}
}
