package local

import (
	"context"
	"fmt"
	"image"
	"math"
	"sort"

	"github.com/nagare-iot/nagare/internal/vision"
)

// NanoDet-g-416 (legacy v0.x, COCO; reference/vision.md §3.3).
const (
	personSize  = 416
	nanoClasses = 80
	nanoRegMax  = 10 // 11 distance bins per side
	nanoBins    = nanoRegMax + 1
	personClass = 0
)

// The model's training normalisation (nanodet-g.yml), in BGR order.
var (
	nanoMean = [3]float32{103.53, 116.28, 123.675}
	nanoStd  = [3]float32{57.375, 57.12, 58.395}
)

// nanoInput letterboxes the window into the NCHW input [1,3,416,416]:
// channels B, G, R, each (x − mean)/std. Padding is the mean colour
// (0 after normalisation), as the reference keep_ratio pipeline pads.
func nanoInput(im *rgbImage, win window) []float32 {
	pad := [3]float32{nanoMean[2], nanoMean[1], nanoMean[0]} // RGB order
	px := im.resample(win, personSize, personSize, pad)
	const plane = personSize * personSize
	out := make([]float32, 3*plane)
	b, g, r := out[:plane], out[plane:2*plane], out[2*plane:]
	for i := 0; i < plane; i++ {
		r[i] = (px[3*i] - nanoMean[2]) / nanoStd[2]
		g[i] = (px[3*i+1] - nanoMean[1]) / nanoStd[1]
		b[i] = (px[3*i+2] - nanoMean[0]) / nanoStd[0]
	}
	return out
}

// gflDistance is the GFL integral: softmax over the bins, expectation of
// the bin index.
func gflDistance(bins []float32) float64 {
	m := bins[0]
	for _, v := range bins[1:] {
		m = max(m, v)
	}
	var s, e float64
	for k, v := range bins {
		w := math.Exp(float64(v - m))
		s += w
		e += float64(k) * w
	}
	return e / s
}

// nanoLevel is one stride level's outputs.
type nanoLevel struct {
	grid   int       // cells per side
	stride float64   // input pixels per cell
	cls    []float32 // [cells,80], sigmoid already applied
	reg    []float32 // [cells,44], 4 sides × 11 bins
}

// nanoLevels pairs the six outputs ([1,n,80] class scores and [1,n,44]
// box logits per level, in any order) by cell count.
func nanoLevels(outs [][]float32, shapes [][]int, inputSize int) ([]nanoLevel, error) {
	byCells := map[int]*nanoLevel{}
	for i, sh := range shapes {
		if len(sh) != 3 || sh[0] != 1 {
			return nil, fmt.Errorf("local: nanodet output shape %v", sh)
		}
		n := sh[1]
		g := int(math.Round(math.Sqrt(float64(n))))
		if g*g != n || g == 0 || inputSize%g != 0 {
			return nil, fmt.Errorf("local: nanodet output shape %v", sh)
		}
		l := byCells[n]
		if l == nil {
			l = &nanoLevel{grid: g, stride: float64(inputSize / g)}
			byCells[n] = l
		}
		switch sh[2] {
		case nanoClasses:
			l.cls = outs[i]
		case 4 * nanoBins:
			l.reg = outs[i]
		default:
			return nil, fmt.Errorf("local: nanodet output shape %v", sh)
		}
	}
	var levels []nanoLevel
	for _, l := range byCells {
		if l.cls == nil || l.reg == nil {
			return nil, fmt.Errorf("local: nanodet outputs incomplete (%v)", shapes)
		}
		levels = append(levels, *l)
	}
	sort.Slice(levels, func(i, j int) bool { return levels[i].stride < levels[j].stride })
	return levels, nil
}

