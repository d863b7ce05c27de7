package examples_test

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	gblob "gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/s3blob"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/servertest"
)

const (
	datalakeDevice    = "7CDDDEADBEEF"
	datalakeContainer = "soracam-images"
	// Azurite's well-known development account and key (published by
	// Microsoft for the emulator; not a secret).
	datalakeAzuriteAccount = "devstoreaccount1"
	datalakeAzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	datalakeS3Secret       = "datalake/S3/secret-access-key/0123456789"
)

// The seed's object path: YYYY/MM/DD/soracam_YYYYmmdd_HHMMSS_mmm.jpg.
var datalakeKeyRE = regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/soracam_\d{8}_\d{6}_\d{3}\.jpg$`)

// datalakeApp is examples/datalake-archive/app.yaml as it is, but for
// the store (url), the cron (every 2 s instead of every 5 min) and the
// time zone; without a credential, the credentials line is dropped.
func datalakeApp(t *testing.T, storeURL string, withCredential bool, cron, zone string) string {
	t.Helper()
	b, err := os.ReadFile("datalake-archive/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, r := range [][2]string{
		{"url: azblob://soracam-images\n", fmt.Sprintf("url: %q\n", storeURL)},
		{`cron: "0 */5 * * * *"`, fmt.Sprintf("cron: %q", cron)},
		{"timezone: UTC ", "timezone: " + zone + " "},
	} {
		if !strings.Contains(src, r[0]) {
			t.Fatalf("app.yaml has no %q any more; update the test", r[0])
		}
		src = strings.Replace(src, r[0], r[1], 1)
	}
	if !withCredential {
		src = strings.Replace(src, "          credentials: datalake-store\n", "", 1)
	}
	return src
}

// datalakeApply applies the app text (as applyFile does with a file).
func datalakeApply(t *testing.T, ts *servertest.TS, src string) *servertest.Response {
	t.Helper()
	return ts.Root.Do("PUT", "/v1/flux/apps/datalake-archive", src, "Content-Type", "application/yaml")
}

// datalakeServer starts nagare with the camera registered and the
// least-privilege SAM user the app calls the SoraCam API as.
func datalakeServer(t *testing.T, camURL string, mod ...func(*config.Config)) *servertest.TS {
	t.Helper()
	return datalakeServerWith(t, map[string]any{"deviceId": datalakeDevice, "rtspUrl": camURL}, nil, mod...)
}

// datalakeServerWith registers the camera as camera (a SoraCam device
// body), after prepare.
func datalakeServerWith(t *testing.T, camera map[string]any, prepare func(*servertest.TS), mod ...func(*config.Config)) *servertest.TS {
	t.Helper()
	ts := servertest.Start(t, mod...)
	if prepare != nil {
		prepare(ts)
	}
	if res := ts.Root.Do("POST", "/v1/sora_cam/devices", camera); res.Status != 201 && res.Status != 200 {
		t.Fatalf("camera: %d %s", res.Status, res.Body)
	}
	users := "/v1/operators/" + ts.OperatorID + "/users/datalake-bot"
	if res := ts.Root.Do("POST", users, map[string]any{}); res.Status != 201 && res.Status != 200 {
		t.Fatalf("user: %d %s", res.Status, res.Body)
	}
	// The seed's SAM permission (less OAuth2:authorize: no login here),
	// for the one camera, as the README sets it up.
	perm := `{"statements":[{"effect":"allow","api":["SoraCam:exportSoraCamDeviceRecordedImage","SoraCam:getSoraCamDeviceExportedImage"],` +
		`"condition":"pathVariable('device_id') == '` + datalakeDevice + `'"}]}`
	if res := ts.Root.Do("PUT", users+"/permission", map[string]any{"permission": perm}); res.Status != 200 {
		t.Fatalf("permission: %d %s", res.Status, res.Body)
	}
	return ts
}

func datalakeCredential(t *testing.T, ts *servertest.TS, typ string, vals map[string]any) {
	t.Helper()
	ts.Root.Do("DELETE", "/v1/credentials/datalake-store", nil)
	if res := ts.Root.Do("POST", "/v1/credentials/datalake-store", map[string]any{"type": typ, "credentials": vals}); res.Status != 201 {
		t.Fatalf("credential: %d %s", res.Status, res.Body)
	}
}

// datalakeAzurite starts Azurite's Blob service (web/node_modules, from
// `npm ci` in web/) on a free loopback port with a fresh directory, and
// returns its host:port with the container created. A missing Azurite
// fails the test: CI installs it.
func datalakeAzurite(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "web", "node_modules", ".bin", "azurite-blob"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Azurite is not installed (%s is missing): run `npm ci` in web/ (scripts/deps.sh and `make build` do); the Azure Blob test needs it", bin)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port), "--location", t.TempDir(),
		"--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry")
	var out datalakeLog
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Azurite (%s): %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("Azurite exited (%v): %s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("Azurite did not listen on %s within 60s: %s", addr, out.String())
		}
	}
	cc := datalakeAzureContainer(t, addr)
	if _, err := cc.Create(t.Context(), nil); err != nil {
		t.Fatalf("creating the container on Azurite: %v", err)
	}
	return addr
}

func datalakeAzureContainer(t *testing.T, addr string) *container.Client {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential(datalakeAzuriteAccount, datalakeAzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := container.NewClientWithSharedKeyCredential("http://"+addr+"/"+datalakeAzuriteAccount+"/"+datalakeContainer, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// datalakeLog collects a child process's output.
type datalakeLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *datalakeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *datalakeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// datalakeKeys lists a bucket's keys.
func datalakeKeys(t *testing.T, b *gblob.Bucket) []string {
	t.Helper()
	var keys []string
	it := b.List(nil)
	for {
		o, err := it.Next(t.Context())
		if err == io.EOF {
			return keys
		}
		if err != nil {
			t.Logf("list: %v", err)
			return keys
		}
		if strings.HasSuffix(o.Key, ".tmp") {
			continue // a local store's upload in progress (see docs/blob.md)
		}
		keys = append(keys, o.Key)
	}
}

// Seed 001 end to end: the example app, with its timer every 2 s, exports
// stills from a simulated camera playing real footage, polls the exports
// and archives the pictures in a local directory, in S3 (an in-process
// fake) and in Azure Blob Storage (Azurite), at the seed's path with the
// seed's metadata.
func TestDatalakeArchive(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "vtest")})
	start := time.Now()
	stores := []struct {
		name string
		zone string
		// setup returns the store URL for the app, the credential (type
		// and values; "" for none) and the store opened for reading.
		setup func(t *testing.T) (storeURL, credType string, cred map[string]any, read *gblob.Bucket)
	}{
		{"local files", "UTC", func(t *testing.T) (string, string, map[string]any, *gblob.Bucket) {
			root := t.TempDir()
			dir := filepath.Join(root, "datalake")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := fileblob.OpenBucket(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			return "file://" + dir, "", nil, b
		}},
		{"S3", "Asia/Tokyo", func(t *testing.T) (string, string, map[string]any, *gblob.Bucket) {
			backend := s3mem.New()
			if err := backend.CreateBucket(datalakeContainer); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(gofakes3.New(backend).Server())
			t.Cleanup(srv.Close)
			cl := s3.New(s3.Options{Region: "ap-northeast-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
				Credentials: awscreds.NewStaticCredentialsProvider("AKIADATALAKE", datalakeS3Secret, "")})
			b, err := s3blob.OpenBucket(t.Context(), cl, datalakeContainer, nil)
			if err != nil {
				t.Fatal(err)
			}
			return "s3://" + datalakeContainer + "?region=ap-northeast-1&endpoint=" + url.QueryEscape(srv.URL),
				"aws-credentials", map[string]any{"accessKeyId": "AKIADATALAKE", "secretAccessKey": datalakeS3Secret}, b
		}},
		{"Azure Blob (Azurite)", "UTC", func(t *testing.T) (string, string, map[string]any, *gblob.Bucket) {
			addr := datalakeAzurite(t)
			b, err := azureblob.OpenBucket(t.Context(), datalakeAzureContainer(t, addr), nil)
			if err != nil {
				t.Fatal(err)
			}
			return "azblob://" + datalakeContainer + "?protocol=http&domain=" + addr,
				"azure-storage", map[string]any{"accountName": datalakeAzuriteAccount, "accountKey": datalakeAzuriteKey}, b
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			storeURL, credType, cred, bucket := st.setup(t)
			defer bucket.Close()
			// file:// stores must be allowed by the server (blob-file-roots).
			ts := datalakeServer(t, cam.URL(), func(c *config.Config) { c.BlobFileRoots = strings.TrimPrefix(storeURL, "file://") })
			if credType != "" {
				datalakeCredential(t, ts, credType, cred)
			}
			if res := datalakeApply(t, ts, datalakeApp(t, storeURL, credType != "", "*/2 * * * * *", st.zone)); res.Status != 201 {
				t.Fatalf("apply: %d %s", res.Status, res.Body)
			}
			var keys []string
			waitFor(t, "two archived pictures", func() bool {
				keys = datalakeKeys(t, bucket)
				return len(keys) >= 2
			})
			if res := ts.Root.Do("POST", "/v1/flux/apps/datalake-archive/disable", nil); res.Status != 200 {
				t.Errorf("disable: %d %s", res.Status, res.Body)
			}
			zone, err := time.LoadLocation(st.zone)
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range keys {
				datalakeCheckObject(t, bucket, key, zone, start)
			}
			t.Logf("%s: %d pictures, e.g. %s", st.name, len(keys), keys[0])

			// The runs that archived them succeeded; the trace shows the
			// upload and never a secret. (An object is in the store a moment
			// before its step and run are recorded as done.)
			var runs []flow.Run
			archived := 0
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				archived = countArchived(t, ts, &runs, false)
				if archived >= len(keys) || time.Now().After(deadline) {
					break
				}
			}
			countArchived(t, ts, &runs, true)
			if archived < len(keys) {
				t.Errorf("%d succeeded archive steps in %d runs for %d pictures", archived, len(runs), len(keys))
			}
		})
	}
}

// countArchived counts the succeeded archive steps of the datalake app's
// runs; with check, it also fails the test on a failed run, a trace that
// holds a secret or an archive output without key and content type.
func countArchived(t *testing.T, ts *servertest.TS, runs *[]flow.Run, check bool) int {
	t.Helper()
	*runs = nil
	ts.Root.Do("GET", "/v1/flux/apps/datalake-archive/runs?limit=100", nil).JSON(runs)
	archived := 0
	for _, r := range *runs {
		if check && r.Status == flow.RunFailed {
			t.Errorf("run %s failed: %s", r.RunID, r.Error)
		}
		if r.Status != flow.RunSucceeded {
			continue
		}
		res := ts.Root.Do("GET", "/v1/flux/apps/datalake-archive/runs/"+r.RunID, nil)
		for _, secret := range []string{datalakeAzuriteKey, "Eby8vdM02", datalakeS3Secret} {
			if check && strings.Contains(string(res.Body), secret) {
				t.Errorf("run %s: the trace holds a secret", r.RunID)
			}
		}
		var d flow.RunDetail
		res.JSON(&d)
		for _, s := range d.Trace {
			if s.Action == "archive" && s.Status == flow.StepSucceeded {
				archived++
				if check && (!strings.Contains(string(s.Output), `"key":"`) || !strings.Contains(string(s.Output), `"contentType":"image/jpeg"`)) {
					t.Errorf("archive output %s", s.Output)
				}
			}
		}
	}
	return archived
}

