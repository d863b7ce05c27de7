package examples_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/dashboard"
	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/servertest"
)

const (
	crowdingCam = "7CDDDEADBEEF" // the camera the app and the dashboard name
	// crowdingCron is the seed's schedule as app.yaml writes it; the tests
	// replace it with crowdingFast and nothing else.
	crowdingCron = `cron: "0 */5 * * * *"`
	crowdingFast = `cron: "*/2 * * * * *"`
	crowdingKey  = "sk-crowding-test-0123456789abcdef"
)

// crowdingPathRE is where the app keeps the stills in Harvest Files:
// /crowding/<camera>/YYYY/MM/DD/hh/mm/<exportId>.jpg.
var crowdingPathRE = regexp.MustCompile(`^/crowding/` + crowdingCam + `/\d{4}/\d\d/\d\d/\d\d/\d\d/([0-9a-f-]{36})\.jpg$`)

// crowdingEntry is one Harvest Data entry the app stores on the camera.
type crowdingEntry struct {
	Time          int64
	State         string   `json:"state"`
	PersonCount   *float64 `json:"person_count"`
	CrowdingLevel *float64 `json:"crowding_level"`
	ImagePath     string   `json:"image_path"`
	AnnotatedPath string   `json:"annotated_path"`
	ExportID      string   `json:"export_id"`
	Error         string   `json:"error"`
}

// crowdingStart runs seed 000's set-up as the README describes it: a
// simulated RTSP camera streaming real footage (vtest.avi), registered
// as 7CDDDEADBEEF with recording on; the crowding-bot user allowed only
// the two export operations on that camera; the dashboard applied as it
// is. It returns the server and the camera's video file.
func crowdingStart(t *testing.T, mod ...func(*config.Config)) (*servertest.TS, string) {
	t.Helper()
	video := camtest.Fixture(t, camsim.KindVtest)
	cam := camtest.Camera(t, camsim.Config{File: video})
	ts := servertest.Start(t, mod...)
	root := ts.Root
	if res := root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": crowdingCam, "name": "Office seats",
		"rtspUrl": cam.URL(), "recording": true}); res.Status != 201 && res.Status != 200 {
		t.Fatalf("camera: %d %s", res.Status, res.Body)
	}
	users := "/v1/operators/" + ts.OperatorID + "/users/crowding-bot"
	if res := root.Do("POST", users, map[string]any{}); res.Status != 201 && res.Status != 200 {
		t.Fatalf("user: %d %s", res.Status, res.Body)
	}
	perm := `{"statements":[{"effect":"allow","api":["SoraCam:exportSoraCamDeviceRecordedImage","SoraCam:getSoraCamDeviceExportedImage"],` +
		`"condition":"pathVariable('device_id') == '` + crowdingCam + `'"}]}`
	if res := root.Do("PUT", users+"/permission", map[string]any{"permission": perm}); res.Status != 200 {
		t.Fatalf("permission: %d %s", res.Status, res.Body)
	}
	applyFile(t, ts, "crowding/dashboard.yaml")
	return ts, video
}

// crowdingApply applies an app file of examples/crowding as it is, except
// for the seed's 5-minute timer, which fires every 2 seconds here.
func crowdingApply(t *testing.T, ts *servertest.TS, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(crowdingCron)) || !bytes.Contains(src, []byte("timezone: Asia/Tokyo")) {
		t.Fatalf("%s: no %s with timezone Asia/Tokyo (the seed's schedule)", path, crowdingCron)
	}
	fast := strings.Replace(string(src), crowdingCron, crowdingFast, 1)
	if res := ts.Root.Do("PUT", "/v1/flux/apps/crowding-monitor", fast, "Content-Type", "application/yaml"); res.Status != 201 && res.Status != 200 {
		t.Fatalf("apply %s: %d %s", path, res.Status, res.Body)
	}
}

