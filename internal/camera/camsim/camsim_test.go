package camsim_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
)

// shortClip makes a 2 s clip of the testsrc fixture: MPEG-TS through
// Transcode, or raw Annex-B H.264 without B-frames.
func shortClip(t *testing.T, raw bool) string {
	t.Helper()
	src := camtest.Fixture(t, camsim.KindTestsrc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !raw {
		out := filepath.Join(t.TempDir(), "clip.ts")
		if err := camsim.Transcode(ctx, src, out, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := filepath.Join(t.TempDir(), "clip.h264")
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-i", src, "-t", "2", "-c:v", "libx264", "-bf", "0", "-g", "10", "-pix_fmt", "yuv420p", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

// TestLoopTimestampsContinue plays a 2 s clip past its loop point and checks
// that media time keeps advancing by one frame per frame across the seam.
func TestLoopTimestampsContinue(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]bool{"mpegts": false, "annexb": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cam := camtest.Camera(t, camsim.Config{File: shortClip(t, raw)})
			s := rtsp.NewSession(cam.URL(), rtsp.Options{Timeout: 5 * time.Second, ReadTimeout: 2 * time.Second})
			frames, unsub := s.Subscribe(128)
			defer unsub()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			// With B-frames PTS is not monotonic in decode order, so sort the
			// presentation times: they must be one frame apart throughout,
			// including across the loop seam (the last few may still lack
			// their B-frames and are left out).
			const frameDur = 100 * time.Millisecond // 10 fps
			var pts []time.Duration
			for i := 0; i < 35; i++ { // > one loop of 20 frames
				var f rtsp.Frame
				select {
				case f = <-frames:
				case <-time.After(5 * time.Second):
					t.Fatalf("no frame %d", i)
				}
				if f.Gap {
					t.Fatalf("frame %d: gap", i)
				}
				pts = append(pts, f.PTS)
			}
			slices.Sort(pts)
			for i := 1; i < len(pts)-3; i++ {
				if step := pts[i] - pts[i-1]; step < frameDur-2*time.Millisecond || step > frameDur+2*time.Millisecond {
					t.Fatalf("PTS step %v between %v and %v, want %v (all: %v)", step, pts[i-1], pts[i], frameDur, pts)
				}
			}
		})
	}
}

func TestRestartAndCloseRelease(t *testing.T) {
	file := camtest.Fixture(t, camsim.KindTestsrc)
	base := runtime.NumGoroutine()
	cam, err := camsim.Start(camsim.Config{File: file, User: "u", Pass: "p", Methods: []string{"digest"}})
	if err != nil {
		t.Fatal(err)
	}
	url := cam.URL()
	if err := cam.Restart(); err != nil {
		t.Fatal(err)
	}
	if cam.URL() != url {
		t.Fatalf("URL changed over Restart: %s → %s", url, cam.URL())
	}
	k, err := rtsp.Grab(context.Background(), "rtsp://u:p@"+cam.Addr()+"/cam", rtsp.Options{Timeout: 5 * time.Second})
	if err != nil || k.Width != 320 {
		t.Fatalf("grab after restart: %v %v", k, err)
	}
	if err := cam.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cam.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cam.Restart(); err == nil {
		t.Fatal("Restart after Close must fail")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines %d > %d\n%s", runtime.NumGoroutine(), base+2, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]camsim.Config{
		"no file":      {},
		"missing file": {File: "/nonexistent.ts"},
		"not video":    {File: "camsim.go"},
		"bad codec":    {Codec: "VP9"},
		"bad method":   {Codec: "MJPEG", Methods: []string{"ntlm"}},
	} {
		if s, err := camsim.Start(cfg); err == nil {
			s.Close()
			t.Errorf("%s: no error", name)
		}
	}
}
