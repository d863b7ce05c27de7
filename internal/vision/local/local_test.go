package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/vision"
	"github.com/nagare-iot/nagare/internal/vision/models"
	"github.com/nagare-iot/nagare/internal/vision/tfjs/tfjstest"
)

// photoDir holds the real test photographs (see its README).
var photoDir = filepath.Join("..", "..", "..", "..", "shared", "testdata", "vision")

func photo(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(photoDir, name))
	if err != nil {
		t.Skipf("test photo missing: %v", err)
	}
	return b
}

var (
	provOnce sync.Once
	prov     *Provider
	provErr  error
)

func provider(t testing.TB) *Provider {
	t.Helper()
	fsys := tfjstest.Models(t)
	provOnce.Do(func() { prov, provErr = New(fsys, Options{}) })
	if provErr != nil {
		t.Fatal(provErr)
	}
	return prov
}

// TestPeopleCounts: person counts within ±20 % of the README's counts.
func TestPeopleCounts(t *testing.T) {
	p := provider(t)
	cases := []struct {
		file string
		want int
	}{
		{"group-7.jpg", 4},
		{"group-5.jpg", 8},
		{"group-1.jpg", 17},
		{"solvay1927.jpg", 29},
	}
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.file, ".jpg"), func(t *testing.T) {
			res, err := p.Analyze(context.Background(), &vision.Request{Task: vision.TaskPeople, Image: photo(t, tc.file), Capacity: 20})
			if err != nil {
				t.Fatal(err)
			}
			n := res["person_count"].(int)
			t.Logf("%s: %d people (README: %d)", tc.file, n, tc.want)
			if math.Abs(float64(n-tc.want)) > 0.2*float64(tc.want) {
				t.Errorf("%s: %d people, want %d ±20%%", tc.file, n, tc.want)
			}
			if boxes := res["boxes"].([]any); len(boxes) != n {
				t.Errorf("%d boxes for %d people", len(boxes), n)
			}
			if cl := res["crowding_level"]; cl != vision.CrowdingLevel(n, 20) {
				t.Errorf("crowding_level = %v", cl)
			}
		})
	}
}

// TestOneFacePerPortrait: exactly one face on each single-face portrait.
func TestOneFacePerPortrait(t *testing.T) {
	p := provider(t)
	files := []string{"ai-face.jpg"}
	for i := 1; i <= 8; i++ {
		files = append(files, fmt.Sprintf("stock-emotions-a-%d.jpg", i))
	}
	for _, f := range files {
		faces, err := p.Faces(context.Background(), photo(t, f), 0)
		if err != nil {
			t.Fatal(err)
		}
		var desc []string
		for _, fc := range faces {
			desc = append(desc, fmt.Sprintf("%.0f%% at %.2f,%.2f %.2fx%.2f %s %.0f%%", fc.Confidence, fc.Left, fc.Top, fc.Width, fc.Height, fc.TopEmotion(), fc.Emotions[0].Confidence))
		}
		t.Logf("%s: %d face(s) %v", f, len(faces), desc)
		if len(faces) != 1 {
			t.Errorf("%s: %d faces, want 1", f, len(faces))
		}
	}
}

// TestGroup3Happy: group-3.jpg shows 4 women; three smile clearly (1st,
// 2nd and 4th from the left), the 3rd pouts. HAPPY must be the top
// emotion of each of the three smiling faces.
func TestGroup3Happy(t *testing.T) {
	p := provider(t)
	res, err := p.Analyze(context.Background(), &vision.Request{Task: vision.TaskFaces, Image: photo(t, "group-3.jpg")})
	if err != nil {
		t.Fatal(err)
	}
	details := res["FaceDetails"].([]any)
	if len(details) != 4 {
		t.Fatalf("%d faces, want 4", len(details))
	}
	// Left to right.
	sort.Slice(details, func(i, j int) bool {
		return details[i].(map[string]any)["BoundingBox"].(map[string]any)["Left"].(float64) <
			details[j].(map[string]any)["BoundingBox"].(map[string]any)["Left"].(float64)
	})
	happy := 0
	for i, d := range details {
		m := d.(map[string]any)
		bb := m["BoundingBox"].(map[string]any)
		emos := m["Emotions"].([]any)
		if len(emos) != 8 {
			t.Fatalf("%d emotions", len(emos))
		}
		var list []string
		for _, e := range emos[:3] {
			e := e.(map[string]any)
			list = append(list, fmt.Sprintf("%s %.1f", e["Type"], e["Confidence"]))
		}
		t.Logf("face %d from the left (left %.2f, confidence %.0f%%): %s", i+1, bb["Left"], m["Confidence"], strings.Join(list, ", "))
		top := emos[0].(map[string]any)["Type"]
		if top == "HAPPY" {
			happy++
		}
		if i != 2 && top != "HAPPY" {
			t.Errorf("smiling face %d from the left: top emotion %s, want HAPPY", i+1, top)
		}
	}
	if happy < 3 {
		t.Errorf("HAPPY is the top emotion on %d faces, want at least 3", happy)
	}
}