// crowdingEntries reads the camera's Harvest Data, newest first.
func crowdingEntries(t *testing.T, ts *servertest.TS, query string) []crowdingEntry {
	t.Helper()
	res := ts.Root.Do("GET", "/v1/data/SoraCam/"+crowdingCam+"?"+query, nil)
	if res.Status != 200 {
		t.Fatalf("data: %d %s", res.Status, res.Body)
	}
	var raw []struct {
		Time    int64
		Content string
	}
	res.JSON(&raw)
	out := make([]crowdingEntry, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal([]byte(r.Content), &out[i]); err != nil {
			t.Fatalf("entry %q: %v", r.Content, err)
		}
		out[i].Time = r.Time
	}
	return out
}

// crowdingCounted are the entries with a count (not failure reports).
func crowdingCounted(es []crowdingEntry) []crowdingEntry {
	var out []crowdingEntry
	for _, e := range es {
		if e.PersonCount != nil {
			out = append(out, e)
		}
	}
	return out
}

// crowdingNum prints an optional number.
func crowdingNum(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// crowdingFile downloads a Harvest File (the API answers 302 to a signed URL).
func crowdingFile(t *testing.T, ts *servertest.TS, path string) []byte {
	t.Helper()
	res := ts.Root.Do("GET", "/v1/files/private"+path, nil)
	if res.Status != 302 {
		t.Fatalf("file %s: %d %s", path, res.Status, res.Body)
	}
	loc := res.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = ts.URL + loc
	}
	resp, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("file %s: %d %s %.100q", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return b
}

// crowdingJPEG decodes a JPEG and checks it is a camera still (640×480).
func crowdingJPEG(t *testing.T, what string, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: not a JPEG: %v", what, err)
	}
	if sz := img.Bounds().Size(); sz != image.Pt(640, 480) {
		t.Fatalf("%s is %v; want the camera's 640×480", what, sz)
	}
	return img
}

// crowdingRuns waits until n runs started by the timer have finished and
// checks that every finished run succeeded; it returns them.
func crowdingRuns(t *testing.T, ts *servertest.TS, n int) []flow.Run {
	t.Helper()
	var done []flow.Run
	waitFor(t, fmt.Sprintf("%d finished runs", n), func() bool {
		var runs []flow.Run
		ts.Root.Do("GET", "/v1/flux/apps/crowding-monitor/runs?limit=1000", nil).JSON(&runs)
		done = done[:0]
		for _, r := range runs {
			if r.Status != flow.RunRunning {
				done = append(done, r)
			}
		}
		return len(done) >= n
	})
	for _, r := range done {
		if r.Status != flow.RunSucceeded || r.Source != "timer" || r.Channel != "tick" {
			t.Errorf("run %s: %s from %s/%s: %s", r.RunID, r.Status, r.Source, r.Channel, r.Error)
		}
	}
	return done
}

// crowdingTrace reads a run's steps and counts the succeeded ones per action.
func crowdingTrace(t *testing.T, ts *servertest.TS, runID string) (map[string]int, flow.RunDetail) {
	t.Helper()
	var d flow.RunDetail
	ts.Root.Do("GET", "/v1/flux/apps/crowding-monitor/runs/"+runID, nil).JSON(&d)
	ok := map[string]int{}
	for _, s := range d.Trace {
		if s.Kind == "action" && s.Status == flow.StepSucceeded {
			ok[s.Action]++
		}
	}
	return ok, d
}

