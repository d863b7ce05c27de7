package vision

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
)

// recorder is a Provider that records its requests and answers a people
// result (or err).
type recorder struct {
	name string
	mu   sync.Mutex
	reqs []*Request
	ops  []string
	err  error
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Analyze(ctx context.Context, req *Request) (map[string]any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	r.ops = append(r.ops, OperatorFrom(ctx))
	if r.err != nil {
		return nil, r.err
	}
	return map[string]any{"person_count": 1, "boxes": []any{map[string]any{"Left": 0.1, "Top": 0.1, "Width": 0.2, "Height": 0.5, "Confidence": 90.0}},
		"crowding_level": CrowdingLevel(1, req.Capacity)}, nil
}

func (r *recorder) last(t *testing.T) (*Request, string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("the provider was not called")
	}
	return r.reqs[len(r.reqs)-1], r.ops[len(r.ops)-1]
}

type serviceTest struct {
	*testEnv
	svc   *Service
	local *recorder
	img   []byte
	web   *httptest.Server // serves /img.jpg, /text, /404, /500, /slow, /ftp, /big
}

func newServiceTest(t *testing.T, annotator Annotator) *serviceTest {
	env := newTestEnv(t)
	st := &serviceTest{testEnv: env, local: &recorder{name: "local"}, img: testJPEG(t, 64, 48)}
	mux := http.NewServeMux()
	mux.HandleFunc("/img.jpg", func(w http.ResponseWriter, r *http.Request) { w.Write(st.img) })
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello, not an image") })
	mux.HandleFunc("/404", http.NotFound)
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://example.com/a.jpg", http.StatusFound)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/img.jpg", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 300<<10)) })
	st.web = httptest.NewServer(mux)
	t.Cleanup(st.web.Close)
	st.svc = New(Options{Blobs: env.store, Files: env.files, Annotator: annotator, MaxImageBytes: 256 << 10, FetchTimeout: 500 * time.Millisecond})
	st.svc.AddProvider(st.local)
	st.svc.Register(env.rt)
	return st
}

// call invokes Vision:analyze as p and checks the status; it returns the
// decoded body.
func (st *serviceTest) call(t *testing.T, p *api.Principal, body any, want int) map[string]any {
	t.Helper()
	var b []byte
	switch x := body.(type) {
	case []byte:
		b = x
	default:
		b, _ = json.Marshal(body)
	}
	if p == nil {
		p = &api.Principal{OperatorID: st.op}
	}
	status, _, out, err := st.rt.Invoke(t.Context(), p, "Vision:analyze", nil, nil, b)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("answer %q is not a JSON object", out)
	}
	if status != want {
		t.Fatalf("status %d %s; want %d", status, out, want)
	}
	return m
}

func wantCode(t *testing.T, m map[string]any, code string, msg ...string) {
	t.Helper()
	if m["code"] != code {
		t.Fatalf("answer %v; want code %s", m, code)
	}
	for _, s := range msg {
		if !strings.Contains(m["message"].(string), s) {
			t.Fatalf("message %q does not mention %q", m["message"], s)
		}
	}
}

func TestAnalyzeAPIImageSources(t *testing.T) {
	st := newServiceTest(t, nil)
	b64 := base64.StdEncoding.EncodeToString(st.img)

	res := st.call(t, nil, map[string]any{"task": "people", "capacity": 4, "roi": map[string]any{"Left": 0, "Top": 0.5, "Width": 1, "Height": 0.5},
		"minScore": 0.3, "image": map[string]any{"base64": b64}}, 200)
	if res["person_count"] != 1.0 || res["crowding_level"] != 25.0 {
		t.Fatalf("result %v", res)
	}
	req, op := st.local.last(t)
	if !bytes.Equal(req.Image, st.img) || req.Task != "people" || req.Capacity != 4 || req.MinScore != 0.3 || *req.ROI != (Rect{0, 0.5, 1, 0.5}) || op != st.op {
		t.Fatalf("provider got %+v for operator %q", req, op)
	}

	for name, image := range map[string]any{
		"url":              map[string]any{"url": st.web.URL + "/img.jpg"},
		"url redirected":   map[string]any{"url": st.web.URL + "/redirect"},
		"data URL":         map[string]any{"base64": "data:image/jpeg;base64," + b64},
		"string URL":       st.web.URL + "/img.jpg",
		"string data URL":  "data:image/jpeg;base64," + b64,
		"string base64":    b64,
		"string files":     "files:/cams/a.jpg",
		"filesPath":        map[string]any{"filesPath": "/cams/a.jpg"},
		"url with data: …": map[string]any{"url": "data:image/jpeg;base64," + b64},
	} {
		if name == "string files" || name == "filesPath" {
			if _, _, err := st.files.Put(t.Context(), st.op, "/cams/a.jpg", "image/jpeg", bytes.NewReader(st.img)); err != nil {
				t.Fatal(err)
			}
		}
		st.call(t, nil, map[string]any{"task": "faces", "image": image}, 200)
		if req, _ := st.local.last(t); !bytes.Equal(req.Image, st.img) || req.Task != "faces" {
			t.Fatalf("%s: the provider did not get the image", name)
		}
	}
}

