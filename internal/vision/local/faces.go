package local

import (
	"context"
	"fmt"
	"image"
	"math"
	"sort"

	"github.com/nagare-iot/nagare/internal/vision"
)

// BlazeFace (MediaPipe back-camera model, reference/vision.md §3.1).
const (
	faceSize = 256
	// faceEnlarge is Human's detector.scale: the crop given to the
	// emotion model is the face box enlarged by this factor and squared.
	faceEnlarge = 1.4
	// faceCrop is the size of that crop before it is resized to the
	// emotion model's 64×64 (Human's cutAndResize without the mesh).
	faceCrop = 256
)

// faceAnchors are the 896 anchor centres in input pixels: strides 16 and
// 32 with 2 and 6 anchors per cell, cells row by row.
var faceAnchors = blazeAnchors(faceSize, []int{16, 32}, []int{2, 6})

func blazeAnchors(size int, strides, perCell []int) [][2]float64 {
	var out [][2]float64
	for i, s := range strides {
		g := (size + s - 1) / s
		for y := 0; y < g; y++ {
			for x := 0; x < g; x++ {
				for k := 0; k < perCell[i]; k++ {
					out = append(out, [2]float64{float64(s) * (float64(x) + 0.5), float64(s) * (float64(y) + 0.5)})
				}
			}
		}
	}
	return out
}

// blazeInput letterboxes the region of the frame into the model input
// [1,256,256,3], RGB scaled to [−1,1]. Padding is black (−1).
func blazeInput(im *rgbImage, win window) []float32 {
	px := im.resample(win, faceSize, faceSize, [3]float32{})
	for i, v := range px {
		px[i] = v/127.5 - 1
	}
	return px
}

// decodeBlaze turns BlazeFace's four outputs (logits [1,512,1] and
// [1,384,1], regressors [1,512,16] and [1,384,16], in any order) into
// candidate boxes in input pixels with sigmoid scores above minScore.
func decodeBlaze(outs [][]float32, shapes [][]int, minScore float64) ([]det, error) {
	var logits, regs [2][]float32 // index 0: the 512-anchor block, 1: the 384 block
	for i, sh := range shapes {
		if len(sh) != 3 || sh[0] != 1 {
			return nil, fmt.Errorf("local: blazeface output shape %v", sh)
		}
		var b int
		switch sh[1] {
		case 512:
			b = 0
		case 384:
			b = 1
		default:
			return nil, fmt.Errorf("local: blazeface output shape %v", sh)
		}
		switch sh[2] {
		case 1:
			logits[b] = outs[i]
		case 16:
			regs[b] = outs[i]
		default:
			return nil, fmt.Errorf("local: blazeface output shape %v", sh)
		}
	}
	for b := 0; b < 2; b++ {
		if logits[b] == nil || regs[b] == nil {
			return nil, fmt.Errorf("local: blazeface outputs incomplete (%v)", shapes)
		}
	}
	// Logit threshold equivalent to sigmoid(l) > minScore.
	minLogit := math.Log(minScore / (1 - minScore))
	var ds []det
	a := 0
	for b := 0; b < 2; b++ {
		for i, l := range logits[b] {
			anchor := faceAnchors[a+i]
			lg := clamp(float64(l), -100, 100)
			if lg <= minLogit {
				continue
			}
			r := regs[b][16*i : 16*i+16]
			cx, cy := float64(r[0])+anchor[0], float64(r[1])+anchor[1]
			w, h := float64(r[2]), float64(r[3])
			if w <= 0 || h <= 0 {
				continue
			}
			ds = append(ds, det{X1: cx - w/2, Y1: cy - h/2, X2: cx + w/2, Y2: cy + h/2, Score: sigmoid(lg)})
		}
		a += len(logits[b])
	}
	return ds, nil
}

// detectFaces runs BlazeFace on the letterboxed window and returns the
// candidates in frame pixels (before NMS).
func (p *Provider) detectFaces(ctx context.Context, im *rgbImage, win window, minScore float64) ([]det, error) {
	outs, err := p.face.run(ctx, []int{1, faceSize, faceSize, 3}, blazeInput(im, win))
	if err != nil {
		return nil, fmt.Errorf("local: blazeface: %w", err)
	}
	data := make([][]float32, len(outs))
	shapes := make([][]int, len(outs))
	for i, t := range outs {
		data[i], shapes[i] = t.Data, t.Shape
	}
	ds, err := decodeBlaze(data, shapes, minScore)
	if err != nil {
		return nil, err
	}
	for i := range ds {
		ds[i].X1, ds[i].Y1 = win.toFrame(ds[i].X1, ds[i].Y1, faceSize, faceSize)
		ds[i].X2, ds[i].Y2 = win.toFrame(ds[i].X2, ds[i].Y2, faceSize, faceSize)
	}
	return ds, nil
}