// datalakeCheckObject checks one archived picture: the seed's path in
// the app's time zone, consistent with its capture time, a real JPEG, and
// the seed's metadata.
func datalakeCheckObject(t *testing.T, b *gblob.Bucket, key string, zone *time.Location, start time.Time) {
	t.Helper()
	ctx := t.Context()
	if !datalakeKeyRE.MatchString(key) {
		t.Errorf("key %q is not YYYY/MM/DD/soracam_YYYYmmdd_HHMMSS_mmm.jpg", key)
		return
	}
	a, err := b.Attributes(ctx, key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s is not a JPEG: %v", key, err)
	}
	// vtest is 768×576 footage.
	if img.Bounds().Dx() < 320 || img.Bounds().Dy() < 240 {
		t.Errorf("%s: a %v picture", key, img.Bounds())
	}
	m := a.Metadata
	if a.ContentType != "image/jpeg" || m["content_type"] != "image/jpeg" || m["device_id"] != datalakeDevice ||
		m["source"] != "soracom_api" || m["file_size"] != strconv.Itoa(len(data)) {
		t.Errorf("%s: content type %q, metadata %v (%d bytes)", key, a.ContentType, m, len(data))
	}
	captured, err := time.Parse("2006-01-02T15:04:05.000Z", m["capture_time"])
	if err != nil {
		t.Errorf("%s: capture_time %q: %v", key, m["capture_time"], err)
		return
	}
	at := captured.In(zone)
	if want := at.Format("2006/01/02/soracam_20060102_150405") + fmt.Sprintf("_%03d.jpg", at.Nanosecond()/1e6); key != want {
		t.Errorf("key %s; capture_time %s in %s gives %s", key, m["capture_time"], zone, want)
	}
	if captured.Before(start.Add(-time.Minute)) || captured.After(time.Now().Add(time.Minute)) {
		t.Errorf("%s: capture_time %s is not from this test", key, m["capture_time"])
	}
}

