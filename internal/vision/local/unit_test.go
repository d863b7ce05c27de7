package local

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"testing"

	"github.com/nagare-iot/nagare/internal/vision"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestLetterboxMapping(t *testing.T) {
	// Wide frame: padded above and below.
	win := letterbox(image.Rect(0, 0, 200, 100))
	if win != (window{X0: 0, Y0: -50, W: 200, H: 200}) {
		t.Fatalf("letterbox = %+v", win)
	}
	x, y := win.toFrame(208, 104, 416, 416)
	if !near(x, 100, 1e-9) || !near(y, 0, 1e-9) {
		t.Fatalf("toFrame(208,104) = %v,%v, want 100,0", x, y)
	}
	x, y = win.toFrame(416, 312, 416, 416)
	if !near(x, 200, 1e-9) || !near(y, 100, 1e-9) {
		t.Fatalf("toFrame(416,312) = %v,%v, want 200,100", x, y)
	}
	// Tall region inside a frame (a tile): padded left and right.
	win = letterbox(image.Rect(100, 40, 160, 160))
	if win != (window{X0: 70, Y0: 40, W: 120, H: 120}) {
		t.Fatalf("letterbox tile = %+v", win)
	}

	// End to end: a white square drawn in the frame shows up where the
	// mapping says in the model input, and maps back onto itself.
	im := &rgbImage{W: 300, H: 100, Pix: make([]uint8, 3*300*100)}
	for y := 40; y < 60; y++ {
		for x := 200; x < 230; x++ {
			copy(im.Pix[3*(y*300+x):], []uint8{255, 255, 255})
		}
	}
	win = letterbox(image.Rect(0, 0, 300, 100))
	const n = 150 // ratio 2
	px := im.resample(win, n, n, [3]float32{7, 7, 7})
	// Padding above the image, image row inside.
	if px[0] != 7 || px[3*(n*(n/2))] != 0 {
		t.Fatalf("pad/image samples = %v / %v", px[0], px[3*(n*(n/2))])
	}
	var minX, minY, maxX, maxY = n, n, -1, -1
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if px[3*(y*n+x)] == 255 {
				minX, minY, maxX, maxY = min(minX, x), min(minY, y), max(maxX, x), max(maxY, y)
			}
		}
	}
	fx1, fy1 := win.toFrame(float64(minX), float64(minY), n, n)
	fx2, fy2 := win.toFrame(float64(maxX+1), float64(maxY+1), n, n)
	if !near(fx1, 200, 2) || !near(fy1, 40, 2) || !near(fx2, 230, 2) || !near(fy2, 60, 2) {
		t.Fatalf("square maps back to %v,%v-%v,%v, want 200,40-230,60", fx1, fy1, fx2, fy2)
	}
}

func TestResizeMatchesTFJS(t *testing.T) {
	// align_corners=false, half_pixel_centers=false: src = dst·in/out,
	// hi = min(in−1, ceil(src)).
	src := []float32{0, 10, 20, 30}
	got := resizeFloat(src, 4, 1, 1, 2, 1) // ratio 2: samples 0 and 2
	if got[0] != 0 || got[1] != 20 {
		t.Fatalf("downsample = %v", got)
	}
	got = resizeFloat([]float32{0, 10}, 2, 1, 1, 4, 1) // ratio .5: 0, .5, 1, 1.5→clamped
	want := []float32{0, 5, 10, 10}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("upsample = %v, want %v", got, want)
		}
	}
	// 3→2: ratio 1.5, src 0 and 1.5 → 15.
	got = resizeFloat([]float32{0, 10, 20}, 3, 1, 1, 2, 1)
	if got[0] != 0 || got[1] != 15 {
		t.Fatalf("3→2 = %v", got)
	}
	// The frame resampler agrees with resizeFloat inside the frame.
	im := &rgbImage{W: 5, H: 3, Pix: make([]uint8, 45)}
	for i := range im.Pix {
		im.Pix[i] = uint8(i * 5)
	}
	f := make([]float32, 45)
	for i, v := range im.Pix {
		f[i] = float32(v)
	}
	a := im.resample(window{W: 5, H: 3}, 7, 4, [3]float32{})
	b := resizeFloat(f, 5, 3, 3, 7, 4)
	for i := range a {
		if !near(float64(a[i]), float64(b[i]), 1e-4) {
			t.Fatalf("resample[%d] = %v, resizeFloat = %v", i, a[i], b[i])
		}
	}
}

