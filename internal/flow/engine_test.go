package flow_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/servertest"
)

func startFlow(t *testing.T, mod ...func(*config.Config)) *servertest.TS {
	t.Helper()
	return servertest.Start(t, append([]func(*config.Config){func(c *config.Config) {
		c.FlowAckWait = 2 * time.Second
		c.FlowRetryBackoff = 20 * time.Millisecond
	}}, mod...)...)
}

func apply(t *testing.T, ts *servertest.TS, yaml string) {
	t.Helper()
	name := strings.TrimSpace(strings.SplitN(strings.SplitN(yaml, "name:", 2)[1], "\n", 2)[0])
	res := ts.Root.Do("PUT", "/v1/flux/apps/"+name, yaml, "Content-Type", "application/yaml")
	if res.Status != 200 && res.Status != 201 {
		t.Fatalf("apply %s: %d %s", name, res.Status, res.Body)
	}
}

// testRun sends a test message and returns the finished run.
func testRun(t *testing.T, ts *servertest.TS, app, channel string, msg any) *flow.RunDetail {
	t.Helper()
	res := ts.Root.Do("POST", "/v1/flux/apps/"+app+"/channels/"+channel+"/test?timeout=25", msg)
	if res.Status != 200 {
		t.Fatalf("test run: %d %s", res.Status, res.Body)
	}
	var d flow.RunDetail
	res.JSON(&d)
	return &d
}

func steps(d *flow.RunDetail, action string) []flow.Step {
	var out []flow.Step
	for _, s := range d.Trace {
		if s.Kind == "action" && s.Action == action {
			out = append(out, s)
		}
	}
	return out
}

// sink records what webhooks send it.
type sink struct {
	mu     sync.Mutex
	bodies []map[string]any
	srv    *httptest.Server
	fail   atomic.Int32 // answer 503 to this many requests first
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fail.Load() > 0 {
			s.fail.Add(-1)
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		s.mu.Lock()
		s.bodies = append(s.bodies, v)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) got() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

// The pattern of seed 000: action A starts an export, action B polls it
// in a loop (with a delay per iteration) until it is completed, then
// action C stores the result.
func TestSeedLoopUntilCompleted(t *testing.T) {
	var polls atomic.Int32
	stand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == "/exports":
			fmt.Fprint(w, `{"exportId":"ex1","status":"initializing"}`)
		case r.Method == "GET" && r.URL.Path == "/exports/ex1":
			status := "processing"
			if polls.Add(1) >= 3 {
				status = "completed"
			}
			fmt.Fprintf(w, `{"exportId":"ex1","status":%q,"url":"https://img.example/ex1.jpg"}`, status)
		default:
			http.NotFound(w, r)
		}
	}))
	defer stand.Close()
	out := newSink(t)
	ts := startFlow(t)
	apply(t, ts, `
name: crowding
channels:
  tick:
    actions:
      - name: export
        webhook: {url: "`+stand.URL+`/exports", body: {time: "${now()}"}}
        output: {channel: poll, transform: "${result.body}"}
  poll:
    actions:
      - name: check
        condition: payload.status != "completed"
        webhook: {method: GET, url: "`+stand.URL+`/exports/${payload.exportId}"}
        output: {channel: poll, transform: "${result.body}", delay: 1s}
      - name: store
        condition: payload.status == "completed"
        webhook:
          url: `+out.srv.URL+`/ingest
          body: {url: "${payload.url}", at: "${now()}", text: "export ${payload.exportId} done", n: "${len(payload.exportId)}"}
`)
	d := testRun(t, ts, "crowding", "tick", map[string]any{"go": true})
	if d.Status != flow.RunSucceeded {
		t.Fatalf("run %s: %s (%s)\n%+v", d.RunID, d.Status, d.Error, d.Trace)
	}
	checks := steps(d, "check")
	var ran, skipped int
	for _, s := range checks {
		switch s.Status {
		case flow.StepSucceeded:
			ran++
			if s.DelayMS != 1000 {
				t.Errorf("check output delay = %dms; want 1000", s.DelayMS)
			}
		case flow.StepSkipped:
			skipped++
		}
	}
	// Polls 1 and 2 answer processing (loop), poll 3 completed: check runs
	// 3 times and is skipped once (on the completed payload).
	if ran != 3 || skipped != 1 {
		t.Errorf("check ran %d times, skipped %d; want 3 and 1\n%+v", ran, skipped, checks)
	}
	if st := steps(d, "store"); len(st) != 4 || st[len(st)-1].Status != flow.StepSucceeded {
		t.Errorf("store steps: %+v", st)
	}
	got := out.got()
	if len(got) != 1 {
		t.Fatalf("sink got %d bodies; want 1", len(got))
	}
	b := got[0]
	if b["url"] != "https://img.example/ex1.jpg" || b["text"] != "export ex1 done" {
		t.Errorf("sink body = %v", b)
	}
	if _, isNum := b["at"].(float64); !isNum {
		t.Errorf("at = %#v; want a number (a template that is one ${…} keeps its type)", b["at"])
	}
	if b["n"] != float64(3) {
		t.Errorf("n = %#v; want 3", b["n"])
	}

	// The run is listed, newest first.
	var runs []flow.Run
	ts.Root.Do("GET", "/v1/flux/apps/crowding/runs", nil).JSON(&runs)
	if len(runs) != 1 || runs[0].RunID != d.RunID || runs[0].Steps != int64(len(d.Trace)) {
		t.Errorf("runs = %+v", runs)
	}
}