// crowdingDashboard makes the queries behind each panel of the crowding
// dashboard as docs/dashboards.md describes them (entries of the range,
// newest first, for logs, stat and image panels; the series for the
// timeseries panel) and checks they return the app's data: the newest
// counted entry, its still, and the series of both keys.
func crowdingDashboard(t *testing.T, ts *servertest.TS, newest crowdingEntry, counted int) {
	t.Helper()
	var d dashboard.Dashboard
	if res := ts.Root.Do("GET", "/v1/dashboards/crowding", nil); res.Status != 200 {
		t.Fatalf("dashboard: %d %s", res.Status, res.Body)
	} else {
		res.JSON(&d)
	}
	if d.Time.From != "now-6m" || d.Time.To != "now" || len(d.Panels) != 5 {
		t.Fatalf("dashboard %+v", d)
	}
	now := time.Now()
	kinds := map[string]int{}
	for _, p := range d.Panels {
		kinds[p.Kind]++
		if p.Resource.Type != "SoraCam" || p.Resource.ID != crowdingCam {
			t.Errorf("panel %q reads %+v", p.Title, p.Resource)
		}
		tr := d.Time
		if p.Time != nil {
			tr = *p.Time
		}
		from, to, err := tr.Resolve(now)
		if err != nil {
			t.Fatalf("panel %q: %v", p.Title, err)
		}
		base := "/v1/data/" + p.Resource.Type + "/" + p.Resource.ID
		rng := fmt.Sprintf("from=%d&to=%d", from.UnixMilli(), to.UnixMilli())
		if p.Kind == dashboard.KindTimeseries {
			if to.Sub(from) != 6*time.Hour {
				t.Errorf("timeseries range %s; want the seed's 6 h", to.Sub(from))
			}
			res := ts.Root.Do("GET", base+"/series?keys="+strings.Join(p.Keys, ",")+"&"+rng+"&buckets=360", nil)
			var s struct {
				Series []struct {
					Key     string
					Buckets []struct {
						Avg   *float64
						Count int
					}
				}
			}
			if res.Status != 200 {
				t.Fatalf("series: %d %s", res.Status, res.Body)
			}
			res.JSON(&s)
			if len(s.Series) != 2 {
				t.Fatalf("series %s", res.Body)
			}
			for _, ser := range s.Series {
				n := 0
				for _, b := range ser.Buckets {
					n += b.Count
					if b.Count > 0 && (b.Avg == nil || *b.Avg < 0) {
						t.Errorf("series %s: bucket %+v", ser.Key, b)
					}
				}
				if n < counted {
					t.Errorf("series %s counts %d values; %d entries were stored", ser.Key, n, counted)
				}
			}
			continue
		}
		// logs, stat, image: the entries of the range, newest first; the
		// panel shows the newest that has its field.
		es := crowdingEntries(t, ts, rng+"&sort=desc&limit=100")
		key := p.Field
		if p.Kind == dashboard.KindStat {
			key = p.Keys[0]
		}
		var shown *crowdingEntry
		for i := range es {
			if e := es[i]; key == "state" && e.State != "" || key == "image_path" && e.ImagePath != "" ||
				key == "person_count" && e.PersonCount != nil || key == "crowding_level" && e.CrowdingLevel != nil {
				shown = &es[i]
				break
			}
		}
		if shown == nil {
			t.Errorf("panel %q (%s %s): nothing in %s", p.Title, p.Kind, key, rng)
			continue
		}
		if key != "state" && shown.ExportID != newest.ExportID && shown.Time < newest.Time {
			t.Errorf("panel %q shows %+v; the newest counted entry is %+v", p.Title, *shown, newest)
		}
		if p.Kind == dashboard.KindImage {
			if p.Mode != dashboard.ModeFiles {
				t.Errorf("image panel mode %q; want files", p.Mode)
			}
			crowdingJPEG(t, "the image panel's still", crowdingFile(t, ts, shown.ImagePath))
		}
	}
	if kinds["logs"] != 1 || kinds["stat"] != 2 || kinds["timeseries"] != 1 || kinds["image"] != 1 {
		t.Errorf("panel kinds %v", kinds)
	}
}