func TestAnalyzeContract(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	if p.Name() != "local" {
		t.Fatal(p.Name())
	}
	var ve *vision.Error
	if _, err := p.Analyze(ctx, &vision.Request{Task: vision.TaskPrompt, Image: photo(t, "ai-face.jpg"), Prompt: "hi"}); !errors.As(err, &ve) || ve.Status != 400 || !strings.Contains(ve.Message, "does not support") {
		t.Fatalf("prompt task: %v", err)
	}
	if _, err := p.Analyze(ctx, &vision.Request{Task: vision.TaskFaces, Image: []byte("nope")}); !errors.As(err, &ve) || ve.Code != vision.CodeBadImage {
		t.Fatalf("bad image: %v", err)
	}
	if _, err := p.Analyze(ctx, &vision.Request{Task: vision.TaskPeople, Image: photo(t, "ai-face.jpg"), Options: map[string]any{"tiling": "sometimes"}}); !errors.As(err, &ve) || ve.Status != 400 {
		t.Fatalf("bad tiling: %v", err)
	}

	// ROI: the left half of group-7 holds fewer people than the whole;
	// no capacity → no crowding_level.
	img := photo(t, "group-7.jpg")
	all, err := p.Analyze(ctx, &vision.Request{Task: vision.TaskPeople, Image: img})
	if err != nil {
		t.Fatal(err)
	}
	left, err := p.Analyze(ctx, &vision.Request{Task: vision.TaskPeople, Image: img, ROI: &vision.Rect{Left: 0, Top: 0, Width: 0.5, Height: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all["crowding_level"]; ok {
		t.Fatal("crowding_level without capacity")
	}
	nAll, nLeft := all["person_count"].(int), left["person_count"].(int)
	t.Logf("group-7: %d people, %d in the left half", nAll, nLeft)
	if nLeft >= nAll || nLeft == 0 {
		t.Fatalf("ROI count %d of %d", nLeft, nAll)
	}
	for _, b := range left["boxes"].([]any) {
		m := b.(map[string]any)
		if cx := m["Left"].(float64) + m["Width"].(float64)/2; cx > 0.5 {
			t.Fatalf("box centre %.2f outside the ROI", cx)
		}
	}
	// Annotation of a result.
	out, ct, err := AnnotateResult(img, all)
	if err != nil || ct != "image/jpeg" {
		t.Fatal(err)
	}
	if _, err := jpeg.Decode(bytes.NewReader(out)); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentAnalyze runs both tasks at once on one provider (the race
// detector checks the shared models).
func TestConcurrentAnalyze(t *testing.T) {
	p := provider(t)
	img := photo(t, "ai-face.jpg")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		task := vision.TaskFaces
		if i%2 == 1 {
			task = vision.TaskPeople
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Analyze(context.Background(), &vision.Request{Task: task, Image: img}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// frame1080p letterboxes a photo into a 1920×1080 JPEG (a camera frame).
func frame1080p(b testing.TB, name string) []byte {
	im, err := decodeImage(photo(b, name))
	if err != nil {
		b.Fatal(err)
	}
	// Fit the photo into 1920×1080, centred on black.
	scale := math.Min(1920/float64(im.W), 1080/float64(im.H))
	w, h := int(float64(im.W)*scale), int(float64(im.H)*scale)
	px := im.resample(window{W: im.W, H: im.H}, w, h, [3]float32{})
	dst := image.NewRGBA(image.Rect(0, 0, 1920, 1080))
	x0, y0 := (1920-w)/2, (1080-h)/2
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := dst.PixOffset(x0+x, y0+y)
			dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2], dst.Pix[o+3] = uint8(px[3*(y*w+x)]), uint8(px[3*(y*w+x)+1]), uint8(px[3*(y*w+x)+2]), 255
		}
	}
	for i := 3; i < len(dst.Pix); i += 4 {
		dst.Pix[i] = 255
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func benchTask(b *testing.B, task string, opts map[string]any) {
	p := provider(b)
	img := frame1080p(b, "group-1.jpg")
	ctx := context.Background()
	res, err := p.Analyze(ctx, &vision.Request{Task: task, Image: img, Options: opts})
	if err != nil {
		b.Fatal(err)
	}
	if task == vision.TaskPeople {
		b.Logf("1080p frame: %v people", res["person_count"])
	} else {
		b.Logf("1080p frame: %d faces", len(res["FaceDetails"].([]any)))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Analyze(ctx, &vision.Request{Task: task, Image: img, Options: opts}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkPeople1080p: people task (JPEG decode, NanoDet, tiling as in
// production: this frame is tiled, so 5 NanoDet runs) on a 1920×1080 JPEG
// of group-1.jpg.
func BenchmarkPeople1080p(b *testing.B) { benchTask(b, vision.TaskPeople, nil) }

// BenchmarkPeople1080pNoTiling: the same with one NanoDet run.
func BenchmarkPeople1080pNoTiling(b *testing.B) {
	benchTask(b, vision.TaskPeople, map[string]any{"tiling": TilingOff})
}

// BenchmarkFaces1080p: faces task (JPEG decode, BlazeFace, one emotion run
// for all faces) on the same frame.
func BenchmarkFaces1080p(b *testing.B) { benchTask(b, vision.TaskFaces, nil) }

func TestLazy(t *testing.T) {
	ctx := context.Background()
	// Not installed, fetching not allowed: a retryable error naming the fix.
	l := NewLazy(t.TempDir(), "", false, Options{})
	var ve *vision.Error
	if _, err := l.Analyze(ctx, &vision.Request{Task: vision.TaskFaces, Image: photo(t, "ai-face.jpg")}); !errors.As(err, &ve) || !ve.Retryable || !strings.Contains(err.Error(), "models fetch") {
		t.Fatalf("missing models: %v", err)
	}
	if _, err := l.Analyze(ctx, &vision.Request{Task: vision.TaskPrompt, Prompt: "x"}); !errors.As(err, &ve) || ve.Status != 400 {
		t.Fatalf("prompt: %v", err)
	}
	// Installed: loads on first use.
	data := t.TempDir()
	dir := models.Dir(data)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := tfjstest.Models(t)
	for name := range models.Files {
		b, err := fs.ReadFile(src, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l = NewLazy(data, "", false, Options{})
	res, err := l.Analyze(ctx, &vision.Request{Task: vision.TaskFaces, Image: photo(t, "ai-face.jpg")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res["FaceDetails"].([]any)); n != 1 || l.Name() != "local" {
		t.Fatalf("%d faces", n)
	}
}

// A caller with a short deadline does not cancel the first-use download:
// it gets a retryable "still installing" at its deadline while the load
// goes on; the load's own failure reaches the callers after it.
func TestLazyLoadOutlivesCaller(t *testing.T) {
	release := make(chan struct{})
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		http.NotFound(w, r)
	}))
	defer reg.Close()
	l := NewLazy(t.TempDir(), reg.URL, true, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var ve *vision.Error
	_, err := l.Provider(ctx)
	if !errors.As(err, &ve) || ve.Status != http.StatusServiceUnavailable || !ve.Retryable {
		t.Fatalf("short deadline: %v", err)
	}
	close(release) // the registry answers 404 from now on
	_, err = l.Provider(context.Background())
	if !errors.As(err, &ve) || ve.Status != http.StatusBadGateway || !strings.Contains(err.Error(), "404") {
		t.Fatalf("after the load failed: %v", err)
	}
}