func TestCropAndResize(t *testing.T) {
	im := &rgbImage{W: 11, H: 11, Pix: make([]uint8, 3*121)}
	for y := 0; y < 11; y++ {
		for x := 0; x < 11; x++ {
			im.Pix[3*(y*11+x)] = uint8(10 * x)
			im.Pix[3*(y*11+x)+1] = uint8(10 * y)
		}
	}
	// Whole image to 6×6: y = i·(H−1)/(h−1) = 2i.
	out := im.cropAndResize(0, 0, 11, 11, 6, 6)
	if out[3*(1*6+2)] != 40 || out[3*(1*6+2)+1] != 20 {
		t.Fatalf("sample (2,1) = %v,%v, want 40,20", out[3*(1*6+2)], out[3*(1*6+2)+1])
	}
	// cropResize = resizeFloat ∘ cropAndResize, for exact (256→64) and
	// fractional ratios.
	big := &rgbImage{W: 97, H: 61, Pix: make([]uint8, 3*97*61)}
	for i := range big.Pix {
		big.Pix[i] = uint8(i*31 + i/7)
	}
	for _, sz := range [][4]int{{256, 256, 64, 64}, {50, 40, 23, 17}} {
		ref := resizeFloat(big.cropAndResize(-5.5, 3.25, 80, 70, sz[0], sz[1]), sz[0], sz[1], 3, sz[2], sz[3])
		got := big.cropResize(-5.5, 3.25, 80, 70, sz[0], sz[1], sz[2], sz[3])
		for i := range ref {
			if !near(float64(got[i]), float64(ref[i]), 1e-3) {
				t.Fatalf("%v: cropResize[%d] = %v, want %v", sz, i, got[i], ref[i])
			}
		}
	}
	// A box extending left of the frame: samples outside are 0.
	out = im.cropAndResize(-11, 0, 11, 11, 3, 3)
	if out[0] != 0 || out[1] != 0 || out[3*2] != 100 {
		t.Fatalf("extrapolation: %v", out[:9])
	}
}

func TestNMS(t *testing.T) {
	ds := []det{
		{X1: 0, Y1: 0, X2: 10, Y2: 10, Score: 0.9},
		{X1: 1, Y1: 1, X2: 11, Y2: 11, Score: 0.8},   // IoU .68 with #0: dropped
		{X1: 20, Y1: 20, X2: 30, Y2: 30, Score: 0.7}, // separate: kept
		{X1: 5, Y1: 0, X2: 15, Y2: 10, Score: 0.6},   // IoU 1/3 with #0: kept at .5
		{X1: 40, Y1: 40, X2: 50, Y2: 50, Score: 0.2}, // below minScore
	}
	got := nms(ds, 0.5, 0.3, 0)
	if len(got) != 3 || got[0].Score != 0.9 || got[1].Score != 0.7 || got[2].Score != 0.6 {
		t.Fatalf("nms = %+v", got)
	}
	if got := nms(ds, 0.3, 0.3, 0); len(got) != 2 {
		t.Fatalf("nms iou .3 = %+v", got)
	}
	if got := nms(ds, 0.5, 0.3, 1); len(got) != 1 {
		t.Fatalf("nms maxOut 1 = %+v", got)
	}
	// IoU ≥ threshold suppresses (tf semantics), identical boxes too.
	same := []det{{X2: 1, Y2: 1, Score: .5}, {X2: 1, Y2: 1, Score: .4}}
	if got := nms(same, 1, 0, 0); len(got) != 1 {
		t.Fatalf("identical boxes: %+v", got)
	}

	w := weightedNMS(ds[:2], 0.3, 0.3, 0)
	if len(w) != 1 {
		t.Fatalf("weightedNMS = %+v", w)
	}
	// Score-weighted mean of the cluster: (0·.9 + 1·.8)/1.7.
	if !near(w[0].X1, 0.8/1.7, 1e-9) || !near(w[0].X2, 10+0.8/1.7, 1e-9) || w[0].Score != 0.9 {
		t.Fatalf("weighted box = %+v", w[0])
	}
	if iou(det{X2: 2, Y2: 2}, det{X1: 1, Y1: 1, X2: 3, Y2: 3}) != 1.0/7 {
		t.Fatal("iou")
	}
}