func TestAnalyzeAPIErrors(t *testing.T) {
	st := newServiceTest(t, nil)
	b64 := base64.StdEncoding.EncodeToString(st.img)
	img := map[string]any{"base64": b64}
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		msg    []string
	}{
		{"empty body", []byte(" "), 400, api.CodeBadRequest, []string{"empty"}},
		{"bad JSON", []byte(`{"task":`), 400, api.CodeBadRequest, nil},
		{"unknown field", map[string]any{"task": "people", "image": img, "colour": 1}, 400, api.CodeBadRequest, []string{"colour"}},
		{"unknown image field", map[string]any{"task": "people", "image": map[string]any{"path": "/a"}}, 400, api.CodeBadRequest, []string{"path"}},
		{"no task", map[string]any{"image": img}, 400, api.CodeInvalid, []string{"task is required"}},
		{"bad task", map[string]any{"task": "cats", "image": img}, 400, api.CodeInvalid, []string{`"cats"`}},
		{"unknown provider", map[string]any{"task": "people", "provider": "gemini", "image": img}, 400, api.CodeInvalid, []string{`"gemini" is not available`, "local"}},
		{"no image", map[string]any{"task": "people"}, 400, api.CodeInvalid, []string{"exactly one of url, base64 and filesPath"}},
		{"two images", map[string]any{"task": "people", "image": map[string]any{"base64": b64, "url": st.web.URL + "/img.jpg"}}, 400, api.CodeInvalid, []string{"exactly one"}},
		{"bad base64", map[string]any{"task": "people", "image": map[string]any{"base64": "***"}}, 400, api.CodeInvalid, []string{"base64"}},
		{"bad roi", map[string]any{"task": "people", "image": img, "roi": map[string]any{"Left": 0.5, "Top": 0, "Width": 0.8, "Height": 1}}, 400, api.CodeInvalid, []string{"roi"}},
		{"bad minScore", map[string]any{"task": "people", "image": img, "minScore": 50}, 400, api.CodeInvalid, []string{"minScore"}},
		{"not an image", map[string]any{"task": "people", "image": map[string]any{"base64": base64.StdEncoding.EncodeToString([]byte("GIF89a not really"))}}, 422, CodeBadImage, []string{"not a JPEG or PNG"}},
		{"broken JPEG", map[string]any{"task": "people", "image": map[string]any{"base64": base64.StdEncoding.EncodeToString(st.img[:20])}}, 422, CodeBadImage, []string{"cannot be read"}},
		{"URL text", map[string]any{"task": "people", "image": map[string]any{"url": st.web.URL + "/text"}}, 422, CodeBadImage, []string{"not a JPEG or PNG"}},
		{"URL 404", map[string]any{"task": "people", "image": map[string]any{"url": st.web.URL + "/404"}}, 422, CodeBadImage, []string{"image download: 404"}},
		{"URL 500", map[string]any{"task": "people", "image": map[string]any{"url": st.web.URL + "/500"}}, 502, CodeProvider, []string{"image download: 500"}},
		{"URL slow", map[string]any{"task": "people", "image": map[string]any{"url": st.web.URL + "/slow"}}, 504, CodeTimeout, []string{"timed out"}},
		{"URL to ftp", map[string]any{"task": "people", "image": map[string]any{"url": st.web.URL + "/ftp"}}, 400, api.CodeInvalid, []string{"not http or https"}},
		{"URL scheme", map[string]any{"task": "people", "image": map[string]any{"url": "file:///etc/passwd"}}, 400, api.CodeInvalid, []string{"http or https"}},
		{"URL too large", map[string]any{"task": "people", "image": map[string]any{"url": st.web.URL + "/big"}}, 413, api.CodeTooLarge, nil},
		{"base64 too large", map[string]any{"task": "people", "image": map[string]any{"base64": base64.StdEncoding.EncodeToString(make([]byte, 300<<10))}}, 413, api.CodeTooLarge, nil},
		{"body too large", []byte(`{"task":"people","image":{"base64":"` + strings.Repeat("A", 600<<10) + `"}}`), 413, api.CodeTooLarge, nil},
		{"file missing", map[string]any{"task": "people", "image": map[string]any{"filesPath": "/nope.jpg"}}, 404, api.CodeNotFound, []string{"/nope.jpg"}},
		{"file path bad", map[string]any{"task": "people", "image": map[string]any{"filesPath": "/a/../b.jpg"}}, 400, api.CodeBadPath, nil},
		{"annotate unavailable", map[string]any{"task": "people", "image": img, "annotate": map[string]any{"filePath": "/out.jpg"}}, 501, CodeNotImplemented, []string{"annotated images"}},
		{"passUrl needs URL", map[string]any{"task": "prompt", "prompt": "x", "image": map[string]any{"base64": b64, "passUrl": true}}, 400, api.CodeInvalid, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := st.call(t, nil, c.body, c.status)
			wantCode(t, m, c.code, c.msg...)
		})
	}

	// Provider errors keep their status and code.
	st.local.mu.Lock()
	st.local.err = errHTTPStatus("local", 503, "warming up")
	st.local.mu.Unlock()
	wantCode(t, st.call(t, nil, map[string]any{"task": "people", "image": img}, 502), CodeProvider, "warming up")
	st.local.mu.Lock()
	st.local.err = errors.New("disk on fire")
	st.local.mu.Unlock()
	wantCode(t, st.call(t, nil, map[string]any{"task": "people", "image": img}, 500), api.CodeInternal)
}

