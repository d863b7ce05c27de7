// Package vision is nagare's image-analysis layer: a small provider
// contract (people counting, Rekognition-shaped face details, free-form
// prompts), the cloud providers (OpenAI-compatible chat completions, AWS
// Rekognition), the Service that selects a provider per call and the
// POST /v1/vision/analyze API operation.
//
// The accurate offline default is the "local" provider (package
// internal/vision/local), registered by the server wiring.
package vision

import (
	"context"
	"math"
)

// Rect is a region of an image in fractions of the image (0..1),
// Rekognition-style.
type Rect struct{ Left, Top, Width, Height float64 }

// Tasks understood by providers.
const (
	TaskPeople = "people"
	TaskFaces  = "faces"
	TaskPrompt = "prompt"
)

// Request is one analysis call.
type Request struct {
	Task     string  // "people" | "faces" | "prompt"
	Image    []byte  // JPEG or PNG
	Prompt   string  // the prompt task's prompt (already rendered); extra instructions for the others
	Capacity int     // seats/places for crowding_level (≤ 0: unknown)
	ROI      *Rect   // only count/detect inside this region (nil: whole image)
	MinScore float64 // detection threshold 0..1 (0: the provider's default)
	// Options are provider-specific per-call settings, e.g. for openai
	// "model", "credentials", "json", "detail", "maxTokens", "imageUrl".
	Options map[string]any
}

// Provider analyzes one image.
//
// Result shapes (Confidence values are percentages 0–100, boxes are
// fractions of the image, both as Rekognition reports them):
//
//	people → {"person_count": n, "boxes": [{"Left","Top","Width","Height","Confidence"}], "crowding_level": f}
//	faces  → {"FaceDetails": [{"BoundingBox": {"Left","Top","Width","Height"}, "Confidence", "Emotions": [{"Type","Confidence"}]}]}
//	prompt → {"output": <text>, "json": <parsed JSON if the reply is JSON>}
type Provider interface {
	Name() string
	Analyze(ctx context.Context, req *Request) (map[string]any, error)
}

// Annotator draws what a result found (the "boxes" of a people result,
// the FaceDetails' BoundingBox of a faces result) onto a copy of img and
// returns the encoded copy and its content type ("image/jpeg" or
// "image/png"). The server sets Options.Annotator from the local package.
type Annotator func(img []byte, result map[string]any) (annotated []byte, contentType string, err error)

// CrowdingLevel is a people result's "crowding_level": person count per
// seat in percent (0–100, above 100 when more people than seats), rounded
// to one decimal, as seed 000 asks for ("座席数に対する着席している人数の割合
// (0-100)"). It is nil (JSON null) when the capacity is unknown (≤ 0).
func CrowdingLevel(count, capacity int) any {
	if capacity <= 0 {
		return nil
	}
	return math.Round(float64(count)*1000/float64(capacity)) / 10
}
