// Integration tests of keyed timers on the real embedded NATS: a newer
// timer with the same key replaces the pending one, the timer action
// cancels one, and pending timers survive a restart.
package flow_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/flow"
)

const timersApp = `
name: timers
channels:
  press:
    actions:
      - name: arm
        republish: {}
        output:
          channel: idle
          delay: 2s
          key: "idle-${payload.staff}"
          transform: {staff: "${payload.staff}", n: "${payload.n}"}
  stop:
    actions:
      - name: disarm
        timer: {cancel: "idle-${payload.staff}"}
  idle:
    actions:
      - name: back
        condition: context.eventType == "timer" && startsWith(context.key, "idle-")
        webhook: {url: "SINK/idle"}
`

// fired lists the payloads the idle channel got, as staff/n strings.
func fired(s *sink) []string {
	var out []string
	for _, b := range s.got() {
		out = append(out, b["staff"].(string)+"/"+jsonOf(b["n"]))
	}
	return out
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestKeyedTimers(t *testing.T) {
	out := newSink(t)
	ts := startFlow(t)
	apply(t, ts, strings.ReplaceAll(timersApp, "SINK", out.srv.URL))

	press := func(staff string, n int) {
		t.Helper()
		d := testRun(t, ts, "timers", "press", map[string]any{"staff": staff, "n": n})
		// The run that arms a timer is done: the timer is a run of its own.
		if d.Status != flow.RunSucceeded || len(steps(d, "arm")) != 1 || steps(d, "arm")[0].Emitted != 1 {
			t.Fatalf("press %s/%d: %s %+v", staff, n, d.Status, d.Trace)
		}
	}
	press("a", 1)
	press("b", 1)
	press("a", 2) // replaces a/1
	d := testRun(t, ts, "timers", "stop", map[string]any{"staff": "b"})
	if st := steps(d, "disarm"); d.Status != flow.RunSucceeded || len(st) != 1 || !strings.Contains(string(st[0].Output), `"cancelled":1`) {
		t.Fatalf("cancel b: %s %+v", d.Status, d.Trace)
	}
	// Cancelling again finds nothing; it is not an error.
	d = testRun(t, ts, "timers", "stop", map[string]any{"staff": "b"})
	if st := steps(d, "disarm"); len(st) != 1 || !strings.Contains(string(st[0].Output), `"cancelled":0`) {
		t.Fatalf("cancel b again: %+v", d.Trace)
	}

	waitFor(t, func() bool { return len(out.got()) >= 1 })
	time.Sleep(3 * time.Second) // a/1 (replaced) and b/1 (cancelled) were due by now
	if got := fired(out); len(got) != 1 || got[0] != "a/2" {
		t.Fatalf("fired %v; want only a/2", got)
	}
	// The firing is a run of its own, from source timer.
	var runs []flow.Run
	ts.Root.Do("GET", "/v1/flux/apps/timers/runs?limit=100", nil).JSON(&runs)
	timerRuns := 0
	for _, r := range runs {
		if r.Source == "timer" {
			timerRuns++
			if r.Channel != "idle" || r.Status != flow.RunSucceeded {
				t.Errorf("timer run %+v", r)
			}
		}
		if r.Status == flow.RunRunning {
			t.Errorf("run %s still running: a replaced or cancelled timer must not hold a run open", r.RunID)
		}
	}
	if timerRuns != 1 {
		t.Errorf("%d timer runs; want 1", timerRuns)
	}

	// Across a restart: armed, replaced and cancelled before the stop,
	// due after the start. Only the latest fires, once.
	press("c", 1)
	press("c", 2)
	press("e", 1)
	testRun(t, ts, "timers", "stop", map[string]any{"staff": "e"})
	ts.Restart()
	waitFor(t, func() bool { return len(out.got()) >= 2 })
	time.Sleep(3 * time.Second)
	if got := fired(out); len(got) != 2 || got[1] != "c/2" {
		t.Fatalf("fired %v; want a/2, c/2", got)
	}

	// The view shows the key.
	var v flow.AppView
	ts.Root.Do("GET", "/v1/flux/apps/timers", nil).JSON(&v)
	if o := v.Channels[0].Actions[0].Output; o == nil || o.Key != "idle-${payload.staff}" {
		t.Errorf("view output %+v", o)
	}

	// Deleting the app drops its pending timers: an app created again
	// under the name does not get them.
	press("f", 1)
	ts.Root.Do("DELETE", "/v1/flux/apps/timers", nil)
	apply(t, ts, strings.ReplaceAll(timersApp, "SINK", out.srv.URL))
	time.Sleep(3500 * time.Millisecond)
	if got := fired(out); len(got) != 2 {
		t.Fatalf("fired %v after the app was deleted", got)
	}
}

func TestKeyedTimerValidation(t *testing.T) {
	cases := []struct{ name, action, want string }{
		{"no delay", `republish: {}
        output: {channel: b, key: k}`, "key needs a delay"},
		{"forEach", `republish: {}
        output: {channel: b, key: k, delay: 1s, forEach: true}`, "key and forEach"},
		{"a delay action is a delay", `delay: {duration: 5s}
        output: {channel: b, key: "k-${payload.id}"}`, ""},
		{"bad key template", `republish: {}
        output: {channel: b, key: "${payload.", delay: 1s}`, "unterminated"},
		{"cancel needs a key", `timer: {}`, `timer needs "cancel"`},
		{"cancel a channel", `timer: {cancel: "k", channel: nope}`, `unknown channel "nope"`},
		{"cancel ok", `timer: {cancel: "k-${payload.id}", channel: b}`, ""},
	}
	for _, c := range cases {
		src := "name: v\nchannels:\n  a:\n    actions:\n      - name: x\n        " + c.action + "\n  b: {}\n"
		_, err := flow.Parse("v.yaml", []byte(src), flow.Lookup{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v; want %q", c.name, err, c.want)
		}
	}
}

const delayedApp = `
name: later
channels:
  press:
    actions:
      - name: wait
        republish: {}
        output: {channel: done, delay: 2s}
  done:
    actions:
      - name: hit
        webhook: {url: "SINK/done"}
`

// An unkeyed delayed output belongs to the app that made it: an update of
// the app keeps it, but once the app is deleted, an app created again
// under the same name does not run it.
func TestDelayedOutputOfDeletedApp(t *testing.T) {
	out := newSink(t)
	ts := startFlow(t)
	app := strings.ReplaceAll(delayedApp, "SINK", out.srv.URL)
	apply(t, ts, app)
	send := func(n int) {
		t.Helper()
		if res := ts.Root.Do("POST", "/v1/flux/apps/later/channels/press/messages", map[string]any{"n": n}); res.Status/100 != 2 {
			t.Fatalf("send %d: %d %s", n, res.Status, res.Body)
		}
	}
	ns := func() []string {
		var got []string
		for _, b := range out.got() {
			got = append(got, jsonOf(b["n"]))
		}
		return got
	}
	// Updated while the output waits: it still runs.
	send(1)
	time.Sleep(500 * time.Millisecond)
	apply(t, ts, strings.Replace(app, "name: hit", "name: hit2", 1))
	waitFor(t, func() bool { return len(out.got()) >= 1 })

	// Deleted and created again while the output waits: it does not run.
	send(2)
	time.Sleep(500 * time.Millisecond)
	if res := ts.Root.Do("DELETE", "/v1/flux/apps/later", nil); res.Status != 204 {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	apply(t, ts, app)
	time.Sleep(3 * time.Second) // n=2 was due by now
	send(3)
	waitFor(t, func() bool { return len(out.got()) >= 2 })
	time.Sleep(500 * time.Millisecond)
	if got := ns(); len(got) != 2 || got[0] != "1" || got[1] != "3" {
		t.Fatalf("the sink got n = %v; want 1 (kept across an update) and 3 (the new app's own), not 2 (the deleted app's)", got)
	}
}
