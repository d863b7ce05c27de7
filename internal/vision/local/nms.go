package local

import (
	"math"
	"sort"
)

// det is one detection in frame pixels.
type det struct {
	X1, Y1, X2, Y2 float64
	Score          float64
	// edge is set on tile detections that touch a tile border lying
	// inside the frame (the object may be cut off there).
	edge bool
}

func (d det) area() float64 { return math.Max(0, d.X2-d.X1) * math.Max(0, d.Y2-d.Y1) }

func (d det) centre() (float64, float64) { return (d.X1 + d.X2) / 2, (d.Y1 + d.Y2) / 2 }

func intersection(a, b det) float64 {
	w := math.Min(a.X2, b.X2) - math.Max(a.X1, b.X1)
	h := math.Min(a.Y2, b.Y2) - math.Max(a.Y1, b.Y1)
	if w <= 0 || h <= 0 {
		return 0
	}
	return w * h
}

// iou is intersection over union (0 when either box is empty).
func iou(a, b det) float64 {
	in := intersection(a, b)
	if in == 0 {
		return 0
	}
	return in / (a.area() + b.area() - in)
}

// byScore sorts detections by descending score; ties keep input order.
func byScore(ds []det) []det {
	s := append([]det(nil), ds...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Score > s[j].Score })
	return s
}

// nms is hard non-maximum suppression as tf.image.nonMaxSuppression does
// it: candidates with score > minScore, visited by descending score, a
// candidate is dropped when its IoU with a kept box is >= iouThr; at most
// maxOut are kept (0 = no limit).
func nms(ds []det, iouThr, minScore float64, maxOut int) []det {
	var keep []det
	for _, d := range byScore(ds) {
		if d.Score <= minScore {
			break
		}
		ok := true
		for _, k := range keep {
			if iou(d, k) >= iouThr {
				ok = false
				break
			}
		}
		if ok {
			keep = append(keep, d)
			if maxOut > 0 && len(keep) == maxOut {
				break
			}
		}
	}
	return keep
}

// weightedNMS is MediaPipe's "weighted" (blending) suppression: the
// highest-scoring remaining candidate absorbs every candidate whose IoU
// with it is > iouThr; the kept box is the score-weighted mean of the
// cluster and keeps the top score.
func weightedNMS(ds []det, iouThr, minScore float64, maxOut int) []det {
	rest := byScore(ds)
	for len(rest) > 0 && rest[len(rest)-1].Score <= minScore {
		rest = rest[:len(rest)-1]
	}
	var keep []det
	for len(rest) > 0 {
		top := rest[0]
		var sx1, sy1, sx2, sy2, sw float64
		remain := rest[:0:0]
		for _, d := range rest {
			if iou(top, d) > iouThr || d == top {
				sx1 += d.X1 * d.Score
				sy1 += d.Y1 * d.Score
				sx2 += d.X2 * d.Score
				sy2 += d.Y2 * d.Score
				sw += d.Score
			} else {
				remain = append(remain, d)
			}
		}
		if sw > 0 {
			top.X1, top.Y1, top.X2, top.Y2 = sx1/sw, sy1/sw, sx2/sw, sy2/sw
		}
		keep = append(keep, top)
		if maxOut > 0 && len(keep) == maxOut {
			break
		}
		rest = remain
	}
	return keep
}
