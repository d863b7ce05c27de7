package vision_test

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/servertest"
)

const photos = "../../../shared/testdata/vision/"

// startWithModels starts a server whose data directory already holds the
// offline models, so the test does not download the package per server.
func startWithModels(t *testing.T) *servertest.TS {
	t.Helper()
	return servertest.Start(t, servertest.WithVisionModels(t))
}

func photo(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(photos + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The offline analysis through the API and through a flow's ai action.
func TestAnalyzeOfflineThroughAPIAndFlow(t *testing.T) {
	ts := startWithModels(t)
	root := ts.Root

	var faces struct {
		FaceDetails []struct {
			Confidence float64
			Emotions   []struct {
				Type       string
				Confidence float64
			}
		}
	}
	res := root.Do("POST", "/v1/vision/analyze", map[string]any{"task": "faces",
		"image": map[string]any{"base64": base64.StdEncoding.EncodeToString(photo(t, "group-3.jpg"))}})
	if res.Status != 200 {
		t.Fatalf("faces: %d %s", res.Status, res.Body)
	}
	res.JSON(&faces)
	happy := 0
	for _, f := range faces.FaceDetails {
		if len(f.Emotions) > 0 && f.Emotions[0].Type == "HAPPY" {
			happy++
		}
	}
	if len(faces.FaceDetails) != 4 || happy < 3 {
		t.Errorf("group-3: %d faces, %d happy: %s", len(faces.FaceDetails), happy, res.Body)
	}

	// A photo in Harvest Files, counted by a flow (seed 000's ai step),
	// with the annotated copy stored for a dashboard.
	if r := root.Do("PUT", "/v1/files/private/cams/room.jpg", photo(t, "group-7.jpg"), "Content-Type", "image/jpeg"); r.Status != 201 {
		t.Fatalf("put: %d", r.Status)
	}
	app := `
name: count
channels:
  in:
    actions:
      - name: people
        timeout: 60s
        ai:
          task: people
          image: files:/cams/room.jpg
          capacity: 8
          annotate: /cams/room-annotated.jpg
        output: {channel: store, transform: {count: "${result.person_count}", level: "${result.crowding_level}"}}
  store:
    actions:
      - name: save
        harvest: {resourceType: SoraCam, resourceId: room}
`
	if r := root.Do("PUT", "/v1/flux/apps/count", app, "Content-Type", "application/yaml"); r.Status != 201 {
		t.Fatalf("apply: %d %s", r.Status, r.Body)
	}
	var d flow.RunDetail
	res = root.Do("POST", "/v1/flux/apps/count/channels/in/test?timeout=60", map[string]any{})
	res.JSON(&d)
	if d.Status != flow.RunSucceeded {
		t.Fatalf("run %s: %s", d.Status, res.Body)
	}
	var entries []struct{ Content string }
	root.Do("GET", "/v1/data/SoraCam/room", nil).JSON(&entries)
	if len(entries) != 1 || !strings.Contains(entries[0].Content, `"count":4`) || !strings.Contains(entries[0].Content, `"level":50`) {
		t.Errorf("stored: %+v", entries)
	}
	if r := root.Do("GET", "/v1/files/private/cams/room-annotated.jpg", nil); r.Status != 302 {
		t.Errorf("annotated copy: %d", r.Status)
	}

	// Bad input: clear 4xx.
	if r := root.Do("POST", "/v1/vision/analyze", map[string]any{"task": "faces", "image": map[string]any{"base64": "bm90IGFuIGltYWdl"}}); r.Status != 422 {
		t.Errorf("not an image: %d %s", r.Status, r.Body)
	}
	if r := root.Do("POST", "/v1/vision/analyze", map[string]any{"task": "dance", "image": "files:/cams/room.jpg"}); r.Status != 400 {
		t.Errorf("unknown task: %d %s", r.Status, r.Body)
	}
	if r := ts.Anon().Do("POST", "/v1/vision/analyze", map[string]any{"task": "faces"}); r.Status != 401 {
		t.Errorf("anonymous: %d", r.Status)
	}
}