// decodeNano returns the class-cls candidates with score >= minScore, as
// boxes in input pixels: centre ((col+0.5)·stride, (row+0.5)·stride)
// (legacy v0.x), distances = GFL integral × stride, box = [cx−l, cy−t,
// cx+r, cy+b] clipped to the input.
func decodeNano(levels []nanoLevel, class int, minScore float64, inputSize int) []det {
	var ds []det
	lim := float64(inputSize)
	for _, l := range levels {
		cells := l.grid * l.grid
		for c := 0; c < cells; c++ {
			s := float64(l.cls[c*nanoClasses+class])
			if s < minScore {
				continue
			}
			cx := (float64(c%l.grid) + 0.5) * l.stride
			cy := (float64(c/l.grid) + 0.5) * l.stride
			r := l.reg[c*4*nanoBins : (c+1)*4*nanoBins]
			dl := gflDistance(r[0:nanoBins]) * l.stride
			dt := gflDistance(r[nanoBins:2*nanoBins]) * l.stride
			dr := gflDistance(r[2*nanoBins:3*nanoBins]) * l.stride
			db := gflDistance(r[3*nanoBins:]) * l.stride
			ds = append(ds, det{
				X1: clamp(cx-dl, 0, lim), Y1: clamp(cy-dt, 0, lim),
				X2: clamp(cx+dr, 0, lim), Y2: clamp(cy+db, 0, lim),
				Score: s,
			})
		}
	}
	return ds
}

// detectPeople runs NanoDet on the letterboxed region and returns the
// person candidates in frame pixels, clipped to the region (before NMS).
func (p *Provider) detectPeople(ctx context.Context, im *rgbImage, region image.Rectangle, minScore float64) ([]det, error) {
	win := letterbox(region)
	outs, err := p.person.run(ctx, []int{1, 3, personSize, personSize}, nanoInput(im, win))
	if err != nil {
		return nil, fmt.Errorf("local: nanodet: %w", err)
	}
	data := make([][]float32, len(outs))
	shapes := make([][]int, len(outs))
	for i, t := range outs {
		data[i], shapes[i] = t.Data, t.Shape
	}
	levels, err := nanoLevels(data, shapes, personSize)
	if err != nil {
		return nil, err
	}
	ds := decodeNano(levels, personClass, minScore, personSize)
	rx1, ry1, rx2, ry2 := float64(region.Min.X), float64(region.Min.Y), float64(region.Max.X), float64(region.Max.Y)
	kept := ds[:0]
	for _, d := range ds {
		d.X1, d.Y1 = win.toFrame(d.X1, d.Y1, personSize, personSize)
		d.X2, d.Y2 = win.toFrame(d.X2, d.Y2, personSize, personSize)
		d.X1, d.X2 = clamp(d.X1, rx1, rx2), clamp(d.X2, rx1, rx2)
		d.Y1, d.Y2 = clamp(d.Y1, ry1, ry2), clamp(d.Y2, ry1, ry2)
		if d.X2-d.X1 < 1 || d.Y2-d.Y1 < 1 {
			continue // entirely in the padding
		}
		kept = append(kept, d)
	}
	return kept, nil
}

// Tiling parameters.
const (
	// tileMinSide: frames whose longer side is below this are never
	// tiled (a tile would not add resolution over the 416 input).
	tileMinSide = 2 * personSize * 3 / 4
	// tileFrac is a tile's size as a fraction of the frame per axis; two
	// tiles per axis then overlap by 2·tileFrac−1 of the frame.
	tileFrac = 0.6
	// tileEdge: a tile detection within this many frame pixels (as a
	// fraction of the tile side) of an inner tile border is treated as
	// possibly cut off.
	tileEdge = 0.01
	// tileSmall: in auto mode, tile unless the median person found on
	// the full frame is at least this fraction of the model input tall
	// (then tiles would only cut people in pieces).
	tileSmall = 0.5
	// tileScoreBoost is added to the score threshold for detections in
	// tiles: at 1.67× zoom NanoDet also fires on body parts and on people
	// cut by the tile, and those score lower than whole people.
	tileScoreBoost = 0.05
)

// tiles returns the 2×2 overlapping tiles of a w×h frame.
func tiles(w, h int) []image.Rectangle {
	tw, th := int(math.Round(tileFrac*float64(w))), int(math.Round(tileFrac*float64(h)))
	var out []image.Rectangle
	for _, y0 := range []int{0, h - th} {
		for _, x0 := range []int{0, w - tw} {
			out = append(out, image.Rect(x0, y0, x0+tw, y0+th))
		}
	}
	return out
}

// wantTiles decides, in auto mode, whether a frame is worth tiling: it is
// large enough and the people found on the full frame are not large (or
// there are none). Small people and tight groups, where NanoDet at 416
// misses occluded people, both gain from the 1.67× zoom of a tile.
func wantTiles(w, h int, full []det) bool {
	if max(w, h) < tileMinSide {
		return false
	}
	if len(full) == 0 {
		return true
	}
	hs := make([]float64, len(full))
	for i, d := range full {
		hs[i] = d.Y2 - d.Y1
	}
	sort.Float64s(hs)
	median := hs[len(hs)/2]
	// Height in model-input pixels on the full-frame letterbox.
	return median*float64(personSize)/float64(max(w, h)) < tileSmall*personSize
}