func TestAnalyzeAPIAuth(t *testing.T) {
	st := newServiceTest(t, nil)
	root := &api.Principal{OperatorID: st.op}
	if status, _, out, err := st.rt.Invoke(t.Context(), root, "User:createUser", map[string]string{"user_name": "viewer"}, nil, []byte(`{}`)); err != nil || status != 201 {
		t.Fatalf("createUser: %d %s %v", status, out, err)
	}
	body := map[string]any{"task": "people", "image": map[string]any{"base64": base64.StdEncoding.EncodeToString(st.img)}}
	wantCode(t, st.call(t, &api.Principal{OperatorID: st.op, UserName: "viewer"}, body, 403), api.CodeForbidden)

	// Over HTTP without credentials.
	srv := httptest.NewServer(st.rt)
	defer srv.Close()
	b, _ := json.Marshal(body)
	resp, err := http.Post(srv.URL+"/v1/vision/analyze", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unauthenticated: %d", resp.StatusCode)
	}
}

func TestAnalyzeAnnotate(t *testing.T) {
	var got map[string]any
	st := newServiceTest(t, func(img []byte, result map[string]any) ([]byte, string, error) {
		got = result
		return testPNG(t), "image/png", nil
	})
	res := st.call(t, nil, map[string]any{"task": "people", "image": map[string]any{"base64": base64.StdEncoding.EncodeToString(st.img)},
		"annotate": map[string]any{"filePath": "/annotated/1.png"}}, 200)
	if got == nil || got["person_count"] != 1 {
		t.Fatalf("the annotator got %v", got)
	}
	an, _ := res["annotated"].(map[string]any)
	if an["filePath"] != "/annotated/1.png" || an["contentType"] != "image/png" {
		t.Fatalf("annotated %v", res["annotated"])
	}
	e, err := st.files.Stat(t.Context(), st.op, "/annotated/1.png")
	if err != nil || e.ContentType != "image/png" || e.ContentLength != int64(len(testPNG(t))) {
		t.Fatalf("stored %+v %v", e, err)
	}
	// A bad annotate path fails before the analysis.
	wantCode(t, st.call(t, nil, map[string]any{"task": "people", "image": map[string]any{"base64": base64.StdEncoding.EncodeToString(st.img)},
		"annotate": map[string]any{"filePath": "/"}}, 400), api.CodeBadPath)
}

