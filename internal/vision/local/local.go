// Package local is nagare's offline vision provider ("local"): people
// counting with NanoDet-g-416 and face detection with BlazeFace plus a
// 7-class emotion classifier per face, all run in pure Go by the tfjs
// executor on the models of the pinned npm package (see package models).
//
// Pre- and post-processing follow each model's training rather than the
// shortcuts of the Human library (reference/vision.md §3): frames are
// letterboxed (padded to a square, not stretched), NanoDet gets BGR input
// normalised with its mean/std and its boxes are decoded with the GFL
// integral (softmax over 11 distance bins per side), and BlazeFace uses
// MediaPipe's weighted NMS. Large frames are also analysed in 2×2
// overlapping tiles (plus the full frame) unless the people in them are
// large, and boxes around two side-by-side people are suppressed.
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/vision"
	"github.com/nagare-iot/nagare/internal/vision/models"
	"github.com/nagare-iot/nagare/internal/vision/tfjs"
)

// Tiling modes for people counting.
const (
	TilingAuto   = "auto"   // tile large frames unless the people found are large (default)
	TilingOff    = "off"    // one pass over the letterboxed frame
	TilingAlways = "always" // full frame plus 2×2 tiles on every frame
)

// Options tune the provider; zero values take the defaults.
type Options struct {
	PersonMinScore float64 // NanoDet person score threshold, 0..1 (default 0.3)
	PersonIoU      float64 // NMS IoU for people (default 0.5)
	FaceMinScore   float64 // BlazeFace score threshold, 0..1 (default 0.5)
	FaceIoU        float64 // weighted-NMS IoU for faces (default 0.3)
	MaxPeople      int     // at most this many people per frame (default 300)
	MaxFaces       int     // at most this many faces per frame (default 100)
	Tiling         string  // TilingAuto (default), TilingOff or TilingAlways
}

func (o Options) withDefaults() Options {
	if o.PersonMinScore <= 0 {
		o.PersonMinScore = 0.3
	}
	if o.PersonIoU <= 0 {
		o.PersonIoU = 0.5
	}
	if o.FaceMinScore <= 0 {
		o.FaceMinScore = 0.5
	}
	if o.FaceIoU <= 0 {
		o.FaceIoU = 0.3
	}
	if o.MaxPeople <= 0 {
		o.MaxPeople = 300
	}
	if o.MaxFaces <= 0 {
		o.MaxFaces = 100
	}
	if o.Tiling == "" {
		o.Tiling = TilingAuto
	}
	return o
}

// Provider is the "local" vision provider. It is safe for concurrent use.
type Provider struct {
	opts    Options
	face    *netModel
	emotion *netModel
	person  *netModel
}

// netModel is a loaded model with its single input.
type netModel struct {
	m       *tfjs.Model
	input   string
	shape   []int // input shape
	outputs []string
}

func loadModel(fsys fs.FS, file string, want []int) (*netModel, error) {
	m, err := tfjs.Load(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("local: load %s: %w", file, err)
	}
	ins := m.Inputs()
	if len(ins) != 1 {
		return nil, fmt.Errorf("local: %s: want 1 input, model has %d", file, len(ins))
	}
	in := ins[0]
	if len(in.Shape) != len(want) {
		return nil, fmt.Errorf("local: %s: input shape %v, want %v", file, in.Shape, want)
	}
	for i, d := range want {
		if d > 0 && in.Shape[i] > 0 && in.Shape[i] != d {
			return nil, fmt.Errorf("local: %s: input shape %v, want %v", file, in.Shape, want)
		}
	}
	nm := &netModel{m: m, input: in.Name, shape: in.Shape}
	for _, o := range m.Outputs() {
		nm.outputs = append(nm.outputs, o.Name)
	}
	if len(nm.outputs) == 0 {
		return nil, fmt.Errorf("local: %s: model has no outputs", file)
	}
	return nm, nil
}

