package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
	"github.com/nagare-iot/nagare/internal/camera/snapshot"
)

var rtspOpts = rtsp.Options{Timeout: 6 * time.Second, ReadTimeout: 2 * time.Second}

func grab(t testing.TB, kind string) (*rtsp.Keyframe, string) {
	t.Helper()
	file := camtest.Fixture(t, kind)
	cam := camtest.Camera(t, camsim.Config{File: file})
	k, err := rtsp.Grab(context.Background(), cam.URL(), rtspOpts)
	if err != nil {
		t.Fatal(err)
	}
	return k, file
}

func decodeJPEG(t testing.TB, b []byte, w, h int) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a JPEG: %v", err)
	}
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Fatalf("JPEG is %v, want %dx%d", got, w, h)
	}
}

// decoders are the implementations in this build (LibAV only with -tags libav).
func decoders() map[string]snapshot.Decoder {
	m := map[string]snapshot.Decoder{"ffmpeg": &snapshot.FFmpeg{}}
	if _, isFFmpeg := snapshot.Default().(*snapshot.FFmpeg); !isFFmpeg {
		m["default"] = snapshot.Default()
	}
	return m
}

func TestJPEGFromGrabbedKeyframe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind string
		w, h int
	}{{camsim.KindTestsrc, 320, 240}, {camsim.KindVtest, 640, 480}} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			k, file := grab(t, tc.kind)
			for name, dec := range decoders() {
				b, err := dec.JPEG(context.Background(), k)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				decodeJPEG(t, b, tc.w, tc.h)
				if tc.kind == camsim.KindTestsrc {
					// the picture is an IDR of the fixture: frames 0, 10, 20, …
					idx, diff := camtest.MatchFrame(t, file, b)
					if idx%10 != 0 || diff > 10 {
						t.Fatalf("%s: picture matches frame %d (diff %.1f), want an IDR frame", name, idx, diff)
					}
				}
			}
		})
	}
}

func TestJPEGOfLatestPicture(t *testing.T) {
	t.Parallel()
	file := camtest.Fixture(t, camsim.KindTestsrc)
	cam := camtest.Camera(t, camsim.Config{File: file})
	s := rtsp.NewSession(cam.URL(), rtspOpts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	var k *rtsp.Keyframe
	deadline := time.Now().Add(5 * time.Second)
	for {
		k = s.Latest()
		if k != nil && len(k.AUs) >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no GOP with 5 AUs")
		}
		time.Sleep(20 * time.Millisecond)
	}
	idrJPEG, err := (&snapshot.FFmpeg{}).JPEG(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	latestJPEG, err := (&snapshot.FFmpeg{AllAUs: true}).JPEG(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	decodeJPEG(t, latestJPEG, 320, 240)
	idr, _ := camtest.MatchFrame(t, file, idrJPEG)
	latest, diff := camtest.MatchFrame(t, file, latestJPEG)
	// the newest picture is later in the GOP than its IDR (and within it)
	if latest <= idr || latest > idr+len(k.AUs) || diff > 10 {
		t.Fatalf("latest picture is frame %d (diff %.1f), IDR %d, %d AUs", latest, diff, idr, len(k.AUs))
	}
}

func TestFFmpegErrors(t *testing.T) {
	t.Parallel()
	camtest.Fixture(t, camsim.KindTestsrc) // skips without ffmpeg
	ctx := context.Background()
	if _, err := (&snapshot.FFmpeg{}).JPEG(ctx, nil); !errors.Is(err, snapshot.ErrNoPicture) {
		t.Fatalf("nil keyframe: %v", err)
	}
	garbage := &rtsp.Keyframe{Codec: "H264", SPS: []byte{0x67, 0xff, 0xff}, PPS: []byte{0x68, 0xff}, AUs: [][][]byte{{{0x65, 1, 2, 3, 4, 5}}}}
	_, err := (&snapshot.FFmpeg{}).JPEG(ctx, garbage)
	if err == nil || !strings.Contains(err.Error(), "ffmpeg") {
		t.Fatalf("garbage: %v", err)
	}
	_, err = (&snapshot.FFmpeg{Path: "/nonexistent/ffmpeg"}).JPEG(ctx, garbage)
	if err == nil {
		t.Fatal("missing binary: no error")
	}
	k, _ := grab(t, camsim.KindTestsrc)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (&snapshot.FFmpeg{}).JPEG(canceled, k); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}