func TestConditions(t *testing.T) {
	out := newSink(t)
	ts := startFlow(t)
	apply(t, ts, `
name: cond
channels:
  in:
    actions:
      - name: hot
        condition: payload.temperature >= 30
        webhook: {url: "`+out.srv.URL+`/hot"}
      - name: cold
        condition: payload.temperature < 30
        webhook: {url: "`+out.srv.URL+`/cold"}
      - name: weird
        condition: payload.label
        webhook: {url: "`+out.srv.URL+`/weird"}
`)
	d := testRun(t, ts, "cond", "in", map[string]any{"temperature": 31.5, "label": "x"})
	want := map[string]string{"hot": flow.StepSucceeded, "cold": flow.StepSkipped, "weird": flow.StepFailed}
	for a, status := range want {
		st := steps(d, a)
		if len(st) != 1 || st[0].Status != status {
			t.Errorf("%s: %+v; want status %s", a, st, status)
		}
	}
	if w := steps(d, "weird"); len(w) == 1 && !strings.Contains(w[0].Error, "bool") {
		t.Errorf("non-boolean condition error = %q", w[0].Error)
	}
	if d.Status != flow.RunFailed || !strings.Contains(d.Error, "weird") {
		t.Errorf("run %s %q; want failed naming the action", d.Status, d.Error)
	}
	if c := steps(d, "hot"); len(c) == 1 && c[0].Condition != "true" {
		t.Errorf("condition result = %q", c[0].Condition)
	}
}