// run feeds one input tensor and returns every output.
func (n *netModel) run(ctx context.Context, shape []int, data []float32) ([]*tfjs.Tensor, error) {
	res, err := n.m.Run(ctx, map[string]*tfjs.Tensor{n.input: tfjs.NewTensor(shape, data)}, n.outputs...)
	if err != nil {
		return nil, err
	}
	out := make([]*tfjs.Tensor, 0, len(n.outputs))
	for _, name := range n.outputs {
		t := res[name]
		if t == nil {
			return nil, fmt.Errorf("local: model output %s missing", name)
		}
		out = append(out, t)
	}
	return out, nil
}

// New loads the three models (files named as in package models) and
// returns the provider.
func New(modelFS fs.FS, opts Options) (*Provider, error) {
	if modelFS == nil {
		return nil, errors.New("local: no model files")
	}
	opts = opts.withDefaults()
	switch opts.Tiling {
	case TilingAuto, TilingOff, TilingAlways:
	default:
		return nil, fmt.Errorf("local: unknown tiling mode %q", opts.Tiling)
	}
	p := &Provider{opts: opts}
	var err error
	if p.face, err = loadModel(modelFS, models.BlazeFace, []int{1, faceSize, faceSize, 3}); err != nil {
		return nil, err
	}
	if p.emotion, err = loadModel(modelFS, models.Emotion, []int{-1, emotionSize, emotionSize, 1}); err != nil {
		return nil, err
	}
	if p.person, err = loadModel(modelFS, models.NanoDet, []int{1, 3, personSize, personSize}); err != nil {
		return nil, err
	}
	return p, nil
}

// Name implements vision.Provider.
func (p *Provider) Name() string { return "local" }

// Box is a detection in fractions of the image (0..1) with its
// confidence in percent (0–100), as Rekognition reports them.
type Box struct {
	Left, Top, Width, Height float64
	Confidence               float64
}

// Emotion is one emotion score of a face (Rekognition names, 0–100).
type Emotion struct {
	Type       string
	Confidence float64
}

// Face is a detected face with its emotions, sorted by confidence
// (highest first).
type Face struct {
	Box
	Emotions []Emotion
}

// TopEmotion returns the face's most likely emotion type.
func (f Face) TopEmotion() string {
	if len(f.Emotions) == 0 {
		return ""
	}
	return f.Emotions[0].Type
}

// Analyze implements vision.Provider for the "people" and "faces" tasks.
//
// Request.Options understood: "tiling" ("auto", "off", "always").
func (p *Provider) Analyze(ctx context.Context, req *vision.Request) (map[string]any, error) {
	if req == nil {
		return nil, badRequest("local: no request")
	}
	switch req.Task {
	case vision.TaskPeople, vision.TaskFaces:
	case vision.TaskPrompt:
		return nil, badRequest("the local provider does not support the %q task (free-form prompts need the openai provider)", req.Task)
	default:
		return nil, badRequest("local: unknown task %q (want people or faces)", req.Task)
	}
	if len(req.Image) == 0 {
		return nil, badImage(errNoImage)
	}
	if req.MinScore < 0 || req.MinScore > 1 {
		return nil, badRequest("local: minScore %v is outside 0..1", req.MinScore)
	}
	if req.ROI != nil {
		if err := checkROI(*req.ROI); err != nil {
			return nil, err
		}
	}
	tiling := p.opts.Tiling
	if v, ok := req.Options["tiling"]; ok {
		s, _ := v.(string)
		switch s {
		case TilingAuto, TilingOff, TilingAlways:
			tiling = s
		default:
			return nil, badRequest("local: options.tiling must be auto, off or always")
		}
	}
	im, err := decodeImage(req.Image)
	if err != nil {
		return nil, badImage(err)
	}
	switch req.Task {
	case vision.TaskPeople:
		boxes, err := p.people(ctx, im, req.ROI, req.MinScore, tiling)
		if err != nil {
			return nil, err
		}
		list := make([]any, len(boxes))
		for i, b := range boxes {
			list[i] = b.toMap()
		}
		out := map[string]any{"person_count": len(boxes), "boxes": list}
		if req.Capacity > 0 {
			out["crowding_level"] = vision.CrowdingLevel(len(boxes), req.Capacity)
		}
		return out, nil
	default:
		faces, err := p.faces(ctx, im, req.ROI, req.MinScore)
		if err != nil {
			return nil, err
		}
		list := make([]any, len(faces))
		for i, f := range faces {
			emos := make([]any, len(f.Emotions))
			for j, e := range f.Emotions {
				emos[j] = map[string]any{"Type": e.Type, "Confidence": round2(e.Confidence)}
			}
			list[i] = map[string]any{
				"BoundingBox": map[string]any{"Width": round4(f.Width), "Height": round4(f.Height), "Left": round4(f.Left), "Top": round4(f.Top)},
				"Confidence":  round2(f.Confidence),
				"Emotions":    emos,
			}
		}
		return map[string]any{"FaceDetails": list}, nil
	}
}

