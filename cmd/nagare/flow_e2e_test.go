package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/store/storetest"
	"github.com/nagare-iot/nagare/internal/testaddr"
)

// TestFlowSurvivesKill9: devices publish into a three-action flow (the
// last one a webhook to a slow sink); nagare is killed with SIGKILL in
// the middle and restarted. Every accepted event still completes, and any
// repeat delivery to the (non-idempotent) webhook is noted in the run
// history.
func TestFlowSurvivesKill9(t *testing.T) {
	var mu sync.Mutex
	got := map[float64]int{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		b, _ := io.ReadAll(r.Body)
		var v struct{ I float64 }
		_ = json.Unmarshal(b, &v)
		mu.Lock()
		got[v.I]++
		mu.Unlock()
	}))
	defer sink.Close()

	data := t.TempDir()
	addr := testaddr.Loopback(t)
	db := storetest.DSN(t)
	env := []string{"NAGARE_FLOW_ACK_WAIT=2s", "NAGARE_FLOW_RETRY_BACKOFF=50ms"}
	p := start(t, data, addr, db, env...)
	var key struct{ AuthKeyID, AuthKey string }
	b, _ := os.ReadFile(filepath.Join(data, "root-auth-key.json"))
	_ = json.Unmarshal(b, &key)
	a := login(t, addr, key.AuthKeyID, key.AuthKey)

	var g struct{ GroupID string }
	a.must(201, "POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}}, &g)
	var d struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string `json:"deviceSecret"`
	}
	a.must(201, "POST", "/v1/devices", map[string]any{"groupId": g.GroupID}, &d)
	a.must(200, "POST", "/v1/devices/"+d.DeviceID+"/set_group", map[string]string{"groupId": g.GroupID}, nil)

	app := `name: pipeline
channels:
  in:
    sources:
      - device: {groupId: ` + g.GroupID + `}
    actions:
      - name: enrich
        republish: {}
        output: {channel: wait, transform: {i: "${payload.i}", device: "${context.resource.resourceId}"}}
  wait:
    actions:
      - name: pause
        delay: {duration: 1s}
        output: {channel: out}
  out:
    actions:
      - name: deliver
        webhook: {url: "` + sink.URL + `/in", body: {i: "${payload.i}", device: "${payload.device}"}}
`
	a.must(201, "PUT", "/v1/flux/apps/pipeline", app, nil, "Content-Type", "application/yaml")

	// Publish steadily; half-way, kill -9 and restart, then publish the
	// rest. At the kill, events are in every stage: delivered, waiting in
	// the delay, mid-webhook, not yet fanned out.
	const n = 40
	dev := &api{t: t, base: a.base}
	before := 0
	for i := 0; i < n; i++ {
		if i == n/2 {
			p.kill()
			mu.Lock()
			before = len(got)
			mu.Unlock()
			p = start(t, data, addr, db, env...)
			a = login(t, addr, key.AuthKeyID, key.AuthKey)
		}
		dev.must(201, "POST", "/v1/devices/"+d.DeviceID+"/publish", fmt.Sprintf(`{"i":%d}`, i), nil,
			"x-device-secret", d.DeviceSecret, "Content-Type", "application/json")
		time.Sleep(60 * time.Millisecond)
	}

	deadline := time.Now().Add(60 * time.Second)
	var runs []struct{ RunID, Status string }
	for {
		a.must(200, "GET", "/v1/flux/apps/pipeline/runs?limit=1000", nil, &runs)
		done := 0
		for _, r := range runs {
			if r.Status == "succeeded" {
				done++
			}
		}
		if len(runs) == n && done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGKILL: %d runs, %d succeeded; want %d (%d delivered before the kill)\n%s", len(runs), done, n, before, p.errs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	repeats := 0
	for i := 0; i < n; i++ {
		switch c := got[float64(i)]; {
		case c == 0:
			t.Errorf("event %d never delivered", i)
		case c > 1:
			repeats += c - 1
		}
	}
	notes := 0
	for _, r := range runs {
		var detail struct{ Trace []struct{ Note string } }
		a.must(200, "GET", "/v1/flux/apps/pipeline/runs/"+r.RunID, nil, &detail)
		for _, s := range detail.Trace {
			if strings.Contains(s.Note, "twice") {
				notes++
			}
		}
	}
	if repeats > notes {
		t.Errorf("%d repeated deliveries but only %d noted in the run history", repeats, notes)
	}
	t.Logf("delivered before kill: %d/%d; repeats after restart: %d (noted: %d)", before, n, repeats, notes)
	p.stop()
}