func TestWebhookRetriesThenDeadLetter(t *testing.T) {
	out := newSink(t)
	ts := startFlow(t)
	apply(t, ts, `
name: retry
channels:
  in:
    actions:
      - name: send
        retries: 3
        webhook: {url: "`+out.srv.URL+`/x", body: {v: "${payload.v}"}}
`)
	// Down for two attempts, then up: the third attempt delivers.
	out.fail.Store(2)
	d := testRun(t, ts, "retry", "in", map[string]any{"v": 1})
	st := steps(d, "send")
	if d.Status != flow.RunSucceeded || len(st) != 3 || st[0].Status != flow.StepRetrying || st[2].Status != flow.StepSucceeded || st[2].Attempt != 3 {
		t.Fatalf("run %s: %+v", d.Status, st)
	}
	if !strings.Contains(st[0].Error, "503") {
		t.Errorf("attempt 1 error = %q", st[0].Error)
	}
	if got := out.got(); len(got) != 1 || got[0]["v"] != float64(1) {
		t.Errorf("delivered %v", got)
	}

	// Down for longer than the retries: dead-lettered with the last error.
	out.fail.Store(100)
	d = testRun(t, ts, "retry", "in", map[string]any{"v": 2})
	st = steps(d, "send")
	if d.Status != flow.RunFailed || len(st) != 4 || st[3].Status != flow.StepFailed || !strings.Contains(d.Error, "after 4 attempts") {
		t.Fatalf("run %s %q: %+v", d.Status, d.Error, st)
	}
	s, err := ts.Bus.JS.Stream(t.Context(), flow.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(t.Context())
	if info.State.Msgs != 1 {
		t.Errorf("dead letters = %d; want 1", info.State.Msgs)
	}
}

func TestHopLimitStopsRunawayLoop(t *testing.T) {
	ts := startFlow(t)
	apply(t, ts, `
name: runaway
channels:
  spin:
    actions:
      - name: again
        republish: {}
        output: {channel: spin}
`)
	d := testRun(t, ts, "runaway", "spin", map[string]any{"n": 1})
	if d.Status != flow.RunFailed || !strings.Contains(d.Error, "hop limit") {
		t.Fatalf("run %s %q", d.Status, d.Error)
	}
	if n := len(steps(d, "again")); n != 101 {
		t.Errorf("again ran %d times; want 101 (hops 0..100)", n)
	}
}

func TestOutputForEachAndTransform(t *testing.T) {
	out := newSink(t)
	ts := startFlow(t)
	apply(t, ts, `
name: fan
channels:
  in:
    actions:
      - name: split
        republish: {}
        output: {channel: each, transform: "${payload.items}", forEach: true}
  each:
    actions:
      - name: send
        webhook: {url: "`+out.srv.URL+`/e", body: {item: "${payload}", first: "${event.payload.items[0]}"}}
`)
	d := testRun(t, ts, "fan", "in", map[string]any{"items": []any{"a", "b", "c"}})
	if d.Status != flow.RunSucceeded || len(steps(d, "send")) != 3 {
		t.Fatalf("run %s: %+v", d.Status, d.Trace)
	}
	seen := map[any]bool{}
	for _, b := range out.got() {
		seen[b["item"]] = true
		if b["first"] != "a" {
			t.Errorf("event.payload not the source event: %v", b)
		}
	}
	if len(seen) != 3 {
		t.Errorf("items sent: %v", seen)
	}
}

func TestInvalidAppReportsAllProblems(t *testing.T) {
	ts := startFlow(t)
	res := ts.Root.Do("PUT", "/v1/flux/apps/bad", `
name: bad
channels:
  a:
    actions:
      - name: x
        condition: payload.a ==
        webhook: {url: "http://h/", basicAuth: missing-cred}
        output: {channel: nowhere}
      - name: y
        webhok: {}
`, "Content-Type", "application/yaml")
	if res.Status != 400 {
		t.Fatalf("status %d %s", res.Status, res.Body)
	}
	var body struct {
		Code     string
		Problems []struct {
			Line    int
			Message string
		}
	}
	res.JSON(&body)
	if body.Code != "BAD0002" || len(body.Problems) < 4 {
		t.Fatalf("%s", res.Body)
	}
	all := string(res.Body)
	for _, want := range []string{"missing-cred", "nowhere", "webhok", "line"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not mention %q: %s", want, all)
		}
	}
	if res := ts.Root.Do("GET", "/v1/flux/apps/bad", nil); res.Status != 404 {
		t.Errorf("a bad app was stored: %d", res.Status)
	}
}