// People counts the people in a JPEG or PNG image (NanoDet persons). With
// roi, only people whose box centre lies inside it are returned. minScore
// 0 means the provider's default.
func (p *Provider) People(ctx context.Context, img []byte, roi *vision.Rect, minScore float64) ([]Box, error) {
	im, err := decodeImage(img)
	if err != nil {
		return nil, err
	}
	return p.people(ctx, im, roi, minScore, p.opts.Tiling)
}

// Faces finds the faces in a JPEG or PNG image and scores their emotions.
func (p *Provider) Faces(ctx context.Context, img []byte, minScore float64) ([]Face, error) {
	im, err := decodeImage(img)
	if err != nil {
		return nil, err
	}
	return p.faces(ctx, im, nil, minScore)
}

func (b Box) toMap() map[string]any {
	return map[string]any{
		"Left": round4(b.Left), "Top": round4(b.Top), "Width": round4(b.Width), "Height": round4(b.Height),
		"Confidence": round2(b.Confidence),
	}
}

// boxOf converts a frame-pixel detection to a Box (clipped to the frame).
func boxOf(d det, w, h int) Box {
	W, H := float64(w), float64(h)
	x1, y1 := clamp(d.X1, 0, W), clamp(d.Y1, 0, H)
	x2, y2 := clamp(d.X2, 0, W), clamp(d.Y2, 0, H)
	return Box{Left: x1 / W, Top: y1 / H, Width: (x2 - x1) / W, Height: (y2 - y1) / H, Confidence: 100 * d.Score}
}

// inROI reports whether the detection's centre lies inside roi.
func inROI(d det, roi *vision.Rect, w, h int) bool {
	if roi == nil {
		return true
	}
	cx, cy := d.centre()
	fx, fy := cx/float64(w), cy/float64(h)
	return fx >= roi.Left && fx <= roi.Left+roi.Width && fy >= roi.Top && fy <= roi.Top+roi.Height
}

func checkROI(r vision.Rect) error {
	if r.Width <= 0 || r.Height <= 0 || r.Left < 0 || r.Top < 0 || r.Left+r.Width > 1+1e-9 || r.Top+r.Height > 1+1e-9 {
		return badRequest("local: roi must lie inside the image (fractions 0..1 with positive width and height)")
	}
	return nil
}

func badRequest(format string, args ...any) error {
	return &vision.Error{Status: http.StatusBadRequest, Code: api.CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

func badImage(err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "local: ") {
		msg = "local: " + msg
	}
	return &vision.Error{Status: http.StatusUnprocessableEntity, Code: vision.CodeBadImage, Message: msg, Err: err}
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func round2(v float64) float64 { return math.Round(v*100) / 100 }
func round4(v float64) float64 { return math.Round(v*10000) / 10000 }

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// sortDets orders detections top-to-bottom, then left-to-right (stable output
// for tests and dashboards).
func sortDets(ds []det) {
	sort.SliceStable(ds, func(i, j int) bool {
		if math.Abs(ds[i].Y1-ds[j].Y1) > 1e-9 {
			return ds[i].Y1 < ds[j].Y1
		}
		return ds[i].X1 < ds[j].X1
	})
}
