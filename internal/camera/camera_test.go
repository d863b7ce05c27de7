package camera_test

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera"
	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/servertest"
)

func isJPEG(t *testing.T, b []byte) {
	t.Helper()
	if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("not a JPEG (%d bytes): %v", len(b), err)
	}
}

func TestRegistryAndSnapshots(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "testsrc"), User: "admin", Pass: "pw-123"})
	ts := servertest.Start(t)
	root := ts.Root

	// Credentials go to the credentials store, never into the URL.
	withCreds := strings.Replace(cam.URL(), "rtsp://", "rtsp://admin:pw-123@", 1)
	res := root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "CAM1", "rtspUrl": withCreds})
	if res.Status != 400 || strings.Contains(string(res.Body), "pw-123") {
		t.Fatalf("URL with credentials: %d %s", res.Status, res.Body)
	}
	res = root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "CAM1", "rtspUrl": cam.URL(), "credentialsId": "cam-login"})
	if res.Status != 400 || !strings.Contains(string(res.Body), "cam-login") {
		t.Fatalf("missing credential: %d %s", res.Status, res.Body)
	}
	if res := root.Do("POST", "/v1/credentials/cam-login", map[string]any{"type": "username-password-credentials",
		"credentials": map[string]string{"username": "admin", "password": "pw-123"}}); res.Status != 201 && res.Status != 200 {
		t.Fatalf("credential: %d %s", res.Status, res.Body)
	}
	res = root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "CAM1", "name": "Lobby", "rtspUrl": cam.URL(),
		"credentialsId": "cam-login", "snapshotCache": false})
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	if res := root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "CAM1", "rtspUrl": cam.URL()}); res.Status != 409 {
		t.Errorf("duplicate: %d", res.Status)
	}
	var list []camera.DeviceView
	root.Do("GET", "/v1/sora_cam/devices", nil).JSON(&list)
	if len(list) != 1 || list[0].DeviceID != "CAM1" || list[0].Name != "Lobby" || list[0].DeviceCategory != "Camera" || list[0].PowerState != "on" {
		t.Fatalf("list: %+v", list)
	}

	// Cold snapshot (no session): connect, wait for a keyframe, decode.
	res = root.Do("GET", "/v1/sora_cam/devices/CAM1/snapshot", nil)
	if res.Status != 200 || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("cold snapshot: %d %s", res.Status, res.Body)
	}
	isJPEG(t, res.Body)

	// Warm: with the snapshot cache on, a session keeps the latest keyframe.
	if res := root.Do("PUT", "/v1/sora_cam/devices/CAM1", map[string]any{"snapshotCache": true}); res.Status != 200 {
		t.Fatalf("update: %d %s", res.Status, res.Body)
	}
	waitFor(t, func() bool {
		var v camera.DeviceView
		root.Do("GET", "/v1/sora_cam/devices/CAM1", nil).JSON(&v)
		return v.Connected
	})
	res = root.Do("GET", "/v1/sora_cam/devices/CAM1/snapshot", nil)
	if res.Status != 200 {
		t.Fatalf("warm snapshot: %d %s", res.Status, res.Body)
	}
	isJPEG(t, res.Body)

	// A wrong password is a fast 403, and the password shows nowhere.
	root.Do("PUT", "/v1/credentials/cam-login", map[string]any{"type": "username-password-credentials",
		"credentials": map[string]string{"username": "admin", "password": "wrong-pw"}})
	root.Do("PUT", "/v1/sora_cam/devices/CAM1", map[string]any{"snapshotCache": false})
	res = root.Do("GET", "/v1/sora_cam/devices/CAM1/snapshot", nil)
	if res.Status != 403 || strings.Contains(string(res.Body), "wrong-pw") {
		t.Errorf("wrong password: %d %s", res.Status, res.Body)
	}

	if res := root.Do("DELETE", "/v1/sora_cam/devices/CAM1", nil); res.Status != 204 {
		t.Errorf("delete: %d", res.Status)
	}
	if res := root.Do("GET", "/v1/sora_cam/devices/CAM1", nil); res.Status != 404 {
		t.Errorf("after delete: %d", res.Status)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitExport polls an export until it leaves initializing/processing/retrying.
func waitExport(t *testing.T, c *servertest.Client, device, id string) camera.ExportInfo {
	t.Helper()
	var info camera.ExportInfo
	waitFor(t, func() bool {
		c.Do("GET", "/v1/sora_cam/devices/"+device+"/images/exports/"+id, nil).JSON(&info)
		return info.Status == camera.ExportCompleted || info.Status == camera.ExportFailed
	})
	return info
}

// The seed 000 export and poll loop, against a live camera (recording off:
// a moment within the live window is taken from the live picture).
func TestExportsLive(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "testsrc")})
	ts := servertest.Start(t)
	root := ts.Root
	root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "7CDDDEADBEEF", "rtspUrl": cam.URL()})

	now := time.Now().UnixMilli()
	var info camera.ExportInfo
	res := root.Do("POST", "/v1/sora_cam/devices/7CDDDEADBEEF/images/exports", map[string]any{"time": now,
		"harvestFiles": map[string]any{"pathPrefix": "/cams/{device_id}/{date}"}})
	if res.Status != 200 {
		t.Fatalf("export: %d %s", res.Status, res.Body)
	}
	res.JSON(&info)
	if info.Status != camera.ExportInitializing || info.ExportID == "" || info.DeviceID != "7CDDDEADBEEF" || info.URL != "" {
		t.Fatalf("initial export: %+v", info)
	}
	done := waitExport(t, root, "7CDDDEADBEEF", info.ExportID)
	if done.Status != camera.ExportCompleted || done.URL == "" || done.ExpiryTime-time.Now().UnixMilli() > 10*60_000 {
		t.Fatalf("completed export: %+v", done)
	}
	img := ts.Anon().Do("GET", done.URL[strings.Index(done.URL, "/_blob"):], nil)
	if img.Status != 200 {
		t.Fatalf("export URL: %d", img.Status)
	}
	isJPEG(t, img.Body)
	// Kept in Harvest Files too, under the expanded prefix.
	if !strings.HasPrefix(done.FilePath, "/cams/7CDDDEADBEEF/") || !strings.HasSuffix(done.FilePath, done.ExportID+".jpg") {
		t.Errorf("filePath %q", done.FilePath)
	}
	if res := root.Do("GET", "/v1/files/private"+done.FilePath, nil); res.Status != 302 {
		t.Errorf("file in Harvest Files: %d", res.Status)
	}

	// Bad requests and moments that cannot be exported.
	if res := root.Do("POST", "/v1/sora_cam/devices/7CDDDEADBEEF/images/exports", map[string]any{}); res.Status != 400 {
		t.Errorf("no time: %d", res.Status)
	}
	if res := root.Do("POST", "/v1/sora_cam/devices/NOPE/images/exports", map[string]any{"time": now}); res.Status != 404 {
		t.Errorf("unknown camera: %d", res.Status)
	}
	var old camera.ExportInfo
	root.Do("POST", "/v1/sora_cam/devices/7CDDDEADBEEF/images/exports", map[string]any{"time": now - 3600_000}).JSON(&old)
	if f := waitExport(t, root, "7CDDDEADBEEF", old.ExportID); f.Status != camera.ExportFailed || !strings.Contains(f.FailureReason, "recording is off") {
		t.Errorf("an hour ago without recording: %+v", f)
	}
	var future camera.ExportInfo
	root.Do("POST", "/v1/sora_cam/devices/7CDDDEADBEEF/images/exports", map[string]any{"time": now + 3600_000}).JSON(&future)
	if f := waitExport(t, root, "7CDDDEADBEEF", future.ExportID); f.Status != camera.ExportFailed || !strings.Contains(f.FailureReason, "future") {
		t.Errorf("an hour ahead: %+v", f)
	}

	var all []camera.ExportInfo
	res = root.Do("GET", "/v1/sora_cam/devices/images/exports?limit=2", nil)
	res.JSON(&all)
	if len(all) != 2 || res.Header.Get("x-soracom-next-key") == "" || all[0].RequestedTime < all[1].RequestedTime {
		t.Errorf("list page 1: %+v", all)
	}
	var rest []camera.ExportInfo
	root.Do("GET", "/v1/sora_cam/devices/7CDDDEADBEEF/images/exports?limit=10&last_evaluated_key="+res.Header.Get("x-soracom-next-key"), nil).JSON(&rest)
	if len(rest) != 1 {
		t.Errorf("list page 2: %+v", rest)
	}
}

