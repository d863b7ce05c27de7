package flow_test

import (
	"testing"

	"github.com/nagare-iot/nagare/internal/flow"
)

// The app view carries each action's definition (defaults applied,
// durations as text, secret-looking values masked), which the console's
// graph and side panel draw without parsing YAML.
func TestAppViewActions(t *testing.T) {
	ts := startFlow(t)
	apply(t, ts, `name: view
channels:
  in:
    sources:
      - timer: {interval: 90s, payload: {apiToken: abc}}
      - timer: {interval: 2h}
    actions:
      - name: poll
        condition: payload.n > 0
        timeout: 30s
        retries: 0
        webhook:
          url: http://127.0.0.1:1/x
          headers: {Authorization: Bearer xyz, X-Source: nagare}
        output: {channel: in, delay: 2s, forEach: true, transform: {n: "${payload.n - 1}", password: pw}}
      - name: wait
        delay: {duration: 5s}
`)
	var v flow.AppView
	ts.Root.Do("GET", "/v1/flux/apps/view", nil).JSON(&v)
	if len(v.Channels) != 1 || len(v.Channels[0].Actions) != 2 {
		t.Fatalf("view %+v", v)
	}
	src := v.Channels[0].Sources[0]
	if src["kind"] != "timer" || src["interval"] != "1m30s" || src["payload"].(map[string]any)["apiToken"] != "****" {
		t.Errorf("source %+v", src)
	}
	if s := v.Channels[0].Sources[1]; s["interval"] != "2h" {
		t.Errorf("second timer %+v", s)
	}
	poll := v.Channels[0].Actions[0]
	if poll.Kind != "webhook" || poll.Condition != "payload.n > 0" || poll.Timeout != "30s" || poll.Retries != 0 {
		t.Errorf("poll %+v", poll)
	}
	h := poll.Config["headers"].(map[string]any)
	if h["Authorization"] != "****" || h["X-Source"] != "nagare" || poll.Config["method"] != "POST" || poll.Config["url"] != "http://127.0.0.1:1/x" {
		t.Errorf("poll config %+v", poll.Config)
	}
	o := poll.Output
	if o == nil || o.Channel != "in" || o.Delay != "2s" || !o.ForEach || poll.OutputChannel != "in" {
		t.Fatalf("poll output %+v", o)
	}
	if tr := o.Transform.(map[string]any); tr["n"] != "${payload.n - 1}" || tr["password"] != "****" {
		t.Errorf("transform %+v", o.Transform)
	}
	wait := v.Channels[0].Actions[1]
	if wait.Config["duration"] != "5s" || wait.Timeout != "10s" || wait.Retries != 3 || wait.Output != nil {
		t.Errorf("wait %+v", wait)
	}
}
