// Package camtest holds test helpers for the camera packages: cached video
// fixtures made with ffmpeg, a simulated camera bound to a test's lifetime,
// and a way to read back which fixture frame a picture shows.
//
// # Reading the frame number / time back
//
// The "testsrc" fixture is ffmpeg's testsrc2 at 10 fps for 10 s (100 frames,
// IDR every 10th). Frame i carries its time (00:00:0i.i00) and number i
// burned in at the top left, and every frame differs from the others (moving
// gradient, coloured squares), so a decoded picture identifies its frame:
//
//	idx, diff := camtest.MatchFrame(t, fixture, jpegBytes)
//	// idx is the frame shown (0…99), i.e. media time idx×100 ms into the loop;
//	// diff is the mean absolute luma difference (0–255): JPEG/H.264 noise
//	// keeps a right match well under 10, a wrong frame is typically > 20.
//
// MatchFrame decodes every frame of the fixture once (ffmpeg -f rawvideo
// -pix_fmt gray, cached per process) and compares the picture against each.
// To test "export at T returns the frame at T", note the camsim loop time at
// T (camsim plays the 10 s file in real time, so the expected index is
// (T − start of the playback) mod 10 s / 100 ms, ± one frame of latency) and
// compare with MatchFrame's idx. Equivalent by hand: extract the reference
// with `ffmpeg -ss <offset> -i fixture.ts -frames:v 1 ref.png` and compare
// pixels, or just OCR-free compare against Frames(t, fixture)[i].
package camtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
)

// Fixture returns the path of a small cached H.264 MPEG-TS file of the given
// kind ("testsrc" or "vtest", see camsim.KindTestsrc/KindVtest), producing it
// with ffmpeg under os.TempDir()/nagare-fixtures on first use. The test is
// skipped only when ffmpeg is not installed; any other failure fails it.
func Fixture(t testing.TB, kind string) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (apt-get install ffmpeg): camera fixtures need it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := camsim.Fixture(ctx, kind)
	if errors.Is(err, camsim.ErrNoFFmpeg) {
		t.Skip("ffmpeg not installed: camera fixtures need it")
	}
	if err != nil {
		t.Fatalf("camera fixture %q: %v", kind, err)
	}
	return p
}

// Camera starts a simulated camera (camsim.Start) and closes it when the
// test ends. cfg.File defaults to the "testsrc" fixture for H.264.
func Camera(t testing.TB, cfg camsim.Config) *camsim.Server {
	t.Helper()
	if cfg.File == "" && (cfg.Codec == "" || cfg.Codec == "H264") {
		cfg.File = Fixture(t, camsim.KindTestsrc)
	}
	s, err := camsim.Start(cfg)
	if err != nil {
		t.Fatalf("camsim: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var (
	framesMu    sync.Mutex
	framesCache = map[string][]*image.Gray{}
)

// Frames decodes every frame of a video file to grayscale, in display
// order (cached per file for the life of the test binary).
func Frames(t testing.TB, file string) []*image.Gray {
	t.Helper()
	framesMu.Lock()
	defer framesMu.Unlock()
	if f, ok := framesCache[file]; ok {
		return f
	}
	w, h := probeSize(t, file)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-i", file, "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("decode %s: %v: %s", file, err, stderr.String())
	}
	raw := out.Bytes()
	var frames []*image.Gray
	for len(raw) >= w*h {
		g := image.NewGray(image.Rect(0, 0, w, h))
		copy(g.Pix, raw[:w*h])
		frames = append(frames, g)
		raw = raw[w*h:]
	}
	framesCache[file] = frames
	return frames
}

func probeSize(t testing.TB, file string) (int, int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height", "-of", "csv=p=0:s=x", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var w, h int
	if _, err := fmt.Sscanf(string(bytes.TrimSpace(out)), "%dx%d", &w, &h); err != nil {
		t.Fatalf("ffprobe %s: %q: %v", file, out, err)
	}
	return w, h
}

// MatchFrame returns the index of the frame of file that the JPEG picture
// shows (smallest mean absolute luma difference) and that difference (0–255).
// The picture must have the fixture's dimensions.
func MatchFrame(t testing.TB, file string, jpegBytes []byte) (int, float64) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(jpegBytes))
	if err != nil {
		t.Fatalf("MatchFrame: %v", err)
	}
	frames := Frames(t, file)
	if len(frames) == 0 {
		t.Fatalf("MatchFrame: %s has no frames", file)
	}
	g := image.NewGray(img.Bounds())
	draw.Draw(g, g.Bounds(), img, img.Bounds().Min, draw.Src)
	if g.Bounds().Size() != frames[0].Bounds().Size() {
		t.Fatalf("MatchFrame: picture is %v, fixture frames are %v", g.Bounds().Size(), frames[0].Bounds().Size())
	}
	best, bestDiff := -1, 1e9
	for i, f := range frames {
		if d := meanAbsDiff(g.Pix, f.Pix); d < bestDiff {
			best, bestDiff = i, d
		}
	}
	return best, bestDiff
}

func meanAbsDiff(a, b []byte) float64 {
	var sum int64
	for i := range a {
		d := int64(a[i]) - int64(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return float64(sum) / float64(len(a))
}