// Seed 002: the three documented requests of the remote-command RTSP
// snapshot, as written apart from the base URL.
func TestDownlinkRTSP(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "vtest"), Path: "/live/stream", User: "user", Pass: "password123"})
	host, port, _ := net.SplitHostPort(cam.Addr())
	ts := servertest.Start(t)
	root := ts.Root
	if res := root.Do("POST", "/v1/sims", map[string]any{"simId": "8942310022000012345", "ipAddress": host}); res.Status != 201 {
		t.Fatalf("sim: %d %s", res.Status, res.Body)
	}
	if res := root.Do("POST", "/v1/credentials/credential-id", map[string]any{"type": "psk", "credentials": map[string]string{"key": "password123"}}); res.Status != 201 && res.Status != 200 {
		t.Fatalf("credential: %d %s", res.Status, res.Body)
	}
	p, _ := strconv.Atoi(port)
	basic := map[string]any{"type": "basic", "username": "user", "password": "password123"}
	stored := map[string]any{"type": "basic", "username": "user", "passwordCredentialsId": "credential-id"}
	path := "/v1/sims/8942310022000012345/downlink/rtsp"

	res := root.Do("POST", path, map[string]any{"command": "snapshot", "port": p, "path": "/live/stream", "authentication": basic})
	if res.Status != 200 || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("basic: %d %s", res.Status, res.Body)
	}
	isJPEG(t, res.Body)
	res = root.Do("POST", path, map[string]any{"command": "snapshot", "port": p, "path": "/live/stream", "authentication": stored})
	if res.Status != 200 {
		t.Fatalf("passwordCredentialsId: %d %s", res.Status, res.Body)
	}
	isJPEG(t, res.Body)
	res = root.Do("POST", path, map[string]any{"command": "snapshot", "port": p, "path": "/live/stream", "authentication": stored,
		"options": map[string]any{"destinations": map[string]any{"harvestFiles": map[string]any{"filePath": "/camera/snapshots/{sim_id}_{time}.jpg"}}}})
	var entry struct{ FilePath, ContentType string }
	if res.Status != 200 {
		t.Fatalf("harvestFiles: %d %s", res.Status, res.Body)
	}
	res.JSON(&entry)
	if !strings.HasPrefix(entry.FilePath, "/camera/snapshots/8942310022000012345_") || !strings.HasSuffix(entry.FilePath, ".jpg") || entry.ContentType != "image/jpeg" {
		t.Errorf("file entry: %s", res.Body)
	}

	for name, tc := range map[string]struct {
		body   map[string]any
		status int
	}{
		"wrong password":  {map[string]any{"command": "snapshot", "port": p, "path": "/live/stream", "authentication": map[string]any{"type": "basic", "username": "user", "password": "nope"}}, 403},
		"no credentials":  {map[string]any{"command": "snapshot", "port": p, "path": "/live/stream"}, 403},
		"bad command":     {map[string]any{"command": "reboot", "port": p}, 400},
		"bad port":        {map[string]any{"command": "snapshot", "port": 70000}, 400},
		"unknown field":   {map[string]any{"command": "snapshot", "bogus": 1}, 400},
		"missing cred id": {map[string]any{"command": "snapshot", "authentication": map[string]any{"type": "basic", "username": "u", "passwordCredentialsId": "nope"}}, 400},
	} {
		if res := root.Do("POST", path, tc.body); res.Status != tc.status {
			t.Errorf("%s: %d %s; want %d", name, res.Status, res.Body, tc.status)
		}
	}
	if res := root.Do("POST", "/v1/sims/nope/downlink/rtsp", map[string]any{"command": "snapshot"}); res.Status != 404 {
		t.Errorf("unknown SIM: %d", res.Status)
	}
	// Not H.264: 422.
	mj := camtest.Camera(t, camsim.Config{Codec: "MJPEG"})
	_, mport, _ := net.SplitHostPort(mj.Addr())
	mp, _ := strconv.Atoi(mport)
	if res := root.Do("POST", path, map[string]any{"command": "snapshot", "port": mp, "path": "/cam"}); res.Status != 422 {
		t.Errorf("MJPEG: %d %s", res.Status, res.Body)
	}
}