// TestGFLDecode builds a hand-made NanoDet output for a 16×16 input with
// one level (2×2 cells, stride 8) and checks the integral decode.
func TestGFLDecode(t *testing.T) {
	if d := gflDistance([]float32{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); !near(d, 5, 1e-12) {
		t.Fatalf("uniform bins: %v, want 5", d)
	}
	onehot := func(k int) []float32 {
		b := make([]float32, nanoBins)
		b[k] = 50 // softmax ≈ one-hot
		return b
	}
	if d := gflDistance(onehot(3)); !near(d, 3, 1e-9) {
		t.Fatalf("one-hot bin 3: %v", d)
	}
	// Two equal bins 1 and 2 → 1.5.
	b := make([]float32, nanoBins)
	for i := range b {
		b[i] = -1e4
	}
	b[1], b[2] = 7, 7
	if d := gflDistance(b); !near(d, 1.5, 1e-9) {
		t.Fatalf("bins 1,2: %v", d)
	}

	const cells = 4
	cls := make([]float32, cells*nanoClasses)
	reg := make([]float32, cells*4*nanoBins)
	// Cell 3 = (col 1, row 1), centre (12,12): person 0.9, distances
	// l=1, t=0.5 (bins 0/1 equal), r=0, b=10 bins → ×8.
	cls[3*nanoClasses+personClass] = 0.9
	cls[3*nanoClasses+5] = 0.99 // another class: ignored
	r := reg[3*4*nanoBins:]
	copy(r[0:], onehot(1))
	for k := 0; k < nanoBins; k++ {
		r[nanoBins+k] = -1e4
	}
	r[nanoBins+0], r[nanoBins+1] = 1, 1
	copy(r[2*nanoBins:], onehot(0))
	copy(r[3*nanoBins:], onehot(10))
	// Cell 0: person below threshold.
	cls[0] = 0.1
	levels, err := nanoLevels([][]float32{reg, cls}, [][]int{{1, cells, 44}, {1, cells, 80}}, 16)
	if err != nil {
		t.Fatal(err)
	}
	if len(levels) != 1 || levels[0].stride != 8 || levels[0].grid != 2 {
		t.Fatalf("levels = %+v", levels)
	}
	ds := decodeNano(levels, personClass, 0.3, 16)
	if len(ds) != 1 {
		t.Fatalf("decoded %d boxes, want 1: %+v", len(ds), ds)
	}
	d := ds[0]
	// x1 = 12−8 = 4, y1 = 12−4 = 8, x2 = 12+0 = 12, y2 = 12+80 → clipped to 16.
	if !near(d.X1, 4, 1e-6) || !near(d.Y1, 8, 1e-6) || !near(d.X2, 12, 1e-6) || !near(d.Y2, 16, 1e-6) || !near(d.Score, 0.9, 1e-6) {
		t.Fatalf("box = %+v", d)
	}
	// Shape checks.
	if _, err := nanoLevels([][]float32{cls}, [][]int{{1, cells, 80}}, 16); err == nil {
		t.Fatal("missing box output accepted")
	}
	if _, err := nanoLevels([][]float32{cls}, [][]int{{1, 5, 80}}, 16); err == nil {
		t.Fatal("non-square level accepted")
	}
}

func TestBlazeDecode(t *testing.T) {
	if len(faceAnchors) != 896 {
		t.Fatalf("%d anchors", len(faceAnchors))
	}
	// Anchor 0: (8,8); anchors 0,1 share a cell; 512 = first of stride 32.
	if faceAnchors[0] != [2]float64{8, 8} || faceAnchors[1] != [2]float64{8, 8} || faceAnchors[2] != [2]float64{24, 8} {
		t.Fatalf("anchors: %v", faceAnchors[:3])
	}
	if faceAnchors[32] != [2]float64{8, 24} || faceAnchors[512] != [2]float64{16, 16} || faceAnchors[895] != [2]float64{240, 240} {
		t.Fatalf("anchors: %v %v %v", faceAnchors[32], faceAnchors[512], faceAnchors[895])
	}
	l512, l384 := make([]float32, 512), make([]float32, 384)
	r512, r384 := make([]float32, 512*16), make([]float32, 384*16)
	for i := range l512 {
		l512[i] = -10
	}
	for i := range l384 {
		l384[i] = -10
	}
	// A face on the stride-32 anchor 512+6 = cell (1,0): centre (48,16).
	l384[6] = 2 // sigmoid .88
	copy(r384[6*16:], []float32{2, -1, 40, 50})
	ds, err := decodeBlaze([][]float32{r512, l384, l512, r384}, [][]int{{1, 512, 16}, {1, 384, 1}, {1, 512, 1}, {1, 384, 16}}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d faces", len(ds))
	}
	d := ds[0]
	if !near(d.X1, 30, 1e-9) || !near(d.Y1, -10, 1e-9) || !near(d.X2, 70, 1e-9) || !near(d.Y2, 40, 1e-9) || !near(d.Score, sigmoid(2), 1e-6) {
		t.Fatalf("face = %+v", d)
	}
	if _, err := decodeBlaze([][]float32{l512}, [][]int{{1, 512, 1}}, .5); err == nil {
		t.Fatal("incomplete outputs accepted")
	}
}

func TestRekognitionEmotions(t *testing.T) {
	// angry, disgust, fear, happy, sad, surprise, neutral
	e := rekognitionEmotions([]float32{0.05, 0.01, 0.02, 0.7, 0.02, 0.05, 0.15})
	if len(e) != 8 || e[0].Type != "HAPPY" || !near(e[0].Confidence, 70, 1e-4) || e[1].Type != "CALM" {
		t.Fatalf("emotions = %+v", e)
	}
	if e[7].Type != "CONFUSED" || e[7].Confidence != 0 {
		t.Fatalf("last = %+v", e[7])
	}
	seen := map[string]bool{}
	for _, x := range e {
		seen[x.Type] = true
	}
	for _, typ := range []string{"HAPPY", "SAD", "ANGRY", "CONFUSED", "DISGUSTED", "SURPRISED", "CALM", "FEAR"} {
		if !seen[typ] {
			t.Fatalf("missing %s", typ)
		}
	}
}

func TestTilesAndEdges(t *testing.T) {
	ts := tiles(1000, 500)
	if len(ts) != 4 || ts[0] != image.Rect(0, 0, 600, 300) || ts[3] != image.Rect(400, 200, 1000, 500) {
		t.Fatalf("tiles = %v", ts)
	}
	frame := image.Rect(0, 0, 1000, 500)
	ds := markEdges([]det{
		{X1: 10, Y1: 10, X2: 100, Y2: 200, Score: 1},   // inside, frame border only
		{X1: 500, Y1: 10, X2: 600, Y2: 200, Score: 1},  // cut by the tile's right border
		{X1: 10, Y1: 200, X2: 100, Y2: 299, Score: 1},  // cut by the bottom border
		{X1: 450, Y1: 100, X2: 550, Y2: 250, Score: 1}, // inside
	}, ts[0], frame)
	if ds[0].edge || !ds[1].edge || !ds[2].edge || ds[3].edge {
		t.Fatalf("edges = %+v", ds)
	}
	merged := mergeTiles(append(ds, det{X1: 452, Y1: 101, X2: 551, Y2: 252, Score: .8}), 0.5)
	if len(merged) != 2 {
		t.Fatalf("merged = %+v", merged)
	}
	if wantTiles(600, 400, nil) {
		t.Fatal("small frame tiled")
	}
	if !wantTiles(1920, 1080, nil) || !wantTiles(1920, 1080, []det{{Y2: 100}}) || wantTiles(1920, 1080, []det{{Y2: 1000}}) {
		t.Fatal("wantTiles")
	}
}

func TestROI(t *testing.T) {
	roi := &vision.Rect{Left: 0.5, Top: 0, Width: 0.5, Height: 1}
	if inROI(det{X1: 0, Y1: 0, X2: 40, Y2: 10}, roi, 100, 100) || !inROI(det{X1: 40, Y1: 0, X2: 80, Y2: 10}, roi, 100, 100) {
		t.Fatal("inROI")
	}
	if checkROI(vision.Rect{Left: .5, Width: .6, Height: 1}) == nil || checkROI(*roi) != nil {
		t.Fatal("checkROI")
	}
}

// jpegWithOrientation encodes img and inserts an APP1 EXIF segment with
// the given orientation after SOI.
func jpegWithOrientation(t *testing.T, img image.Image, o uint16) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2a")
	binary.Write(&tiff, binary.BigEndian, uint32(8))
	binary.Write(&tiff, binary.BigEndian, uint16(1))
	binary.Write(&tiff, binary.BigEndian, []uint16{0x0112, 3})
	binary.Write(&tiff, binary.BigEndian, uint32(1))
	binary.Write(&tiff, binary.BigEndian, []uint16{o, 0})
	binary.Write(&tiff, binary.BigEndian, uint32(0))
	seg := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(buf.Bytes()[:2])
	out.Write([]byte{0xFF, 0xE1})
	binary.Write(&out, binary.BigEndian, uint16(len(seg)+2))
	out.Write(seg)
	out.Write(buf.Bytes()[2:])
	return out.Bytes()
}

