package flow_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/flow"
)

// Shadow changes start runs of the channels whose shadow source matches
// (thing, shadow, kind of change), with the documents as the message; an
// app that updates the shadow it listens to is stopped by the hop limit.
func TestShadowSource(t *testing.T) {
	out := newSink(t)
	ts := startFlow(t)
	apply(t, ts, `
name: board
channels:
  changes:
    sources:
      - shadow: {thingName: alice}
    actions:
      - name: notify
        webhook:
          url: `+out.srv.URL+`/hook
          body: {change: "${context.change}", shadow: "${context.shadowName}", version: "${context.version}",
                 now: "${payload.current.state.desired.state}", was: "${payload.previous.state.desired.state}",
                 asked: "${payload.state}"}
  deletes:
    sources:
      - shadow: {shadowName: dnd, events: [deleted]}
    actions:
      - name: gone
        webhook: {url: `+out.srv.URL+`/gone, body: {thing: "${payload.thingName}", current: "${payload.current}"}}
  loop:
    sources:
      - shadow: {thingName: looper}
    actions:
      - name: again
        shadow: {thingName: looper, reported: {n: "${context.version}"}}
`)
	ts.Root.Do("POST", "/v1/things/alice/shadow", `{"state":{"desired":{"state":"calling"}}}`)
	ts.Root.Do("POST", "/v1/things/bob/shadow", `{"state":{"desired":{"state":"calling"}}}`) // not alice
	ts.Root.Do("POST", "/v1/things/alice/shadow", `{"state":{"desired":{"state":"running"}}}`)
	ts.Root.Do("POST", "/v1/things/alice/shadow?name=dnd", `{"state":{"reported":{"on":true}}}`)
	ts.Root.Do("DELETE", "/v1/things/alice/shadow?name=dnd", nil)
	waitFor(t, func() bool { return len(out.got()) >= 5 })

	var hooks []string
	for _, b := range out.got() {
		j, _ := json.Marshal(b)
		hooks = append(hooks, string(j))
	}
	all := strings.Join(hooks, "\n")
	for _, want := range []string{
		`{"asked":{"desired":{"state":"calling"}},"change":"updated","now":"calling","shadow":"","version":1,"was":null}`,
		`{"asked":{"desired":{"state":"running"}},"change":"updated","now":"running","shadow":"","version":2,"was":"calling"}`,
		`{"asked":{"reported":{"on":true}},"change":"updated","now":null,"shadow":"dnd","version":1,"was":null}`,
		`{"asked":null,"change":"deleted","now":null,"shadow":"dnd","version":1,"was":null}`,
		`{"current":null,"thing":"alice"}`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no webhook %s in\n%s", want, all)
		}
	}
	if len(hooks) != 5 {
		t.Errorf("%d webhooks; want 5:\n%s", len(hooks), all)
	}

	// Runs started by shadow changes are recorded with their source.
	var runs []flow.Run
	ts.Root.Do("GET", "/v1/flux/apps/board/runs?limit=100", nil).JSON(&runs)
	for _, r := range runs {
		if r.Source != "shadow" {
			t.Errorf("run %s has source %q", r.RunID, r.Source)
		}
	}

	ts.Root.Do("POST", "/v1/things/looper/shadow", `{"state":{"reported":{"n":0}}}`)
	waitFor(t, func() bool {
		var runs []flow.Run
		ts.Root.Do("GET", "/v1/flux/apps/board/runs?status=failed", nil).JSON(&runs)
		return len(runs) == 1 && strings.Contains(runs[0].Error, "hop limit")
	})
	res := ts.Root.Do("GET", "/v1/things/looper/shadow", nil)
	var doc struct{ Version int }
	res.JSON(&doc)
	if doc.Version < 100 || doc.Version > 103 {
		t.Errorf("looper version %d; the loop should stop after about 100 hops", doc.Version)
	}
}

func TestShadowSourceValidation(t *testing.T) {
	for src, want := range map[string]string{
		`{thingName: "a b", shadowName: "x.y"}`: `thingName "a b" is not a thing name`,
		`{shadowName: "x.y"}`:                   `shadowName "x.y" is not a shadow name`,
		`{events: [created]}`:                   `"created" is not one of updated, deleted`,
	} {
		_, err := flow.Parse("a.yaml", []byte("name: a\nchannels:\n  c:\n    sources:\n      - shadow: "+src+"\n"), flow.Lookup{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v; want %s", src, err, want)
		}
	}
}