// Missing configuration and refusals are clear errors that name what is
// missing, and no secret ever reaches the run history.
func TestDatalakeArchiveErrors(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "vtest")})
	addr := datalakeAzurite(t)
	ts := datalakeServer(t, cam.URL())
	storeURL := "azblob://" + datalakeContainer + "?protocol=http&domain=" + addr
	app := datalakeApp(t, storeURL, true, "0 */5 * * * *", "UTC")

	// Applying without the credential: refused, naming it.
	res := datalakeApply(t, ts, app)
	if res.Status != 400 || !strings.Contains(string(res.Body), `credentials: no credential \"datalake-store\"`) {
		t.Fatalf("apply without the credential: %d %s", res.Status, res.Body)
	}

	// run starts the tick channel by hand and waits for the run.
	run := func(t *testing.T, payload map[string]any) (*flow.RunDetail, string) {
		t.Helper()
		res := ts.Root.Do("POST", "/v1/flux/apps/datalake-archive/channels/tick/test?timeout=120", payload)
		var d flow.RunDetail
		res.JSON(&d)
		if res.Status != 200 {
			t.Fatalf("test run: %d %s", res.Status, res.Body)
		}
		full := ts.Root.Do("GET", "/v1/flux/apps/datalake-archive/runs/"+d.RunID, nil)
		for _, secret := range []string{datalakeAzuriteKey, "Eby8vdM02", "V3JvbmdLZXk"} {
			if strings.Contains(string(full.Body), secret) {
				t.Errorf("the run's trace holds a secret (%s…)", secret[:6])
			}
		}
		return &d, string(full.Body)
	}
	wrongKey := "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=" // base64, not the account's
	datalakeCredential(t, ts, "azure-storage", map[string]any{"accountName": datalakeAzuriteAccount, "accountKey": wrongKey})
	if res := datalakeApply(t, ts, app); res.Status != 201 {
		t.Fatalf("apply: %d %s", res.Status, res.Body)
	}
	cfg := map[string]any{"deviceId": datalakeDevice, "timezone": "UTC"}

	t.Run("missing deviceId", func(t *testing.T) {
		d, _ := run(t, map[string]any{})
		if d.Status != flow.RunFailed || !strings.Contains(d.Error, "missing configuration: deviceId") {
			t.Errorf("run %s: %q", d.Status, d.Error)
		}
	})
	t.Run("wrong account key", func(t *testing.T) {
		d, _ := run(t, cfg)
		// Azure answers AuthenticationFailed, Azurite AuthorizationFailure.
		if d.Status != flow.RunFailed || !strings.Contains(d.Error, "403 Forbidden") || !strings.Contains(d.Error, "check the credential") {
			t.Errorf("run %s: %q", d.Status, d.Error)
		}
		t.Logf("error: %s", d.Error)
	})
	t.Run("credential deleted", func(t *testing.T) {
		ts.Root.Do("DELETE", "/v1/credentials/datalake-store", nil)
		d, _ := run(t, cfg)
		if d.Status != flow.RunFailed || !strings.Contains(d.Error, `credentials: "datalake-store" not found in the credentials store`) {
			t.Errorf("run %s: %q", d.Status, d.Error)
		}
	})
	t.Run("credential of another kind", func(t *testing.T) {
		datalakeCredential(t, ts, "aws-credentials", map[string]any{"accessKeyId": "AKIA", "secretAccessKey": "x/y"})
		d, _ := run(t, cfg)
		if d.Status != flow.RunFailed || !strings.Contains(d.Error, `"datalake-store" is of type aws-credentials; azure-storage is needed`) {
			t.Errorf("run %s: %q", d.Status, d.Error)
		}
	})
	t.Run("the right key", func(t *testing.T) {
		datalakeCredential(t, ts, "azure-storage", map[string]any{"accountName": datalakeAzuriteAccount, "accountKey": datalakeAzuriteKey})
		d, trace := run(t, cfg)
		if d.Status != flow.RunSucceeded {
			t.Fatalf("run %s: %q", d.Status, d.Error)
		}
		if !strings.Contains(trace, `"credentials":"datalake-store"`) {
			t.Errorf("the trace does not show the credential's ID: %s", trace)
		}
		b, err := azureblob.OpenBucket(t.Context(), datalakeAzureContainer(t, addr), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if keys := datalakeKeys(t, b); len(keys) != 1 {
			t.Errorf("keys %v", keys)
		}
	})
	t.Run("another camera", func(t *testing.T) {
		d, _ := run(t, map[string]any{"deviceId": "OTHERCAM"})
		if d.Status != flow.RunFailed || !strings.Contains(d.Error, "403") {
			t.Errorf("run %s: %q", d.Status, d.Error)
		}
	})
	t.Run("a camera that never answers", func(t *testing.T) {
		if res := ts.Root.Do("POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "DEADCAM", "rtspUrl": "rtsp://127.0.0.1:9/none", "snapshotCache": false}); res.Status != 201 && res.Status != 200 {
			t.Fatalf("camera: %d %s", res.Status, res.Body)
		}
		// The user may use this camera too.
		users := "/v1/operators/" + ts.OperatorID + "/users/datalake-bot/permission"
		perm := `{"statements":[{"effect":"allow","api":["SoraCam:exportSoraCamDeviceRecordedImage","SoraCam:getSoraCamDeviceExportedImage"]}]}`
		if res := ts.Root.Do("PUT", users, map[string]any{"permission": perm}); res.Status != 200 {
			t.Fatalf("permission: %d %s", res.Status, res.Body)
		}
		d, _ := run(t, map[string]any{"deviceId": "DEADCAM"})
		if d.Status != flow.RunFailed || !strings.Contains(d.Error, "of camera DEADCAM") ||
			!(strings.Contains(d.Error, "failed: ") || strings.Contains(d.Error, "was not completed after 10 tries")) {
			t.Errorf("run %s: %q", d.Status, d.Error)
		}
		t.Logf("error: %s", d.Error)
	})
}
