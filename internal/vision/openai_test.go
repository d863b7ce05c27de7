package vision

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// seed000Prompt is seed 000's AI prompt as written, with ${payload.url}
// rendered.
const seed000Prompt = `画像の様子を説明してください。

また、だいたいどのぐらいの人数が着席しているか、正確でなくて良いので教えて下さい。

出力の形式は以下のようなJSON形式でお願いします。

{
 "state": 状態を表現する文章
 "person_count": 着席している人数
 "crowding_level":座席数に対する着席している人数の割合(0-100)
 "url":"https://example.com/export/1.jpg?sig=abc"
}`

// fakeOpenAI is a local chat-completions server following the documented
// request and reply shapes. It records each request and answers with
// reply (a status and body), or hangs for delay.
type fakeOpenAI struct {
	t  *testing.T
	mu sync.Mutex
	// recorded
	reqs    []map[string]any
	headers []http.Header
	paths   []string
	// behaviour
	status int
	body   string
	delay  time.Duration
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req map[string]any
	if err := json.Unmarshal(b, &req); err != nil {
		f.t.Errorf("request body is not JSON: %v", err)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.headers = append(f.headers, r.Header.Clone())
	f.paths = append(f.paths, r.URL.RequestURI())
	status, body, delay := f.status, f.body, f.delay
	f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("%s with Content-Type %q; want POST application/json", r.Method, r.Header.Get("Content-Type"))
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status == 0 {
		status = 200
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (f *fakeOpenAI) set(status int, body string, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body, f.delay = status, body, delay
}

func (f *fakeOpenAI) last() (map[string]any, http.Header, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		f.t.Fatal("no request reached the fake")
	}
	n := len(f.reqs) - 1
	return f.reqs[n], f.headers[n], f.paths[n]
}

// chatReply is a documented chat.completion object answering content.
func chatReplyBody(content, finish string) string {
	c, _ := json.Marshal(content)
	return `{"id":"chatcmpl-1","object":"chat.completion","created":1732000000,"model":"gpt-4o-mini-2024-07-18",
"choices":[{"index":0,"message":{"role":"assistant","content":` + string(c) + `,"refusal":null},"logprobs":null,"finish_reason":"` + finish + `"}],
"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120}}`
}

func startFake(t *testing.T) (*fakeOpenAI, *httptest.Server) {
	f := &fakeOpenAI{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// userParts checks the messages of a request: an optional system message,
// then one user message with a text part and an image_url part; it returns
// the system text, the user text and the image URL object.
func userParts(t *testing.T, req map[string]any) (system, text string, imageURL map[string]any) {
	t.Helper()
	msgs, _ := req["messages"].([]any)
	if len(msgs) == 0 {
		t.Fatalf("no messages: %v", req)
	}
	for i, m := range msgs {
		mm := m.(map[string]any)
		switch mm["role"] {
		case "system":
			if i != 0 {
				t.Fatalf("system message at %d", i)
			}
			system, _ = mm["content"].(string)
		case "user":
			parts, ok := mm["content"].([]any)
			if !ok || len(parts) != 2 {
				t.Fatalf("user content = %v; want [text, image_url] parts", mm["content"])
			}
			p0, p1 := parts[0].(map[string]any), parts[1].(map[string]any)
			if p0["type"] != "text" || p1["type"] != "image_url" {
				t.Fatalf("part types %v, %v; want text, image_url", p0["type"], p1["type"])
			}
			text, _ = p0["text"].(string)
			imageURL, _ = p1["image_url"].(map[string]any)
		default:
			t.Fatalf("unexpected role %v", mm["role"])
		}
	}
	return system, text, imageURL
}

func TestOpenAISeed000Prompt(t *testing.T) {
	env := newTestEnv(t)
	env.addCredential(t, "openai-key", "api-token-credentials", map[string]any{"token": "sk-test-0123456789"})
	f, srv := startFake(t)
	reply := `{"state":"数人が着席している","person_count":3,"crowding_level":15,"url":"https://example.com/export/1.jpg?sig=abc"}`
	f.set(0, chatReplyBody(reply, "stop"), 0)
	p := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Model: "gpt-4o", CredentialsID: "openai-key", Credentials: env.creds})
	img := testJPEG(t, 32, 24)
	ctx := WithOperator(t.Context(), env.op)
	res, err := p.Analyze(ctx, &Request{Task: TaskPrompt, Prompt: seed000Prompt, Image: img})
	if err != nil {
		t.Fatal(err)
	}
	req, h, path := f.last()
	if path != "/v1/chat/completions" {
		t.Fatalf("path %s", path)
	}
	if got := h.Get("Authorization"); got != "Bearer sk-test-0123456789" {
		t.Fatalf("Authorization %q", got)
	}
	if req["model"] != "gpt-4o" {
		t.Fatalf("model %v", req["model"])
	}
	if rf, _ := req["response_format"].(map[string]any); rf["type"] != "json_object" {
		t.Fatalf("response_format %v; want json_object (the prompt asks for JSON)", req["response_format"])
	}
	system, text, iu := userParts(t, req)
	if !strings.Contains(system, "JSON") {
		t.Fatalf("system message %q does not ask for JSON", system)
	}
	if text != seed000Prompt {
		t.Fatalf("prompt sent %q; want it as written", text)
	}
	want := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(img)
	if iu["url"] != want {
		t.Fatalf("image_url.url = %.60v…; want a JPEG data URL", iu["url"])
	}
	if _, has := iu["detail"]; has {
		t.Fatalf("detail sent although not configured: %v", iu)
	}
	if res["output"] != reply {
		t.Fatalf("output %v", res["output"])
	}
	js, _ := res["json"].(map[string]any)
	if js["person_count"] != float64(3) || js["crowding_level"] != float64(15) || js["state"] != "数人が着席している" {
		t.Fatalf("json %v", res["json"])
	}
}

func TestOpenAIVariants(t *testing.T) {
	env := newTestEnv(t)
	env.addCredential(t, "azure-key", "api-token-credentials", map[string]any{"token": "azure-secret-key"})
	env.addCredential(t, "login", "username-password-credentials", map[string]any{"username": "u", "password": "p"})
	ctx := WithOperator(t.Context(), env.op)
	img := testPNG(t)

	t.Run("ollama base /v1, no key, text reply, fenced JSON", func(t *testing.T) {
		f, srv := startFake(t)
		f.set(0, chatReplyBody("```json\n{\"a\": 1}\n```", "stop"), 0)
		p := NewOpenAI(OpenAIConfig{Name: "ollama", BaseURL: srv.URL + "/v1/", Model: "qwen2.5vl", Detail: "low"})
		res, err := p.Analyze(ctx, &Request{Task: TaskPrompt, Prompt: "Describe the picture.", Image: img, Options: map[string]any{"maxTokens": 300}})
		if err != nil {
			t.Fatal(err)
		}
		req, h, path := f.last()
		if path != "/v1/chat/completions" || h.Get("Authorization") != "" {
			t.Fatalf("path %s, Authorization %q", path, h.Get("Authorization"))
		}
		if _, has := req["response_format"]; has {
			t.Fatalf("response_format sent for a prompt that does not ask for JSON")
		}
		if req["max_tokens"] != float64(300) {
			t.Fatalf("max_tokens %v", req["max_tokens"])
		}
		system, _, iu := userParts(t, req)
		if system != "" || iu["detail"] != "low" || !strings.HasPrefix(iu["url"].(string), "data:image/png;base64,") {
			t.Fatalf("system %q, image_url %v", system, iu)
		}
		if res["output"] != `{"a": 1}` || res["json"].(map[string]any)["a"] != float64(1) {
			t.Fatalf("result %v", res)
		}
	})
	t.Run("azure deployment URL and api-key", func(t *testing.T) {
		f, srv := startFake(t)
		f.set(0, chatReplyBody("A room.", "stop"), 0)
		p := NewOpenAI(OpenAIConfig{Name: "azure", BaseURL: srv.URL, Azure: true, Model: "gpt4o-deploy", Credentials: env.creds})
		res, err := p.Analyze(ctx, &Request{Task: TaskPrompt, Prompt: "Describe.", Image: img, Options: map[string]any{"credentials": "azure-key", "json": false}})
		if err != nil {
			t.Fatal(err)
		}
		req, h, path := f.last()
		if path != "/openai/deployments/gpt4o-deploy/chat/completions?api-version=2024-10-21" {
			t.Fatalf("path %s", path)
		}
		if h.Get("api-key") != "azure-secret-key" || h.Get("Authorization") != "" {
			t.Fatalf("api-key %q Authorization %q", h.Get("api-key"), h.Get("Authorization"))
		}
		if _, has := req["model"]; has {
			t.Fatalf("model sent to an Azure deployment: %v", req["model"])
		}
		if res["output"] != "A room." || res["json"] != nil {
			t.Fatalf("result %v", res)
		}
	})
	t.Run("pass-through URL, content parts, model option", func(t *testing.T) {
		f, srv := startFake(t)
		f.set(0, `{"choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"two "},{"type":"text","text":"cats"}]},"finish_reason":"stop"}]}`, 0)
		p := NewOpenAI(OpenAIConfig{BaseURL: srv.URL + "/v1/chat/completions"})
		res, err := p.Analyze(ctx, &Request{Task: TaskPrompt, Prompt: "What is it?", Options: map[string]any{"imageUrl": "https://example.com/a.jpg", "model": "llava"}})
		if err != nil {
			t.Fatal(err)
		}
		req, _, path := f.last()
		_, _, iu := userParts(t, req)
		if path != "/v1/chat/completions" || iu["url"] != "https://example.com/a.jpg" || req["model"] != "llava" {
			t.Fatalf("path %s image_url %v model %v", path, iu, req["model"])
		}
		if res["output"] != "two cats" {
			t.Fatalf("output %v", res["output"])
		}
	})
	t.Run("people through a prompt", func(t *testing.T) {
		f, srv := startFake(t)
		f.set(0, chatReplyBody(`{"person_count": 2, "boxes": [{"Left":0.1,"Top":0.2,"Width":0.1,"Height":0.3,"Confidence":90},{"left":0.5,"top":0.2,"width":0.1,"height":0.3}]}`, "stop"), 0)
		p := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Model: "gpt-4o-mini"})
		res, err := p.Analyze(ctx, &Request{Task: TaskPeople, Image: img, Capacity: 8, ROI: &Rect{0, 0, 1, 0.5}, Prompt: "Count only seated people."})
		if err != nil {
			t.Fatal(err)
		}
		req, _, _ := f.last()
		_, text, _ := userParts(t, req)
		if !strings.Contains(text, "person_count") || !strings.Contains(text, "Top=0.000") || !strings.Contains(text, "Count only seated people.") {
			t.Fatalf("people prompt %q", text)
		}
		if rf, _ := req["response_format"].(map[string]any); rf["type"] != "json_object" {
			t.Fatalf("response_format %v", req["response_format"])
		}
		if res["person_count"] != 2 || res["crowding_level"] != 25.0 || len(res["boxes"].([]any)) != 2 {
			t.Fatalf("result %v", res)
		}
		b := res["boxes"].([]any)[1].(map[string]any)
		if b["Left"] != 0.5 || b["Confidence"] != 100.0 {
			t.Fatalf("box %v", b)
		}
	})
	t.Run("faces through a prompt", func(t *testing.T) {
		f, srv := startFake(t)
		f.set(0, chatReplyBody(`{"FaceDetails":[{"BoundingBox":{"Left":0.4,"Top":0.1,"Width":0.2,"Height":0.3},"Confidence":99,
			"Emotions":[{"Type":"happy","Confidence":80},{"Type":"CALM","Confidence":15},{"Type":"BORED","Confidence":5}]}]}`, "stop"), 0)
		p := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Model: "gpt-4o-mini"})
		res, err := p.Analyze(ctx, &Request{Task: TaskFaces, Image: img})
		if err != nil {
			t.Fatal(err)
		}
		fd := res["FaceDetails"].([]any)
		face := fd[0].(map[string]any)
		em := face["Emotions"].([]any)
		if len(fd) != 1 || face["Confidence"] != 99.0 || len(em) != 2 || em[0].(map[string]any)["Type"] != "HAPPY" {
			t.Fatalf("faces %v", res)
		}
	})
	t.Run("bad calls", func(t *testing.T) {
		p := NewOpenAI(OpenAIConfig{BaseURL: "http://127.0.0.1:1", Credentials: env.creds})
		_, err := p.Analyze(ctx, &Request{Task: TaskPrompt, Prompt: "x", Image: img})
		wantError(t, err, 400, false, "no model")
		_, err = p.Analyze(ctx, &Request{Task: TaskPrompt, Image: img, Options: map[string]any{"model": "m"}})
		wantError(t, err, 400, false, "needs a prompt")
		_, err = p.Analyze(ctx, &Request{Task: TaskPrompt, Prompt: "x", Image: img, Options: map[string]any{"model": "m", "credentials": "nope"}})
		wantError(t, err, 400, false, `credential "nope" not found`)
		_, err = p.Analyze(ctx, &Request{Task: TaskPrompt, Prompt: "x", Image: img, Options: map[string]any{"model": "m", "credentials": "login"}})
		wantError(t, err, 400, false, "api-token-credentials is needed")
		_, err = p.Analyze(context.Background(), &Request{Task: TaskPrompt, Prompt: "x", Image: img, Options: map[string]any{"model": "m", "credentials": "login"}})
		wantError(t, err, 400, false, "no operator")
	})
}