// The soracom driver: exports are made by an upstream SORACOM-compatible
// API (here a second nagare) and kept here.
func TestSoracomDriver(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "testsrc")})
	upstream := servertest.Start(t)
	upstream.Root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "UPCAM", "rtspUrl": cam.URL()})
	var key struct{ AuthKeyID, AuthKey string }
	upstream.Root.Do("POST", "/v1/operators/"+upstream.OperatorID+"/auth_keys", nil).JSON(&key)
	if key.AuthKey == "" {
		t.Fatal("no upstream auth key")
	}

	ts := servertest.Start(t, func(c *config.Config) {})
	ts.Root.Do("POST", "/v1/credentials/upstream-key", map[string]any{"type": "api-token-credentials", "credentials": map[string]string{"token": key.AuthKey}})
	res := ts.Root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "MYCAM", "driver": "soracom",
		"upstream": map[string]any{"endpoint": upstream.URL, "authKeyId": key.AuthKeyID, "authKeyCredentialsId": "upstream-key", "deviceId": "UPCAM"}})
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var info camera.ExportInfo
	ts.Root.Do("POST", "/v1/sora_cam/devices/MYCAM/images/exports", map[string]any{"time": time.Now().UnixMilli()}).JSON(&info)
	done := waitExport(t, ts.Root, "MYCAM", info.ExportID)
	if done.Status != camera.ExportCompleted {
		t.Fatalf("export: %+v", done)
	}
	img := ts.Anon().Do("GET", done.URL[strings.Index(done.URL, "/_blob"):], nil)
	isJPEG(t, img.Body)
	var ups []camera.ExportInfo
	upstream.Root.Do("GET", "/v1/sora_cam/devices/UPCAM/images/exports", nil).JSON(&ups)
	if len(ups) != 1 {
		t.Errorf("upstream exports: %+v", ups)
	}
	b, _ := json.Marshal(done)
	if strings.Contains(string(b), key.AuthKey) {
		t.Error("auth key leaked")
	}
}
