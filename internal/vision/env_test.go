package vision

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/coretest"
	"github.com/nagare-iot/nagare/internal/credentials"
	"github.com/nagare-iot/nagare/internal/harvest"
)

// testEnv is the platform the service runs against in tests: a real
// database with auth and the credentials store, Harvest Files on a file
// blob store, and a real API router.
type testEnv struct {
	op    string
	creds *credentials.Service
	store *blob.Store
	files *harvest.Files
	rt    *api.Router
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	core := coretest.New(t, 32<<20)
	return &testEnv{op: core.OperatorID, creds: core.Creds, store: core.Blobs, files: core.Files, rt: core.Router}
}

// addCredential stores a credential through the Go API.
func (e *testEnv) addCredential(t *testing.T, id, typ string, values map[string]any) {
	t.Helper()
	if _, err := e.creds.Create(t.Context(), e.op, id, &credentials.Input{Type: typ, Credentials: values}); err != nil {
		t.Fatal(err)
	}
}

// testJPEG is a small real JPEG.
func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func testPNG(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// wantError checks a vision error's status, retryability and message.
func wantError(t *testing.T, err error, status int, retryable bool, msg ...string) *Error {
	t.Helper()
	var ve *Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *vision.Error", err, err)
	}
	if ve.Status != status || ve.Retryable != retryable {
		t.Fatalf("error %q: status %d retryable %v; want %d %v", ve, ve.Status, ve.Retryable, status, retryable)
	}
	for _, m := range msg {
		if !strings.Contains(ve.Error(), m) {
			t.Fatalf("error %q does not mention %q", ve, m)
		}
	}
	return ve
}
