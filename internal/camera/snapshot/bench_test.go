package snapshot_test

// Snapshot latency, side by side with the ffmpeg CLI on the same stream:
//
//	go test -run '^$' -bench Snapshot -benchtime 20x ./internal/camera/snapshot/
//
// The stream is camsim looping the vtest fixture (real footage, 640x480,
// 10 fps, IDR every 1 s), so cold figures include waiting for the next IDR
// (uniform in [0, 1 s)): before each cold iteration the benchmark sleeps a
// random fraction of the GOP with the timer stopped, so that back-to-back
// iterations do not all connect right after an IDR.

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
	"github.com/nagare-iot/nagare/internal/camera/snapshot"
)

func benchCamera(b *testing.B) *camsim.Server {
	b.Helper()
	return camtest.Camera(b, camsim.Config{File: camtest.Fixture(b, camsim.KindVtest)})
}

var benchOpts = rtsp.Options{Timeout: 6 * time.Second, ReadTimeout: 2 * time.Second,
	Logger: slog.New(slog.DiscardHandler)}

// randomPhase sleeps up to one GOP (1 s) with the timer stopped.
func randomPhase(b *testing.B) {
	b.StopTimer()
	time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
	b.StartTimer()
}

// BenchmarkColdSnapshot: connect, wait for an IDR, decode to JPEG (the
// default decoder of this build).
func BenchmarkColdSnapshot(b *testing.B) {
	cam := benchCamera(b)
	dec := snapshot.Default()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		randomPhase(b)
		k, err := rtsp.Grab(ctx, cam.URL(), benchOpts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dec.JPEG(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarmSnapshot: a running Session; decode its cached keyframe.
func BenchmarkWarmSnapshot(b *testing.B) {
	for _, tc := range []struct {
		name string
		dec  snapshot.Decoder
	}{
		{"keyframe", snapshot.Default()},
		{"latest-picture-ffmpeg", &snapshot.FFmpeg{AllAUs: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cam := benchCamera(b)
			s := rtsp.NewSession(cam.URL(), benchOpts)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			defer wcancel()
			if _, err := s.WaitKeyframe(wctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tc.dec.JPEG(ctx, s.Latest()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFFmpegCLISnapshot: what a user would run instead.
func BenchmarkFFmpegCLISnapshot(b *testing.B) {
	cam := benchCamera(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		randomPhase(b)
		cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
			"-rtsp_transport", "tcp", "-i", cam.URL(),
			"-frames:v", "1", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1")
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil || out.Len() == 0 {
			b.Fatalf("ffmpeg: %v: %s", err, stderr.String())
		}
	}
}

// BenchmarkDecode: keyframe → JPEG only, per decoder of this build.
func BenchmarkDecode(b *testing.B) {
	k, _ := grab(b, camsim.KindVtest)
	for name, dec := range decoders() {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := dec.JPEG(context.Background(), k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