// faces finds faces (BlazeFace on the letterboxed frame, weighted NMS) and
// scores their emotions in one batch.
func (p *Provider) faces(ctx context.Context, im *rgbImage, roi *vision.Rect, minScore float64) ([]Face, error) {
	if minScore <= 0 {
		minScore = p.opts.FaceMinScore
	}
	cands, err := p.detectFaces(ctx, im, letterbox(image.Rect(0, 0, im.W, im.H)), minScore)
	if err != nil {
		return nil, err
	}
	ds := weightedNMS(cands, p.opts.FaceIoU, minScore, 0)
	kept := ds[:0]
	for _, d := range ds {
		// Drop boxes that fall (mostly) into the letterbox padding.
		if d.X2 <= 0 || d.Y2 <= 0 || d.X1 >= float64(im.W) || d.Y1 >= float64(im.H) {
			continue
		}
		if inROI(d, roi, im.W, im.H) {
			kept = append(kept, d)
		}
	}
	ds = kept
	if len(ds) > p.opts.MaxFaces {
		ds = ds[:p.opts.MaxFaces] // highest scores first
	}
	probs, err := p.emotions(ctx, im, ds)
	if err != nil {
		return nil, err
	}
	faces := make([]Face, len(ds))
	for i, d := range ds {
		faces[i] = Face{Box: boxOf(d, im.W, im.H), Emotions: rekognitionEmotions(probs[i])}
	}
	sort.SliceStable(faces, func(i, j int) bool { return faces[i].Confidence > faces[j].Confidence })
	return faces, nil
}

// Emotion classifier (oarriaga mini-Xception, FER2013 labels, §3.2).
const emotionSize = 64

// fer2013 is the model's output order.
var fer2013 = [7]string{"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}

// rekognitionType maps FER2013 labels to Rekognition's EmotionName.
var rekognitionType = map[string]string{
	"angry": "ANGRY", "disgust": "DISGUSTED", "fear": "FEAR", "happy": "HAPPY",
	"sad": "SAD", "surprise": "SURPRISED", "neutral": "CALM",
}

// rekognitionEmotions turns the 7 softmax outputs into Rekognition's 8
// emotion types (CONFUSED has no counterpart and is 0), 0–100, sorted by
// confidence (highest first, then by name).
func rekognitionEmotions(p []float32) []Emotion {
	out := make([]Emotion, 0, 8)
	for i, label := range fer2013 {
		c := 0.0
		if i < len(p) {
			c = 100 * float64(p[i])
		}
		out = append(out, Emotion{Type: rekognitionType[label], Confidence: c})
	}
	out = append(out, Emotion{Type: "CONFUSED", Confidence: 0})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Confidence != out[j].Confidence {
			return out[i].Confidence > out[j].Confidence
		}
		return out[i].Type < out[j].Type
	})
	return out
}

// emotionCrop returns the box Human feeds to the emotion model: the face
// box enlarged by faceEnlarge around its centre and made square.
func emotionCrop(d det) (x1, y1, x2, y2 float64) {
	cx, cy := d.centre()
	side := math.Max(d.X2-d.X1, d.Y2-d.Y1) * faceEnlarge
	return cx - side/2, cy - side/2, cx + side/2, cy + side/2
}

// emotionInput prepares one face for the emotion model: crop-and-resize
// to 256×256, /255, resize to 64×64 (tfjs bilinear), grey (0.2989 R +
// 0.587 G + 0.114 B), then (g − 0.5)·2.
func emotionInput(im *rgbImage, d det, dst []float32) {
	x1, y1, x2, y2 := emotionCrop(d)
	small := im.cropResize(x1, y1, x2, y2, faceCrop, faceCrop, emotionSize, emotionSize)
	for i := range dst {
		r, g, b := small[3*i]/255, small[3*i+1]/255, small[3*i+2]/255
		grey := 0.2989*r + 0.5870*g + 0.1140*b
		dst[i] = (grey - 0.5) * 2
	}
}

// emotionBatch is how many faces go into one emotion-model run.
const emotionBatch = 32

// emotions scores every face; result i has the 7 probabilities of face i.
func (p *Provider) emotions(ctx context.Context, im *rgbImage, ds []det) ([][]float32, error) {
	out := make([][]float32, 0, len(ds))
	const n = emotionSize * emotionSize
	for start := 0; start < len(ds); start += emotionBatch {
		batch := ds[start:min(len(ds), start+emotionBatch)]
		in := make([]float32, len(batch)*n)
		for i, d := range batch {
			emotionInput(im, d, in[i*n:(i+1)*n])
		}
		res, err := p.emotion.run(ctx, []int{len(batch), emotionSize, emotionSize, 1}, in)
		if err != nil {
			return nil, fmt.Errorf("local: emotion: %w", err)
		}
		t := res[0]
		if len(t.Data) != 7*len(batch) {
			return nil, fmt.Errorf("local: emotion output shape %v for %d faces", t.Shape, len(batch))
		}
		for i := range batch {
			out = append(out, t.Data[7*i:7*i+7])
		}
	}
	return out, nil
}