// TestAnalyzeMap is the flow ai action's path: a plain map with string
// image and annotate, the default provider, options passed on.
func TestAnalyzeMap(t *testing.T) {
	st := newServiceTest(t, func(img []byte, result map[string]any) ([]byte, string, error) { return img, "image/jpeg", nil })
	res, err := st.svc.Analyze(t.Context(), st.op, map[string]any{"task": "people", "capacity": 10, "image": st.web.URL + "/img.jpg",
		"annotate": "/ann/a.jpg", "model": "m1", "credentials": "c1", "json": true, "roi": map[string]any{"Left": 0, "Top": 0, "Width": 1, "Height": 1}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := st.local.last(t)
	if req.Options["model"] != "m1" || req.Options["credentials"] != "c1" || req.Options["json"] != true || req.Capacity != 10 || req.ROI == nil {
		t.Fatalf("request %+v", req)
	}
	if res["crowding_level"] != 10.0 || res["annotated"].(map[string]any)["filePath"] != "/ann/a.jpg" {
		t.Fatalf("result %v", res)
	}
	_, err = st.svc.Analyze(t.Context(), st.op, map[string]any{"task": "people", "image": st.web.URL + "/img.jpg", "colour": "red"})
	wantError(t, err, 400, false, "colour")
	_, err = st.svc.Analyze(t.Context(), st.op, map[string]any{"task": "people", "image": st.web.URL + "/500"})
	wantError(t, err, 502, true)
}

// TestSeed000ThroughService runs seed 000's AI step as the ai action sends
// it, against the openai provider on a local fake.
func TestSeed000ThroughService(t *testing.T) {
	st := newServiceTest(t, nil)
	st.addCredential(t, "openai", "api-token-credentials", map[string]any{"token": "sk-seed"})
	f, srv := startFake(t)
	reply := `{"state":"誰もいない","person_count":0,"crowding_level":0,"url":"https://example.com/export/1.jpg?sig=abc"}`
	f.set(0, chatReplyBody(reply, "stop"), 0)
	st.svc.AddProvider(NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Model: "gpt-4o", Credentials: st.creds}))
	res, err := st.svc.Analyze(t.Context(), st.op, map[string]any{"task": "prompt", "provider": "openai", "credentials": "openai",
		"prompt": seed000Prompt, "image": st.web.URL + "/img.jpg"})
	if err != nil {
		t.Fatal(err)
	}
	req, h, _ := f.last()
	_, text, iu := userParts(t, req)
	if text != seed000Prompt || !strings.HasPrefix(iu["url"].(string), "data:image/jpeg;base64,") || h.Get("Authorization") != "Bearer sk-seed" {
		t.Fatalf("request %v", req)
	}
	if res["output"] != reply || res["json"].(map[string]any)["state"] != "誰もいない" {
		t.Fatalf("result %v", res)
	}
	// passUrl hands the URL itself to the provider.
	_, err = st.svc.Run(t.Context(), st.op, &AnalyzeRequest{Task: "prompt", Provider: "openai", Credentials: "openai", Prompt: "Describe it.",
		Image: ImageSource{URL: "https://example.com/x.jpg", PassURL: true}})
	if err != nil {
		t.Fatal(err)
	}
	req, _, _ = f.last()
	if _, _, iu := userParts(t, req); iu["url"] != "https://example.com/x.jpg" {
		t.Fatalf("image_url %v", iu)
	}
}

func TestCrowdingLevel(t *testing.T) {
	if CrowdingLevel(3, 0) != nil || CrowdingLevel(1, 3) != 33.3 || CrowdingLevel(12, 10) != 120.0 {
		t.Fatal(CrowdingLevel(3, 0), CrowdingLevel(1, 3), CrowdingLevel(12, 10))
	}
}
