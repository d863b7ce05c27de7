package flow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/expr"
)

// fakeAnalyzer is a stand-in for the vision service behind our own
// Analyzer interface: it records requests and answers res or err.
type fakeAnalyzer struct {
	mu   sync.Mutex
	reqs []map[string]any
	ops  []string
	res  map[string]any
	err  error
}

func (f *fakeAnalyzer) Analyze(_ context.Context, operatorID string, req map[string]any) (map[string]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	f.ops = append(f.ops, operatorID)
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]any{}
	for k, v := range f.res {
		out[k] = v
	}
	return out, nil
}

func (f *fakeAnalyzer) last(t *testing.T) map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the analyzer was not called")
	}
	return f.reqs[len(f.reqs)-1]
}

// temporaryError is how vision errors say whether a retry may help.
type temporaryError struct {
	msg  string
	temp bool
}

func (e *temporaryError) Error() string   { return e.msg }
func (e *temporaryError) Temporary() bool { return e.temp }

// seed000App is seed 000's AI step: after the export loop, the completed
// export's URL goes to the AI with the seed's prompt as written, and the
// output (merged into the payload) goes on.
const seed000App = `name: crowding
channels:
  exported:
    actions:
      - name: analyze
        condition: payload.status == "completed"
        timeout: 60s
        ai:
          provider: openai
          model: gpt-4o
          credentials: openai-key
          prompt: |
            画像の様子を説明してください。

            また、だいたいどのぐらいの人数が着席しているか、正確でなくて良いので教えて下さい。

            出力の形式は以下のようなJSON形式でお願いします。

            {
             "state": 状態を表現する文章
             "person_count": 着席している人数
             "crowding_level":座席数に対する着席している人数の割合(0-100)
             "url":"${payload.url}"
            }
        output:
          channel: analyzed
          transform:
            state: ${result.json.state}
            person_count: ${result.json.person_count}
            url: ${result.url}
  analyzed: {}
`