func TestDecodeOrientation(t *testing.T) {
	// 40×20 image, left half red, right half blue.
	src := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for y := 0; y < 20; y++ {
		for x := 0; x < 40; x++ {
			c := color.RGBA{R: 255, A: 255}
			if x >= 20 {
				c = color.RGBA{B: 255, A: 255}
			}
			src.Set(x, y, c)
		}
	}
	for _, tc := range []struct {
		o          uint16
		w, h       int
		redAtTopLt bool // is the top-left pixel red?
	}{{1, 40, 20, true}, {3, 40, 20, false}, {6, 20, 40, true}, {8, 20, 40, false}} {
		data := jpegWithOrientation(t, src, tc.o)
		if got := exifOrientation(data); got != int(tc.o) {
			t.Fatalf("orientation %d read as %d", tc.o, got)
		}
		im, err := decodeImage(data)
		if err != nil {
			t.Fatal(err)
		}
		if im.W != tc.w || im.H != tc.h {
			t.Fatalf("o=%d: %dx%d", tc.o, im.W, im.H)
		}
		red := im.Pix[0] > 200 && im.Pix[2] < 60
		if red != tc.redAtTopLt {
			t.Fatalf("o=%d: top-left %v", tc.o, im.Pix[:3])
		}
	}
	// PNG (no EXIF) and garbage.
	var buf bytes.Buffer
	png.Encode(&buf, src)
	if im, err := decodeImage(buf.Bytes()); err != nil || im.W != 40 || im.Pix[0] != 255 {
		t.Fatalf("png: %v", err)
	}
	if _, err := decodeImage([]byte("not an image")); err == nil {
		t.Fatal("garbage decoded")
	}
}

