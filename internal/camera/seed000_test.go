package camera_test

import (
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/servertest"
)

// Seed 000's loop with the real parts: a flow exports a still from a
// camera with the api action (as a permission-checked SAM user), polls the
// export in a loop until it is completed, and stores its URL in Harvest.
func TestSeed000ExportLoopInAFlow(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "vtest")})
	ts := servertest.Start(t)
	root := ts.Root
	root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "7CDDDEADBEEF", "rtspUrl": cam.URL()})
	users := "/v1/operators/" + ts.OperatorID + "/users/flow-bot"
	if res := root.Do("POST", users, map[string]any{}); res.Status != 201 && res.Status != 200 {
		t.Fatalf("user: %d %s", res.Status, res.Body)
	}
	perm := `{"statements":[{"effect":"allow","api":["SoraCam:exportSoraCamDeviceRecordedImage","SoraCam:getSoraCamDeviceExportedImage"]}]}`
	if res := root.Do("PUT", users+"/permission", map[string]any{"permission": perm}); res.Status != 200 {
		t.Fatalf("permission: %d %s", res.Status, res.Body)
	}
	app := `
name: crowding
channels:
  tick:
    actions:
      - name: export
        api:
          operation: SoraCam:exportSoraCamDeviceRecordedImage
          user: flow-bot
          path: {device_id: 7CDDDEADBEEF}
          body: {time: "${now()}"}
        output: {channel: poll}
  poll:
    actions:
      - name: check
        condition: payload.status != "completed"
        api:
          operation: SoraCam:getSoraCamDeviceExportedImage
          user: flow-bot
          path: {device_id: "${payload.deviceId}", export_id: "${payload.exportId}"}
        output: {channel: poll, delay: 1s}
      - name: store
        condition: payload.status == "completed"
        harvest:
          resourceType: SoraCam
          resourceId: ${payload.deviceId}
          data: {url: "${payload.url}", exportId: "${payload.exportId}"}
`
	if res := root.Do("PUT", "/v1/flux/apps/crowding", app, "Content-Type", "application/yaml"); res.Status != 201 {
		t.Fatalf("apply: %d %s", res.Status, res.Body)
	}
	res := root.Do("POST", "/v1/flux/apps/crowding/channels/tick/test?timeout=25", map[string]any{})
	var d flow.RunDetail
	res.JSON(&d)
	if res.Status != 200 || d.Status != flow.RunSucceeded {
		t.Fatalf("run %d %s: %s", res.Status, d.Status, res.Body)
	}
	checks := 0
	for _, s := range d.Trace {
		if s.Action == "check" && s.Status == flow.StepSucceeded {
			checks++
		}
	}
	if checks < 1 {
		t.Errorf("the poll loop never ran: %s", res.Body)
	}
	var entries []struct{ Content string }
	root.Do("GET", "/v1/data/SoraCam/7CDDDEADBEEF", nil).JSON(&entries)
	if len(entries) != 1 || !strings.Contains(entries[0].Content, "/_blob?") {
		t.Fatalf("harvest entries: %+v", entries)
	}

	// Without the permission the api action fails with the API's 403.
	root.Do("PUT", users+"/permission", map[string]any{"permission": `{"statements":[{"effect":"allow","api":["Flux:*"]}]}`})
	res = root.Do("POST", "/v1/flux/apps/crowding/channels/tick/test?timeout=25", map[string]any{})
	res.JSON(&d)
	if d.Status != flow.RunFailed || !strings.Contains(d.Error, "403") {
		t.Errorf("without permission: %s %q", d.Status, d.Error)
	}
}
