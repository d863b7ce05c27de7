package examples_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocloud.dev/blob/fileblob"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/servertest"
)

// Seed 001 as the seed runs it: the SoraCam lives at SORACOM. Here the
// camera uses the soracom driver, so every export is made by an upstream
// SORACOM-compatible API — a second nagare with the real camera, since
// SORACOM's cloud cannot be reached from a test — and the example app runs
// unchanged against it.
func TestDatalakeThroughSoracomDriver(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "vtest")})
	upstream := servertest.Start(t)
	if res := upstream.Root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "7CDDDE000001", "rtspUrl": cam.URL()}); res.Status != 201 {
		t.Fatalf("upstream camera: %d %s", res.Status, res.Body)
	}
	var key struct{ AuthKeyID, AuthKey string }
	upstream.Root.Do("POST", "/v1/operators/"+upstream.OperatorID+"/auth_keys", nil).JSON(&key)
	if key.AuthKey == "" {
		t.Fatal("no upstream auth key")
	}

	lake := filepath.Join(t.TempDir(), "lake")
	if err := os.MkdirAll(lake, 0o755); err != nil {
		t.Fatal(err)
	}
	ts := datalakeServerWith(t, map[string]any{"deviceId": datalakeDevice, "driver": "soracom", "upstream": map[string]any{
		"endpoint": upstream.URL, "authKeyId": key.AuthKeyID, "authKeyCredentialsId": "soracom-key", "deviceId": "7CDDDE000001"}},
		func(ts *servertest.TS) {
			if res := ts.Root.Do("POST", "/v1/credentials/soracom-key", map[string]any{"type": "api-token-credentials",
				"credentials": map[string]string{"token": key.AuthKey}}); res.Status != 201 {
				t.Fatalf("credential: %d %s", res.Status, res.Body)
			}
		},
		func(c *config.Config) { c.BlobFileRoots = lake })
	start := time.Now()
	if res := datalakeApply(t, ts, datalakeApp(t, "file://"+lake, false, "*/2 * * * * *", "UTC")); res.Status != 201 {
		t.Fatalf("apply: %d %s", res.Status, res.Body)
	}
	bucket, err := fileblob.OpenBucket(lake, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	var keys []string
	waitFor(t, "an archived picture", func() bool {
		keys = datalakeKeys(t, bucket)
		return len(keys) >= 1
	})
	ts.Root.Do("POST", "/v1/flux/apps/datalake-archive/disable", nil)
	for _, k := range keys {
		datalakeCheckObject(t, bucket, k, time.UTC, start)
	}
	// Every picture came through the upstream API.
	var ups []map[string]any
	upstream.Root.Do("GET", "/v1/sora_cam/devices/7CDDDE000001/images/exports", nil).JSON(&ups)
	if len(ups) < len(keys) {
		t.Errorf("%d upstream exports for %d pictures", len(ups), len(keys))
	}
	t.Logf("%d pictures through the soracom driver, e.g. %s", len(keys), keys[0])
}