// aiCall parses app, renders its first action for payload and runs it
// with the analyzer, as the engine does.
func aiCall(t *testing.T, app string, an Analyzer, payload any) (*Action, any, error) {
	t.Helper()
	a, err := Parse("ai.yaml", []byte(app), Lookup{Credential: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	act := a.Channels[0].Actions[0]
	spec := reg.get(reg.actions, "ai")
	cfg, err := renderConfig(spec.Fields, act.Config, expr.Env{"payload": payload, "context": map[string]any{}, "event": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := spec.Run(t.Context(), &Call{Deps: &Deps{Vision: an}, OperatorID: "OP1", App: a.Name, Action: act, Config: cfg, Input: payload, Attempt: 1})
	return act, res, err
}

func TestAIActionSeed000(t *testing.T) {
	an := &fakeAnalyzer{res: map[string]any{"output": `{"state":"空いている","person_count":2}`, "json": map[string]any{"state": "空いている", "person_count": 2.0}}}
	payload := map[string]any{"status": "completed", "url": "https://soracam.example/export.jpg?X-Amz-Signature=abc", "exportId": "e1"}
	act, res, err := aiCall(t, seed000App, an, payload)
	if err != nil {
		t.Fatal(err)
	}
	req := an.last(t)
	prompt, _ := req["prompt"].(string)
	if !strings.Contains(prompt, `"url":"https://soracam.example/export.jpg?X-Amz-Signature=abc"`) || !strings.HasPrefix(prompt, "画像の様子を説明してください。\n\n") {
		t.Fatalf("prompt %q", prompt)
	}
	if req["task"] != "prompt" || req["provider"] != "openai" || req["model"] != "gpt-4o" || req["credentials"] != "openai-key" ||
		req["image"] != payload["url"] || an.ops[0] != "OP1" {
		t.Fatalf("request %v", req)
	}
	for _, k := range []string{"capacity", "annotate", "json", "roi"} {
		if _, has := req[k]; has {
			t.Fatalf("request has %s although not configured: %v", k, req)
		}
	}
	// merge (default): the payload with the result's keys.
	out := res.(map[string]any)
	if out["exportId"] != "e1" || out["url"] != payload["url"] || out["output"] == nil || out["json"] == nil {
		t.Fatalf("output %v", out)
	}
	// The output transform sees ${result…}.
	v, err := renderAny(act.Output.Transform, expr.Env{"result": res, "payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	if m := v.(map[string]any); m["state"] != "空いている" || m["person_count"] != 2.0 || m["url"] != payload["url"] {
		t.Fatalf("transform %v", m)
	}
}

func TestAIActionFields(t *testing.T) {
	an := &fakeAnalyzer{res: map[string]any{"person_count": 3, "crowding_level": 30.0, "boxes": []any{}}}
	app := `name: people
channels:
  in:
    actions:
      - name: count
        ai:
          task: people
          capacity: 10
          image: files:/cams/${payload.deviceId}.jpg
          annotate: /annotated/${payload.deviceId}.jpg
          roi: {Left: 0, Top: 0.5, Width: 1, Height: 0.5}
          json: false
          merge: false
`
	_, res, err := aiCall(t, app, an, map[string]any{"deviceId": "cam1", "keep": "me"})
	if err != nil {
		t.Fatal(err)
	}
	req := an.last(t)
	if req["task"] != "people" || req["capacity"] != 10 || req["image"] != "files:/cams/cam1.jpg" || req["annotate"] != "/annotated/cam1.jpg" ||
		req["json"] != false || req["roi"].(map[string]any)["Top"] != 0.5 {
		t.Fatalf("request %v", req)
	}
	if _, has := req["provider"]; has {
		t.Fatalf("provider sent although not configured (the service default applies): %v", req)
	}
	// merge: false — the result alone.
	if out := res.(map[string]any); out["person_count"] != 3 || out["keep"] != nil {
		t.Fatalf("output %v", out)
	}

	// Default image: presignedUrls.get of a Files event; a non-object
	// payload cannot be merged into, so the output is the result.
	faces := `name: faces
channels:
  in:
    actions:
      - name: f
        ai: {task: faces, provider: rekognition}
`
	an.res = map[string]any{"FaceDetails": []any{}}
	_, res, err = aiCall(t, faces, an, map[string]any{"eventType": "created", "presignedUrls": map[string]any{"get": "http://nagare/_blob/x?sig=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if an.last(t)["image"] != "http://nagare/_blob/x?sig=1" || res.(map[string]any)["eventType"] != "created" {
		t.Fatalf("request %v output %v", an.last(t), res)
	}
	_, res, err = aiCall(t, strings.Replace(faces, "task: faces", "task: faces, image: 'data:image/jpeg;base64,AAAA'", 1), an, "plain text")
	if err != nil || an.last(t)["image"] != "data:image/jpeg;base64,AAAA" {
		t.Fatalf("request %v err %v", an.last(t), err)
	}
	if _, ok := res.(map[string]any)["FaceDetails"]; !ok {
		t.Fatalf("output %v", res)
	}
	// No image anywhere.
	_, _, err = aiCall(t, faces, an, map[string]any{"other": 1})
	mustFail(t, err, true, "no image")
}

func TestAIActionErrors(t *testing.T) {
	app := `name: e
channels:
  in:
    actions:
      - name: a
        ai: {task: people, image: "https://example.com/a.jpg"}
`
	cases := []struct {
		err       error
		permanent bool
		want      string
	}{
		{&temporaryError{"openai: 500 Internal Server Error", true}, false, "500"},
		{fmt.Errorf("wrapped: %w", &temporaryError{"openai: timed out", true}), false, "timed out"},
		{&temporaryError{"openai: 401 Unauthorized: bad key", false}, true, "401"},
		{&temporaryError{"the image is not a JPEG or PNG", false}, true, "not a JPEG"},
		{api.NotFound("file /a.jpg not found"), true, "not found"},
		{api.Errorf(503, api.CodeUnavailable, "busy"), false, "busy"},
		{errors.New("database is locked"), false, "database is locked"},
	}
	for _, c := range cases {
		_, _, err := aiCall(t, app, &fakeAnalyzer{err: c.err}, map[string]any{})
		mustFail(t, err, c.permanent, c.want)
	}
	// No vision service configured.
	_, _, err := aiCall(t, app, nil, map[string]any{})
	mustFail(t, err, true, "not configured")
}

func TestAIActionValidation(t *testing.T) {
	src := `name: v
channels:
  in:
    actions:
      - name: noPrompt
        ai: {model: gpt-4o}
      - name: badTask
        ai: {task: cats, image: x}
      - name: badCapacity
        ai: {task: people, capacity: 0}
`
	_, err := Parse("v.yaml", []byte(src), Lookup{})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"the prompt task needs a prompt", `"cats" is not one of people, faces, prompt`, "capacity"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems %q do not mention %q", err, want)
		}
	}
	// Checks that span fields run once the fields decoded cleanly.
	_, err = Parse("v.yaml", []byte("name: v\nchannels:\n  in:\n    actions:\n      - name: r\n        ai: {task: people, roi: {Left: 0, Right: 1}}\n"), Lookup{})
	if err == nil || !strings.Contains(err.Error(), `unknown key "Right"`) {
		t.Errorf("roi: %v", err)
	}
	if !strings.Contains(Doc(), "### `ai`") {
		t.Error("the ai action is not in the generated docs")
	}
}
