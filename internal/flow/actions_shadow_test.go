package flow_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/flow"
)

// The call button of seed 003: a flow sets the person's shadow to
// calling; the accepted document is the action's result, and a version
// mismatch fails the step at once (409 is not retried).
func TestShadowAction(t *testing.T) {
	ts := startFlow(t)
	apply(t, ts, `
name: call
channels:
  press:
    actions:
      - name: calling
        condition: payload.clear != true && payload.dnd == nil
        shadow:
          thingName: "${payload.person}"
          desired: {state: calling, by: "${payload.button}", count: "${payload.n}"}
          clientToken: "call-${payload.button}"
      - name: dnd
        condition: payload.dnd != nil
        shadow: {thingName: "${payload.person}", shadowName: dnd, reported: {on: "${payload.dnd}"}, version: "${payload.v}"}
      - name: clear
        condition: payload.clear == true
        shadow: {thingName: "${payload.person}", desired: null}
`)
	d := testRun(t, ts, "call", "press", map[string]any{"person": "alice", "button": "b1", "n": 2})
	if d.Status != flow.RunSucceeded {
		t.Fatalf("run: %s %s %+v", d.Status, d.Error, d.Trace)
	}
	var out struct {
		State       map[string]map[string]any
		Version     int
		ClientToken string
	}
	json.Unmarshal(steps(d, "calling")[0].Output, &out)
	if out.Version != 1 || out.ClientToken != "call-b1" || out.State["desired"]["state"] != "calling" || out.State["desired"]["count"] != 2.0 {
		t.Fatalf("output: %s", steps(d, "calling")[0].Output)
	}
	res := ts.Root.Do("GET", "/v1/things/alice/shadow", nil)
	if res.Status != 200 || !strings.Contains(string(res.Body), `"desired":{"by":"b1","count":2,"state":"calling"}`) {
		t.Fatalf("shadow: %d %s", res.Status, res.Body)
	}

	// Optimistic locking from a flow: version 0 matches a new shadow, then
	// fails permanently on the second run.
	if d := testRun(t, ts, "call", "press", map[string]any{"person": "bob", "dnd": true, "v": 0}); d.Status != flow.RunSucceeded {
		t.Fatalf("dnd run: %s %s", d.Status, d.Error)
	}
	d = testRun(t, ts, "call", "press", map[string]any{"person": "bob", "dnd": false, "v": 0})
	st := steps(d, "dnd")
	if d.Status != flow.RunFailed || len(st) != 1 || !strings.Contains(st[0].Error, "409") || !strings.Contains(st[0].Error, "Version conflict") {
		t.Fatalf("conflict run: %s %s %+v", d.Status, d.Error, st)
	}

	d = testRun(t, ts, "call", "press", map[string]any{"person": "alice", "button": "b2", "clear": true})
	if d.Status != flow.RunSucceeded {
		t.Fatalf("clear run: %s %s", d.Status, d.Error)
	}
	res = ts.Root.Do("GET", "/v1/things/alice/shadow", nil)
	if res.Status != 200 || strings.Contains(string(res.Body), "desired") || !strings.Contains(string(res.Body), `"version":2`) {
		t.Fatalf("after clearing desired: %s", res.Body)
	}

	d = testRun(t, ts, "call", "press", map[string]any{"person": "not a name"})
	if st := steps(d, "calling"); d.Status != flow.RunFailed || len(st) != 1 || !strings.Contains(st[0].Error, "Invalid thing name") {
		t.Fatalf("bad name run: %s %+v", d.Status, st)
	}
}

func TestShadowActionValidation(t *testing.T) {
	_, err := flow.Parse("a.yaml", []byte(`
name: a
channels:
  c:
    actions:
      - name: s
        shadow: {thingName: x}
`), flow.Lookup{})
	if err == nil || !strings.Contains(err.Error(), "needs desired or reported") {
		t.Fatalf("err = %v", err)
	}
}