// Seed 000 end to end with the offline people count: the app and the
// dashboard of examples/crowding (the timer shortened) against a simulated
// RTSP camera streaming real footage. The timer exports stills, the poll
// loop waits for them, the people model counts the pedestrians of
// vtest.avi, Harvest gets {state, person_count, crowding_level,
// image_path} on SoraCam/7CDDDEADBEEF with the still and its annotated
// copy in Files, and the dashboard's queries return them. When the camera
// is gone, the failure shows on the dashboard instead of a silent gap.
func TestCrowdingMonitor(t *testing.T) {
	ts, video := crowdingStart(t, servertest.WithVisionModels(t))
	crowdingApply(t, ts, "crowding/app.yaml")

	var counted []crowdingEntry
	waitFor(t, "three counted stills", func() bool {
		counted = crowdingCounted(crowdingEntries(t, ts, "limit=100"))
		return len(counted) >= 3
	})
	seen := map[string]bool{}
	people := 0
	for _, e := range counted {
		t.Logf("stored: %v people, level %s, %q, %s", *e.PersonCount, crowdingNum(e.CrowdingLevel), e.State, e.ImagePath)
		n := *e.PersonCount
		if n < 0 || n != math.Trunc(n) || e.CrowdingLevel == nil || math.Abs(*e.CrowdingLevel-n*100/20) > 1e-9 {
			t.Errorf("count %v, level %s; want a whole number and level = count / 20 seats × 100", n, crowdingNum(e.CrowdingLevel))
		}
		if !strings.Contains(e.State, fmt.Sprintf("%d人", int(n))) {
			t.Errorf("state %q does not say the count", e.State)
		}
		m := crowdingPathRE.FindStringSubmatch(e.ImagePath)
		if m == nil || m[1] != e.ExportID || seen[e.ExportID] {
			t.Errorf("image_path %q, export %q: want a new still at /crowding/%s/<date>/<exportId>.jpg", e.ImagePath, e.ExportID, crowdingCam)
			continue
		}
		seen[e.ExportID] = true
		still := crowdingFile(t, ts, e.ImagePath)
		crowdingJPEG(t, e.ImagePath, still)
		// Real footage: the still is a frame of the camera's video.
		if idx, diff := camtest.MatchFrame(t, video, still); diff > 12 {
			t.Errorf("%s matches frame %d of the footage only by %.1f", e.ImagePath, idx, diff)
		}
		if want := strings.TrimSuffix(e.ImagePath, ".jpg") + "-people.jpg"; e.AnnotatedPath != want {
			t.Errorf("annotated_path %q; want %q", e.AnnotatedPath, want)
		} else if ann := crowdingFile(t, ts, e.AnnotatedPath); bytes.Equal(ann, still) {
			t.Errorf("the annotated copy is the still itself")
		} else {
			crowdingJPEG(t, e.AnnotatedPath, ann)
		}
		people += int(n)
	}
	// vtest.avi shows a few people walking across a square.
	if people == 0 {
		t.Errorf("no people counted on %d stills of vtest.avi", len(counted))
	}

	// The runs: the timer's, every finished one succeeded, each through
	// the whole path (export, the poll loop, the count, the store).
	runs := crowdingRuns(t, ts, 3)
	ok, d := crowdingTrace(t, ts, runs[len(runs)-1].RunID)
	if ok["export"] != 1 || ok["check"] < 1 || ok["count"] != 1 || ok["save"] != 1 || ok["report"] != 0 {
		t.Errorf("run %s steps %v: %+v", d.RunID, ok, d.Trace)
	}

	crowdingDashboard(t, ts, counted[0], len(counted))

	// The camera is gone: the export is refused (404), the run handles it
	// (onError) and the failure is a line in the dashboard's 様子 panel.
	deleted := time.Now().UnixMilli()
	if res := ts.Root.Do("DELETE", "/v1/sora_cam/devices/"+crowdingCam, nil); res.Status != 204 && res.Status != 200 {
		t.Fatalf("delete camera: %d %s", res.Status, res.Body)
	}
	var failed crowdingEntry
	waitFor(t, "a failure report", func() bool {
		for _, e := range crowdingEntries(t, ts, "limit=5") {
			if e.Error != "" {
				failed = e
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(failed.State, "⚠ ") || !strings.Contains(failed.State, failed.Error) || failed.PersonCount != nil {
		t.Errorf("failure entry %+v", failed)
	}
	t.Logf("failure: %s", failed.State)
	var handled bool
	waitFor(t, "a handled failed run", func() bool {
		var runs []flow.Run
		ts.Root.Do("GET", "/v1/flux/apps/crowding-monitor/runs?limit=10", nil).JSON(&runs)
		for _, r := range runs {
			if r.Status == flow.RunFailed {
				t.Fatalf("run %s failed: %s", r.RunID, r.Error)
			}
			if r.Status != flow.RunSucceeded || r.StartedAt < deleted {
				continue
			}
			if ok, _ := crowdingTrace(t, ts, r.RunID); ok["report"] == 1 {
				handled = true
			}
		}
		return handled
	})
	if res := ts.Root.Do("POST", "/v1/flux/apps/crowding-monitor/disable", nil); res.Status != 200 {
		t.Errorf("disable: %d %s", res.Status, res.Body)
	}
}

// crowdingOpenAI is a local stand-in for OpenAI's chat completions API
// (POST /v1/chat/completions, Bearer key, a user message of a text part and
// an image_url part; the reply a chat.completion object), answering seed
// 000's prompt the way GPT-4o does: a JSON object.
type crowdingOpenAI struct {
	t     *testing.T
	reply map[string]any
	mu    sync.Mutex
	got   []crowdingChat
}

// crowdingChat is what one request carried.
type crowdingChat struct {
	Auth, Model, Format, Text, ImageURL string
}

func (f *crowdingOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model          string `json:"model"`
		ResponseFormat struct {
			Type string `json:"type"`
		} `json:"response_format"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if r.Method != "POST" || r.URL.Path != "/v1/chat/completions" || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("openai fake: %s %s (%s)", r.Method, r.URL, r.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad JSON","type":"invalid_request_error"}}`, 400)
		return
	}
	c := crowdingChat{Auth: r.Header.Get("Authorization"), Model: req.Model, Format: req.ResponseFormat.Type}
	for _, m := range req.Messages {
		var parts []struct {
			Type     string `json:"type"`
			Text     string `json:"text"`
			ImageURL struct {
				URL string `json:"url"`
			} `json:"image_url"`
		}
		if m.Role != "user" || json.Unmarshal(m.Content, &parts) != nil {
			continue
		}
		for _, p := range parts {
			switch p.Type {
			case "text":
				c.Text = p.Text
			case "image_url":
				c.ImageURL = p.ImageURL.URL
			}
		}
	}
	f.mu.Lock()
	f.got = append(f.got, c)
	f.mu.Unlock()
	// The seed's prompt asks for its own "url" back: echo it, as GPT-4o does.
	reply := map[string]any{}
	for k, v := range f.reply {
		reply[k] = v
	}
	if m := regexp.MustCompile(`"url":"([^"]*)"`).FindStringSubmatch(c.Text); m != nil {
		reply["url"] = m[1]
	}
	content, _ := json.Marshal(reply)
	body, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-crowding", "object": "chat.completion", "created": time.Now().Unix(), "model": "gpt-4o-2024-08-06",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "logprobs": nil,
			"message": map[string]any{"role": "assistant", "content": string(content), "refusal": nil}}},
		"usage": map[string]any{"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (f *crowdingOpenAI) requests() []crowdingChat {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]crowdingChat(nil), f.got...)
}

// crowdingSeedPrompt is the AI prompt of seed 000 as its article writes it.
func crowdingSeedPrompt(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob(shared + "seeds/000_*.txt")
	if len(files) != 1 {
		t.Fatalf("seed 000 not found in %sseeds", shared)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "```\n画像の様子を説明してください。")
	if i < 0 {
		t.Fatal("the seed's prompt is not in the article")
	}
	s = s[i+4:]
	return s[:strings.Index(s, "\n```")]
}

// Seed 000 with the seed's own AI step (app-openai.yaml): GPT-4o, here a
// local fake of OpenAI's API, gets the seed's prompt as written (its
// ${payload.url} filled with the export's URL), the still from Files and
// the key from the credentials store; its JSON reply fills the keys the
// dashboard reads, and image_path is the kept still that was sent.
func TestCrowdingMonitorOpenAI(t *testing.T) {
	fake := &crowdingOpenAI{t: t, reply: map[string]any{
		"state":        "オフィスの広場を数人が歩いています。着席している人はほとんどいません。",
		"person_count": 3, "crowding_level": 15,
	}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	ts, video := crowdingStart(t, func(c *config.Config) { c.OpenAIBaseURL = srv.URL })
	if res := ts.Root.Do("POST", "/v1/credentials/crowding-openai", map[string]any{"type": "api-token-credentials",
		"credentials": map[string]string{"token": crowdingKey}}); res.Status != 201 {
		t.Fatalf("credential: %d %s", res.Status, res.Body)
	}
	crowdingApply(t, ts, "crowding/app-openai.yaml")

	var counted []crowdingEntry
	waitFor(t, "two described stills", func() bool {
		counted = crowdingCounted(crowdingEntries(t, ts, "limit=100"))
		return len(counted) >= 2
	})
	prompt := crowdingSeedPrompt(t)
	reqs := fake.requests()
	for _, e := range counted {
		if e.State != fake.reply["state"] || *e.PersonCount != 3 || e.CrowdingLevel == nil || *e.CrowdingLevel != 15 {
			t.Errorf("stored %+v; want the reply's state, person_count and crowding_level", e)
		}
		m := crowdingPathRE.FindStringSubmatch(e.ImagePath)
		if m == nil || m[1] != e.ExportID {
			t.Errorf("image_path %q of export %q", e.ImagePath, e.ExportID)
			continue
		}
		still := crowdingFile(t, ts, e.ImagePath)
		crowdingJPEG(t, e.ImagePath, still)
		if _, diff := camtest.MatchFrame(t, video, still); diff > 12 {
			t.Errorf("%s is not a frame of the footage (%.1f)", e.ImagePath, diff)
		}
		// The request that described this still: the seed's prompt with
		// the export's signed URL in it, the still itself as the image.
		var req *crowdingChat
		for i := range reqs {
			if strings.Contains(reqs[i].Text, e.ExportID) {
				req = &reqs[i]
			}
		}
		if req == nil {
			t.Errorf("no request to OpenAI for export %s", e.ExportID)
			continue
		}
		u := regexp.MustCompile(`"url":"([^"]*)"`).FindStringSubmatch(req.Text)
		if u == nil || !strings.HasPrefix(u[1], ts.URL+"/") {
			t.Errorf("prompt without the export's URL:\n%s", req.Text)
		} else if want := strings.Replace(prompt, "${payload.url}", u[1], 1); req.Text != want {
			t.Errorf("prompt sent:\n%s\nwant the seed's:\n%s", req.Text, want)
		} else if resp, err := http.Get(u[1]); err != nil {
			t.Error(err)
		} else {
			// The seed's url: the export's signed link, serving the same still.
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(b, still) {
				t.Errorf("export URL %s: %d, %d bytes; want the still", u[1], resp.StatusCode, len(b))
			}
		}
		if req.Auth != "Bearer "+crowdingKey || req.Model != "gpt-4o" || req.Format != "json_object" {
			t.Errorf("request: Authorization %q, model %q, response_format %q", req.Auth, req.Model, req.Format)
		}
		if img, ok := strings.CutPrefix(req.ImageURL, "data:image/jpeg;base64,"); !ok {
			t.Errorf("image_url %.60q; want the still as a JPEG data URL", req.ImageURL)
		} else if b, err := base64.StdEncoding.DecodeString(img); err != nil || !bytes.Equal(b, still) {
			t.Errorf("the image sent is not the still kept at %s (%v)", e.ImagePath, err)
		}
	}
	runs := crowdingRuns(t, ts, 2)
	ok, d := crowdingTrace(t, ts, runs[len(runs)-1].RunID)
	if ok["export"] != 1 || ok["check"] < 1 || ok["describe"] != 1 || ok["save"] != 1 {
		t.Errorf("run %s steps %v: %+v", d.RunID, ok, d.Trace)
	}
	crowdingDashboard(t, ts, counted[0], len(counted))
	if res := ts.Root.Do("POST", "/v1/flux/apps/crowding-monitor/disable", nil); res.Status != 200 {
		t.Errorf("disable: %d %s", res.Status, res.Body)
	}
}
