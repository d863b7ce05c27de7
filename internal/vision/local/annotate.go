package local

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math"
)

// annotateColour is the colour boxes are drawn in (a saturated green that
// stands out on most scenes).
var annotateColour = color.RGBA{R: 0x20, G: 0xE0, B: 0x40, A: 0xFF}

// Annotate draws the boxes (fractions of the image, as in results) onto a
// copy of the JPEG or PNG image and returns it as a JPEG. The line width
// scales with the image (about 0.3 % of the longer side, at least 2 px).
func Annotate(img []byte, boxes []Box) ([]byte, error) {
	im, err := decodeImage(img)
	if err != nil {
		return nil, err
	}
	canvas := im.toImage()
	drawBoxes(canvas, boxes)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, canvas, &jpeg.Options{Quality: 88}); err != nil {
		return nil, fmt.Errorf("local: encode annotated image: %w", err)
	}
	return buf.Bytes(), nil
}

// AnnotateResult is a vision.Annotator: it draws the "boxes" of a people
// result or the FaceDetails' bounding boxes of a faces result (from any
// provider with those shapes) and returns a JPEG.
func AnnotateResult(img []byte, result map[string]any) ([]byte, string, error) {
	out, err := Annotate(img, BoxesFromResult(result))
	if err != nil {
		return nil, "", err
	}
	return out, "image/jpeg", nil
}

// BoxesFromResult extracts the boxes of a people result ("boxes") or a
// faces result ("FaceDetails"[].BoundingBox). Entries that are not
// well-formed are skipped.
func BoxesFromResult(result map[string]any) []Box {
	var out []Box
	for _, v := range asList(result["boxes"]) {
		if b, ok := boxFromMap(v); ok {
			out = append(out, b)
		}
	}
	for _, v := range asList(result["FaceDetails"]) {
		m, _ := v.(map[string]any)
		if b, ok := boxFromMap(m["BoundingBox"]); ok {
			b.Confidence, _ = toFloat(m["Confidence"])
			out = append(out, b)
		}
	}
	return out
}

func asList(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case []map[string]any:
		out := make([]any, len(l))
		for i, m := range l {
			out[i] = m
		}
		return out
	}
	return nil
}

func boxFromMap(v any) (Box, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return Box{}, false
	}
	var b Box
	var okL, okT, okW, okH bool
	b.Left, okL = toFloat(m["Left"])
	b.Top, okT = toFloat(m["Top"])
	b.Width, okW = toFloat(m["Width"])
	b.Height, okH = toFloat(m["Height"])
	b.Confidence, _ = toFloat(m["Confidence"])
	return b, okL && okT && okW && okH
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case interface{ Float64() (float64, error) }: // json.Number
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// drawBoxes outlines each box on img.
func drawBoxes(img draw.Image, boxes []Box) {
	r := img.Bounds()
	W, H := float64(r.Dx()), float64(r.Dy())
	t := max(2, int(math.Round(0.003*math.Max(W, H))))
	src := image.NewUniform(annotateColour)
	for _, b := range boxes {
		if !(b.Width > 0 && b.Height > 0) || math.IsInf(b.Left+b.Top+b.Width+b.Height, 0) {
			continue
		}
		x1 := r.Min.X + int(math.Round(clamp(b.Left, 0, 1)*W))
		y1 := r.Min.Y + int(math.Round(clamp(b.Top, 0, 1)*H))
		x2 := r.Min.X + int(math.Round(clamp(b.Left+b.Width, 0, 1)*W))
		y2 := r.Min.Y + int(math.Round(clamp(b.Top+b.Height, 0, 1)*H))
		for _, e := range []image.Rectangle{
			image.Rect(x1, y1, x2, y1+t), // top
			image.Rect(x1, y2-t, x2, y2), // bottom
			image.Rect(x1, y1, x1+t, y2), // left
			image.Rect(x2-t, y1, x2, y2), // right
		} {
			draw.Draw(img, e.Intersect(r), src, image.Point{}, draw.Src)
		}
	}
}