func TestOpenAIErrors(t *testing.T) {
	img := testJPEG(t, 16, 16)
	ctx := t.Context()
	cases := []struct {
		name      string
		status    int
		body      string
		delay     time.Duration
		task      string
		prompt    string
		wantCode  int
		retryable bool
		msg       []string
	}{
		{name: "401", status: 401, body: `{"error":{"message":"Incorrect API key provided: sk-xx***.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			wantCode: 422, msg: []string{"401 Unauthorized", "Incorrect API key provided"}},
		{name: "400 bad image", status: 400, body: `{"error":{"message":"You uploaded an unsupported image.","type":"invalid_request_error","code":"invalid_image_format"}}`,
			wantCode: 422, msg: []string{"unsupported image"}},
		{name: "429", status: 429, body: `{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","code":"rate_limit_exceeded"}}`,
			wantCode: 502, retryable: true, msg: []string{"429", "Rate limit reached"}},
		{name: "500", status: 500, body: `{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`,
			wantCode: 502, retryable: true, msg: []string{"500 Internal Server Error", "server had an error"}},
		{name: "503 vllm shape", status: 503, body: `{"object":"error","message":"model is loading","type":"ServiceUnavailable","code":503}`,
			wantCode: 502, retryable: true, msg: []string{"model is loading"}},
		{name: "502 html", status: 502, body: `<html>bad gateway</html>`, wantCode: 502, retryable: true, msg: []string{"<html>bad gateway</html>"}},
		{name: "slow", delay: 2 * time.Second, body: chatReplyBody("late", "stop"), wantCode: 504, retryable: true, msg: []string{"timed out"}},
		{name: "no choices", body: `{"id":"x","object":"chat.completion","choices":[]}`, wantCode: 502, retryable: true, msg: []string{"malformed reply: no choices"}},
		{name: "not JSON", body: `Internal error`, wantCode: 502, retryable: true, msg: []string{"malformed reply", "not a chat completion"}},
		{name: "JSON asked, text answered", body: chatReplyBody("Sorry, I see three people.", "stop"), prompt: "Reply in JSON.",
			wantCode: 502, retryable: true, msg: []string{"JSON was asked for", "three people"}},
		{name: "JSON cut off", body: chatReplyBody(`{"state": "a long descrip`, "length"), prompt: "Reply in JSON.",
			wantCode: 422, msg: []string{"finish_reason length", "maxTokens"}},
		{name: "people reply without count", body: chatReplyBody(`{"people": "many"}`, "stop"), task: TaskPeople,
			wantCode: 502, retryable: true, msg: []string{"person_count is missing"}},
		{name: "faces reply without list", body: chatReplyBody(`{"faces": 2}`, "stop"), task: TaskFaces,
			wantCode: 502, retryable: true, msg: []string{"FaceDetails is missing"}},
		{name: "refusal", body: `{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}`,
			wantCode: 422, msg: []string{"refused", "can't help"}},
		{name: "empty content", body: chatReplyBody("", "stop"), wantCode: 502, retryable: true, msg: []string{"empty message content"}},
		{name: "too large", body: `{"choices":[{"message":{"content":"` + strings.Repeat("x", 3000) + `"}}]}`, wantCode: 502, msg: []string{"exceeds 2048 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, srv := startFake(t)
			f.set(c.status, c.body, c.delay)
			p := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Model: "gpt-4o", Timeout: 300 * time.Millisecond, MaxResponseBytes: 2048})
			task, prompt := c.task, c.prompt
			if task == "" {
				task = TaskPrompt
			}
			if prompt == "" {
				prompt = "What is in the picture?"
			}
			_, err := p.Analyze(ctx, &Request{Task: task, Prompt: prompt, Image: img})
			wantError(t, err, c.wantCode, c.retryable, c.msg...)
		})
	}
}