func TestAppLifecycle(t *testing.T) {
	ts := startFlow(t)
	src := "name: life\ndescription: lifecycle\nchannels:\n  in:\n    sources:\n      - webhook: {}\n    actions:\n      - name: r\n        republish: {}\n"
	if res := ts.Root.Do("POST", "/v1/flux/apps", src, "Content-Type", "application/yaml"); res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	if res := ts.Root.Do("POST", "/v1/flux/apps", src, "Content-Type", "application/yaml"); res.Status != 409 {
		t.Errorf("create twice: %d", res.Status)
	}
	res := ts.Root.Do("GET", "/v1/flux/apps/life?format=yaml", nil)
	if res.Status != 200 || string(res.Body) != src {
		t.Errorf("read back: %d %q", res.Status, res.Body)
	}
	var v flow.AppView
	ts.Root.Do("GET", "/v1/flux/apps/life", nil).JSON(&v)
	hook := v.Channels[0].WebhookURL
	if !v.Enabled || v.Version != 1 || !strings.Contains(hook, "/v1/flux/webhooks/") {
		t.Fatalf("view %+v", v)
	}

	// The incoming webhook needs no other credential; a wrong token is 404.
	path := hook[strings.Index(hook, "/v1/"):]
	if res := ts.Anon().Do("POST", path, map[string]any{"door": "open"}); res.Status != 202 {
		t.Fatalf("webhook: %d %s", res.Status, res.Body)
	}
	if res := ts.Anon().Do("POST", "/v1/flux/webhooks/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", map[string]any{}); res.Status != 404 {
		t.Errorf("wrong token: %d", res.Status)
	}
	waitFor(t, func() bool {
		var runs []flow.Run
		ts.Root.Do("GET", "/v1/flux/apps/life/runs?status=succeeded", nil).JSON(&runs)
		return len(runs) == 1 && runs[0].Source == "webhook"
	})

	if res := ts.Root.Do("POST", "/v1/flux/apps/life/disable", nil); res.Status != 200 {
		t.Fatalf("disable: %d", res.Status)
	}
	if res := ts.Root.Do("POST", "/v1/flux/apps/life/channels/in/messages", map[string]any{}); res.Status != 409 {
		t.Errorf("message to a disabled app: %d", res.Status)
	}
	// The file as stored says so too: applied again, it stays disabled.
	yml := ts.Root.Do("GET", "/v1/flux/apps/life?format=yaml", nil)
	if !strings.Contains(string(yml.Body), "\nenabled: false\n") {
		t.Errorf("YAML of a disabled app:\n%s", yml.Body)
	}
	if res := ts.Root.Do("PUT", "/v1/flux/apps/life", yml.Body, "Content-Type", "application/yaml"); res.Status != 200 {
		t.Fatalf("re-apply: %d %s", res.Status, res.Body)
	}
	if res := ts.Root.Do("POST", "/v1/flux/apps/life/channels/in/messages", map[string]any{}); res.Status != 409 {
		t.Errorf("message after re-applying the disabled app's file: %d", res.Status)
	}
	ts.Root.Do("POST", "/v1/flux/apps/life/enable", nil)
	if res := ts.Root.Do("POST", "/v1/flux/apps/life/channels/in/messages", map[string]any{"a": 1}); res.Status != 202 {
		t.Errorf("message: %d %s", res.Status, res.Body)
	}
	if res := ts.Root.Do("POST", "/v1/flux/apps/life/channels/nope/messages", map[string]any{}); res.Status != 404 {
		t.Errorf("unknown channel: %d", res.Status)
	}
	if res := ts.Root.Do("DELETE", "/v1/flux/apps/life", nil); res.Status != 204 {
		t.Errorf("delete: %d", res.Status)
	}
	if res := ts.Anon().Do("POST", path, map[string]any{}); res.Status != 404 {
		t.Errorf("webhook of a deleted app: %d", res.Status)
	}
	var list []flow.AppView
	ts.Root.Do("GET", "/v1/flux/apps", nil).JSON(&list)
	if len(list) != 0 {
		t.Errorf("apps after delete: %+v", list)
	}
	// Apps survive a restart.
	ts.Root.Do("POST", "/v1/flux/apps", src, "Content-Type", "application/yaml")
	ts.Restart()
	ts.Root.Do("GET", "/v1/flux/apps", nil).JSON(&list)
	if len(list) != 1 || list[0].Name != "life" {
		t.Errorf("apps after restart: %+v", list)
	}
}