// people detects the persons in the frame, with tiling as configured, and
// keeps those whose centre lies in roi.
func (p *Provider) people(ctx context.Context, im *rgbImage, roi *vision.Rect, minScore float64, tiling string) ([]Box, error) {
	if minScore <= 0 {
		minScore = p.opts.PersonMinScore
	}
	frame := image.Rect(0, 0, im.W, im.H)
	cands, err := p.detectPeople(ctx, im, frame, minScore)
	if err != nil {
		return nil, err
	}
	full := nms(cands, p.opts.PersonIoU, 0, 0)
	all := full
	if tiling == TilingAlways || (tiling == TilingAuto && wantTiles(im.W, im.H, full)) {
		for _, t := range tiles(im.W, im.H) {
			ds, err := p.detectPeople(ctx, im, t, minScore+tileScoreBoost)
			if err != nil {
				return nil, err
			}
			ds = nms(ds, p.opts.PersonIoU, 0, 0)
			all = append(all, markEdges(ds, t, frame)...)
		}
		all = mergeTiles(all, p.opts.PersonIoU)
	}
	all = dropGroupBoxes(all)
	var kept []det
	for _, d := range all {
		if inROI(d, roi, im.W, im.H) {
			kept = append(kept, d)
		}
	}
	kept = byScore(kept)
	if len(kept) > p.opts.MaxPeople {
		kept = kept[:p.opts.MaxPeople]
	}
	sortDets(kept)
	boxes := make([]Box, len(kept))
	for i, d := range kept {
		boxes[i] = boxOf(d, im.W, im.H)
	}
	return boxes, nil
}

// markEdges flags tile detections touching a tile border that is inside
// the frame: such a box may hold only part of a person.
func markEdges(ds []det, tile, frame image.Rectangle) []det {
	m := tileEdge * float64(max(tile.Dx(), tile.Dy()))
	for i := range ds {
		d := &ds[i]
		d.edge = (tile.Min.X > frame.Min.X && d.X1 <= float64(tile.Min.X)+m) ||
			(tile.Min.Y > frame.Min.Y && d.Y1 <= float64(tile.Min.Y)+m) ||
			(tile.Max.X < frame.Max.X && d.X2 >= float64(tile.Max.X)-m) ||
			(tile.Max.Y < frame.Max.Y && d.Y2 >= float64(tile.Max.Y)-m)
	}
	return ds
}

// mergeTiles merges full-frame and tile detections: cut-off tile boxes
// are dropped (the overlapping tile or the full frame sees that person
// whole), the rest go through NMS.
func mergeTiles(ds []det, iouThr float64) []det {
	var whole []det
	for _, d := range ds {
		if !d.edge {
			whole = append(whole, d)
		}
	}
	return nms(whole, iouThr, 0, 0)
}

// Group-box suppression. In tight groups NanoDet sometimes adds one box
// around two people it also found one by one (a "group box"); NMS keeps it
// because its IoU with each single box is small. A box is dropped when two
// other detections of about its height lie (almost) entirely inside it
// side by side, overlap each other little, and together span most of its
// width.
const (
	groupInside  = 0.8 // fraction of a member's area inside the group box
	groupHeight  = 0.6 // a member's height / the group box's height at least
	groupOverlap = 0.3 // members' IoU with each other at most
	groupSpan    = 0.8 // members' joint horizontal span / group box width
)

func dropGroupBoxes(ds []det) []det {
	var out []det
	for i, g := range ds {
		var members []det
		for j, s := range ds {
			if j != i && s.area() < g.area() && intersection(s, g) >= groupInside*s.area() &&
				s.Y2-s.Y1 >= groupHeight*(g.Y2-g.Y1) {
				members = append(members, s)
			}
		}
		group := false
		for a := 0; a < len(members) && !group; a++ {
			for b := a + 1; b < len(members) && !group; b++ {
				m1, m2 := members[a], members[b]
				if iou(m1, m2) > groupOverlap {
					continue
				}
				span := math.Max(m1.X2, m2.X2) - math.Min(m1.X1, m2.X1)
				group = span >= groupSpan*(g.X2-g.X1)
			}
		}
		if !group {
			out = append(out, g)
		}
	}
	return out
}