func TestAnnotate(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 200, 100))
	var buf bytes.Buffer
	png.Encode(&buf, src)
	out, err := Annotate(buf.Bytes(), []Box{{Left: 0.25, Top: 0.2, Width: 0.5, Height: 0.6}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	green := func(x, y int) bool {
		r, g, b, _ := img.At(x, y).RGBA()
		return g>>8 > 150 && r>>8 < 100 && b>>8 < 120
	}
	// Box edges at x 50..150, y 20..80; inside and outside stay black.
	if !green(50, 50) || !green(149, 50) || !green(100, 20) || !green(100, 79) {
		t.Fatal("box edges not drawn")
	}
	if green(100, 50) || green(10, 10) {
		t.Fatal("drew outside the edges")
	}
	// From a result map (people and faces shapes).
	res := map[string]any{
		"boxes":       []any{map[string]any{"Left": 0.1, "Top": 0.1, "Width": 0.2, "Height": 0.2, "Confidence": 90.0}},
		"FaceDetails": []any{map[string]any{"BoundingBox": map[string]any{"Left": 0.5, "Top": 0.5, "Width": 0.1, "Height": 0.1}, "Confidence": 99.0}},
	}
	if bs := BoxesFromResult(res); len(bs) != 2 || bs[1].Confidence != 99 {
		t.Fatalf("BoxesFromResult = %+v", bs)
	}
	if _, ct, err := AnnotateResult(buf.Bytes(), res); err != nil || ct != "image/jpeg" {
		t.Fatalf("AnnotateResult: %v %v", ct, err)
	}
}

func TestDropGroupBoxes(t *testing.T) {
	// Two people side by side and a box around both (group-7's case).
	a := det{X1: 60, Y1: 70, X2: 270, Y2: 670, Score: .32}
	b := det{X1: 254, Y1: 140, X2: 426, Y2: 675, Score: .33}
	g := det{X1: 78, Y1: 23, X2: 440, Y2: 668, Score: .59}
	c := det{X1: 564, Y1: 55, X2: 868, Y2: 669, Score: .54}
	got := dropGroupBoxes([]det{g, a, b, c})
	if len(got) != 3 || got[0] != a {
		t.Fatalf("group box kept: %+v", got)
	}
	// A person with a head-and-shoulders box and a side sliver inside it
	// (members much shorter than the box): not a group.
	p := det{X1: 706, Y1: 210, X2: 900, Y2: 675, Score: .67}
	head := det{X1: 736, Y1: 213, X2: 895, Y2: 355, Score: .33}
	sliver := det{X1: 853, Y1: 349, X2: 900, Y2: 658, Score: .3}
	if got := dropGroupBoxes([]det{p, head, sliver}); len(got) != 3 {
		t.Fatalf("person dropped: %+v", got)
	}
	// Two members that overlap a lot are one person twice, not a group.
	a2 := det{X1: 70, Y1: 70, X2: 300, Y2: 670, Score: .3}
	if got := dropGroupBoxes([]det{g, a, a2}); len(got) != 3 {
		t.Fatalf("dropped with overlapping members: %+v", got)
	}
}

func TestYCbCrConversion(t *testing.T) {
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		full := image.NewYCbCr(image.Rect(0, 0, 37, 150), ratio)
		for i := range full.Y {
			full.Y[i] = uint8(i * 7)
		}
		for i := range full.Cb {
			full.Cb[i], full.Cr[i] = uint8(i*13), uint8(255-i*5)
		}
		sub := full.SubImage(image.Rect(3, 5, 37, 150)).(*image.YCbCr)
		for _, img := range []*image.YCbCr{full, sub} {
			got := toRGB(img)
			b := img.Bounds()
			for y := 0; y < b.Dy(); y++ {
				for x := 0; x < b.Dx(); x++ {
					r, g, bb, _ := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).RGBA()
					o := 3 * (y*b.Dx() + x)
					if got.Pix[o] != uint8(r>>8) || got.Pix[o+1] != uint8(g>>8) || got.Pix[o+2] != uint8(bb>>8) {
						t.Fatalf("%v %v at %d,%d: %v, want %d,%d,%d", ratio, b, x, y, got.Pix[o:o+3], r>>8, g>>8, bb>>8)
					}
				}
			}
		}
	}
}