func TestTimerFiresOncePerPeriod(t *testing.T) {
	ts := startFlow(t)
	apply(t, ts, `
name: tick
channels:
  t:
    sources:
      - timer: {interval: 1s, payload: {hello: world}}
    actions:
      - name: r
        republish: {}
`)
	time.Sleep(3500 * time.Millisecond)
	ts.Root.Do("POST", "/v1/flux/apps/tick/disable", nil)
	time.Sleep(1500 * time.Millisecond)
	var runs []flow.Run
	ts.Root.Do("GET", "/v1/flux/apps/tick/runs", nil).JSON(&runs)
	if len(runs) < 2 || len(runs) > 4 {
		t.Fatalf("%d runs in 3.5s of a 1s timer; want about 3", len(runs))
	}
	seen := map[int64]bool{}
	for _, r := range runs {
		if r.Source != "timer" {
			t.Errorf("source %q", r.Source)
		}
		sec := r.StartedAt / 1000
		if seen[sec] {
			t.Errorf("two firings in second %d", sec)
		}
		seen[sec] = true
	}
	var d flow.RunDetail
	ts.Root.Do("GET", "/v1/flux/apps/tick/runs/"+runs[0].RunID, nil).JSON(&d)
	if len(d.Trace) == 0 || !strings.Contains(string(d.Trace[0].Input), "world") {
		t.Errorf("timer payload missing: %+v", d.Trace)
	}
	// Disabled: no more firings.
	time.Sleep(1500 * time.Millisecond)
	var after []flow.Run
	ts.Root.Do("GET", "/v1/flux/apps/tick/runs", nil).JSON(&after)
	if len(after) != len(runs) {
		t.Errorf("timer fired while disabled: %d → %d runs", len(runs), len(after))
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDeviceSource(t *testing.T) {
	ts := startFlow(t)
	var g struct{ GroupID string }
	ts.Root.Do("POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}}).JSON(&g)
	var d struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string `json:"deviceSecret"`
	}
	ts.Root.Do("POST", "/v1/devices", map[string]any{}).JSON(&d)
	if res := ts.Root.Do("POST", "/v1/devices/"+d.DeviceID+"/set_group", map[string]string{"groupId": g.GroupID}); res.Status != 200 {
		t.Fatalf("set_group: %d %s", res.Status, res.Body)
	}
	apply(t, ts, `
name: devices
channels:
  one:
    sources:
      - device: {deviceId: `+d.DeviceID+`}
    actions:
      - name: a
        republish: {}
  group:
    sources:
      - device: {groupId: `+g.GroupID+`}
    actions:
      - name: b
        condition: payload.t > 20 && context.resource.resourceId == "`+d.DeviceID+`" && context.group.groupId == "`+g.GroupID+`"
        republish: {}
`)
	res := ts.Anon().Do("POST", "/v1/devices/"+d.DeviceID+"/publish", `{"t":21.5}`, "x-device-secret", d.DeviceSecret, "Content-Type", "application/json")
	if res.Status != 201 {
		t.Fatalf("publish: %d %s", res.Status, res.Body)
	}
	var runs []flow.Run
	waitFor(t, func() bool {
		ts.Root.Do("GET", "/v1/flux/apps/devices/runs?status=succeeded", nil).JSON(&runs)
		return len(runs) == 2
	})
	for _, r := range runs {
		var det flow.RunDetail
		ts.Root.Do("GET", "/v1/flux/apps/devices/runs/"+r.RunID, nil).JSON(&det)
		if r.Source != "device" || len(det.Trace) != 2 || det.Trace[1].Status != flow.StepSucceeded {
			t.Errorf("run %+v: %+v", r, det.Trace)
		}
	}
}

// Files events, including the loop a files action writing under its own
// source's prefix makes: the hop limit stops it.
func TestFilesSource(t *testing.T) {
	ts := startFlow(t)
	apply(t, ts, `
name: files
channels:
  uploads:
    sources:
      - files: {prefix: /in/, events: [created]}
    actions:
      - name: copy
        files: {path: "/out${payload.path}", content: {seen: "${payload.path}", url: "${payload.presignedUrls.get}"}}
  loop:
    sources:
      - files: {prefix: /loop/}
    actions:
      - name: again
        files: {path: "/loop/x", content: "${now()}"}
`)
	if res := ts.Root.Do("PUT", "/v1/files/private/in/a.txt", "hello", "Content-Type", "text/plain"); res.Status != 201 {
		t.Fatalf("put: %d %s", res.Status, res.Body)
	}
	waitFor(t, func() bool {
		return ts.Root.Do("GET", "/v1/files/private/out/in/a.txt", nil).Status == 302
	})
	res := ts.Root.Do("GET", "/v1/files/private/out/in/a.txt", nil)
	loc := res.Header.Get("Location")
	body := ts.Anon().Do("GET", loc[strings.Index(loc, "/_blob"):], nil)
	if !strings.Contains(string(body.Body), `"seen":"/in/a.txt"`) || !strings.Contains(string(body.Body), "/_blob") {
		t.Errorf("copied file = %s", body.Body)
	}
	// An update does not match events: [created].
	ts.Root.Do("PUT", "/v1/files/private/in/a.txt", "again", "Content-Type", "text/plain")

	ts.Root.Do("PUT", "/v1/files/private/loop/x", "start", "Content-Type", "text/plain")
	waitFor(t, func() bool {
		var runs []flow.Run
		ts.Root.Do("GET", "/v1/flux/apps/files/runs?status=failed", nil).JSON(&runs)
		return len(runs) == 1 && strings.Contains(runs[0].Error, "hop limit")
	})
	var runs []flow.Run
	ts.Root.Do("GET", "/v1/flux/apps/files/runs?limit=1000", nil).JSON(&runs)
	uploads := 0
	for _, r := range runs {
		if r.Channel == "uploads" {
			uploads++
		}
	}
	if uploads != 1 {
		t.Errorf("uploads runs = %d; want 1 (created only)", uploads)
	}
}

func TestCronTimerWithTimeZone(t *testing.T) {
	ts := startFlow(t)
	apply(t, ts, `
name: cron
channels:
  t:
    sources:
      - timer: {cron: "*/1 * * * * *", timezone: Asia/Tokyo}
    actions:
      - name: r
        condition: context.eventType == "schedule" && payload == nil
        republish: {}
`)
	waitFor(t, func() bool {
		var runs []flow.Run
		ts.Root.Do("GET", "/v1/flux/apps/cron/runs?status=succeeded", nil).JSON(&runs)
		return len(runs) >= 2
	})
	ts.Root.Do("DELETE", "/v1/flux/apps/cron", nil)
}

func TestMessageLimitsAndRetention(t *testing.T) {
	ts := startFlow(t)
	apply(t, ts, "name: lim\nchannels:\n  in:\n    actions:\n      - name: r\n        republish: {}\n      - name: bad\n        condition: payload.x\n        republish: {}\n")
	big := map[string]any{"x": strings.Repeat("a", 300<<10)}
	if res := ts.Root.Do("POST", "/v1/flux/apps/lim/channels/in/messages", big); res.Status != 413 || res.ErrorCode() != "LRG0001" {
		t.Errorf("oversized message: %d %s", res.Status, res.Body)
	}
	if res := ts.Root.Do("POST", "/v1/flux/apps/lim/channels/in/messages", "{not json", "Content-Type", "application/json"); res.Status != 400 {
		t.Errorf("bad JSON: %d", res.Status)
	}
	ok := testRun(t, ts, "lim", "in", map[string]any{"x": true})
	failed := testRun(t, ts, "lim", "in", map[string]any{"x": "not a boolean"})
	if ok.Status != flow.RunSucceeded || failed.Status != flow.RunFailed {
		t.Fatalf("runs: %s %s", ok.Status, failed.Status)
	}
	count := func() int {
		var runs []flow.Run
		ts.Root.Do("GET", "/v1/flux/apps/lim/runs", nil).JSON(&runs)
		return len(runs)
	}
	prune := func(after time.Duration) {
		ts.Flow.SetClock(func() time.Time { return time.Now().Add(after) })
		if _, err := ts.Flow.Prune(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	prune(24 * time.Hour)
	if n := count(); n != 2 {
		t.Errorf("after a day: %d runs; want 2", n)
	}
	prune(8 * 24 * time.Hour) // succeeded runs are kept 7 days
	if n := count(); n != 1 {
		t.Errorf("after 8 days: %d runs; want the failed one", n)
	}
	prune(31 * 24 * time.Hour) // failed ones 30
	if n := count(); n != 0 {
		t.Errorf("after 31 days: %d runs", n)
	}
	var d flow.RunDetail
	if res := ts.Root.Do("GET", "/v1/flux/apps/lim/runs/"+ok.RunID, nil); res.Status != 404 {
		t.Errorf("pruned run: %d %s", res.Status, res.Body)
	}
	_ = d
}

// onError: a step that failed for good sends {error, action, attempts,
// payload} on (transformed), and the run succeeds when the handler does;
// a handler that cannot be built leaves the run failed.
func TestOnError(t *testing.T) {
	ts := startFlow(t)
	apply(t, ts, `
name: guarded
channels:
  in:
    actions:
      - name: call
        retries: 1
        webhook: {url: "http://127.0.0.1:9/down", method: POST}
        onError:
          channel: sorry
          transform: {why: "${error}", who: "${payload.who}", raw: "${result}"}
      - name: broken
        condition: payload.who == "broken"
        webhook: {url: "http://127.0.0.1:9/down"}
        retries: 0
        onError: {channel: sorry, transform: "${int(payload.who)}"}
  sorry:
    actions:
      - name: note
        republish: {}
`)
	d := testRun(t, ts, "guarded", "in", map[string]any{"who": "aki"})
	if d.Status != flow.RunSucceeded {
		t.Fatalf("run %s: %s", d.Status, d.Error)
	}
	call := steps(d, "call")
	if len(call) != 2 || call[1].Status != flow.StepFailed || call[1].Emitted != 1 || !strings.Contains(call[1].Error, "connection refused") {
		t.Fatalf("call steps %+v", call)
	}
	note := steps(d, "note")
	var in struct {
		Why, Who string
		Raw      struct {
			Error, Action string
			Attempts      int
			Payload       map[string]any
		}
	}
	if len(note) != 1 || json.Unmarshal(note[0].Input, &in) != nil {
		t.Fatalf("note steps %+v", note)
	}
	if !strings.Contains(in.Why, "connection refused") || in.Who != "aki" || in.Raw.Action != "call" || in.Raw.Attempts != 2 || in.Raw.Payload["who"] != "aki" {
		t.Errorf("handler input %s", note[0].Input)
	}
	var v flow.AppView
	ts.Root.Do("GET", "/v1/flux/apps/guarded", nil).JSON(&v)
	if oe := v.Channels[0].Actions[0].OnError; oe == nil || oe.Channel != "sorry" {
		t.Errorf("app view onError %+v", oe)
	}

	d = testRun(t, ts, "guarded", "in", map[string]any{"who": "broken"})
	if d.Status != flow.RunFailed || !strings.Contains(d.Error, "broken") {
		t.Errorf("broken handler: run %s %q", d.Status, d.Error)
	}
	if b := steps(d, "broken"); len(b) != 1 || !strings.Contains(b[0].Error, "onError") {
		t.Errorf("broken steps %+v", b)
	}
}
