package flow

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Analyzer analyzes an image for the ai action (Deps.Vision; the server
// sets it to the vision.Service). req has the shape of the
// POST /v1/vision/analyze body: task, provider, prompt, capacity, roi,
// model, credentials, json, image (a string: an http(s) URL,
// "files:/path", a data: URL or base64) and annotate (a Harvest Files
// path). The result is the provider's (people, faces or prompt shape).
// An error with a Temporary() bool method says itself whether a retry
// may help; other errors are classified like API errors.
type Analyzer interface {
	Analyze(ctx context.Context, operatorID string, req map[string]any) (map[string]any, error)
}

// aiFields are the ai action's fields (registered in components.go).
var aiFields = []Field{
	{Name: "task", Type: TEnum, Enum: []string{"people", "faces", "prompt"}, Default: "prompt", Doc: "people: `{person_count, boxes, crowding_level}`; faces: Rekognition's `{FaceDetails}` with Emotions; prompt: `{output, json}`"},
	{Name: "provider", Type: TString, Doc: "local (offline), openai, rekognition, or another configured one; default: the server's vision-provider"},
	{Name: "prompt", Type: TTemplate, Doc: "the prompt (task prompt, required there); extra instructions for people/faces with a chat provider"},
	{Name: "image", Type: TTemplate, Doc: "http(s) URL, `files:/path` (Harvest Files), data: URL or base64; default: the payload's `url`, else `presignedUrls.get`"},
	{Name: "capacity", Type: TInt, Min: 1, Max: 1000000, Doc: "places/seats: crowding_level = person_count / capacity in percent"},
	{Name: "roi", Type: TAny, Doc: "region of interest `{Left, Top, Width, Height}` in fractions of the image (people, faces)"},
	{Name: "model", Type: TString, Doc: "model (chat providers), e.g. gpt-4o-mini; default: the provider's"},
	{Name: "credentials", Type: TCredential, Doc: "api-token-credentials (openai) or aws-credentials (rekognition); default: the provider's"},
	{Name: "json", Type: TBool, Doc: "chat providers: ask for a JSON reply (response_format json_object); default: when the prompt mentions JSON"},
	{Name: "annotate", Type: TTemplate, Doc: "store a copy of the image with the boxes drawn at this Harvest Files path, e.g. /annotated/${now()}.jpg"},
	{Name: "merge", Type: TBool, Default: true, Doc: "true: the output is the payload with the result's keys added; false: the result alone"},
}

const aiSummary = "Analyzes an image: counts people, finds faces and their emotions, or asks a multimodal model a prompt — offline with the local provider, or through OpenAI-compatible servers or AWS Rekognition. " +
	"Output: the payload merged with the result (see task). Cloud calls often need a longer `timeout` than the default 10s. " +
	"Provider 5xx, rate limits and timeouts are retried; refused requests and unreadable images fail at once."

// checkAI validates the fields that span one another.
func checkAI(cfg map[string]any) []string {
	var out []string
	task, _ := cfg["task"].(string)
	if p, _ := cfg["prompt"].(string); (task == "prompt" || task == "") && strings.TrimSpace(p) == "" {
		out = append(out, "the prompt task needs a prompt")
	}
	if roi, ok := cfg["roi"]; ok && roi != nil {
		m, ok := roi.(map[string]any)
		if !ok {
			out = append(out, "roi must be an object {Left, Top, Width, Height}")
		} else {
			for k := range m {
				switch strings.ToLower(k) {
				case "left", "top", "width", "height":
				default:
					out = append(out, fmt.Sprintf("roi: unknown key %q (Left, Top, Width, Height)", k))
				}
			}
		}
	}
	return out
}

func runAI(ctx context.Context, c *Call) (any, error) {
	cfg := c.Config
	if c.Deps == nil || c.Deps.Vision == nil {
		return nil, Permanent(errors.New("ai action: image analysis (vision) is not configured on this server"))
	}
	req := map[string]any{"task": cfgString(cfg, "task")}
	if req["task"] == "" {
		req["task"] = "prompt"
	}
	for _, k := range []string{"provider", "prompt", "model", "credentials"} {
		if v := cfgString(cfg, k); v != "" {
			req[k] = v
		}
	}
	if n := cfgInt(cfg, "capacity", 0); n > 0 {
		req["capacity"] = n
	}
	if roi, ok := cfg["roi"]; ok && roi != nil {
		req["roi"] = roi
	}
	if v, ok := cfg["json"].(bool); ok {
		req["json"] = v
	}
	if p := strings.TrimSpace(cfgString(cfg, "annotate")); p != "" {
		req["annotate"] = p
	}
	img := strings.TrimSpace(cfgString(cfg, "image"))
	if img == "" {
		img = payloadImage(c.Input)
	}
	if img == "" {
		return nil, Permanent(errors.New("ai action: no image: set image, or send a payload with url or presignedUrls.get"))
	}
	req["image"] = img

	res, err := c.Deps.Vision.Analyze(ctx, c.OperatorID, req)
	if err != nil {
		return nil, aiError(err)
	}
	if res == nil {
		res = map[string]any{}
	}
	merge, ok := cfg["merge"].(bool)
	if !ok {
		merge = true
	}
	in, isObject := c.Input.(map[string]any)
	if !merge || !isObject {
		return res, nil
	}
	out := make(map[string]any, len(in)+len(res))
	for k, v := range in {
		out[k] = v
	}
	for k, v := range res {
		out[k] = v
	}
	return out, nil
}

// payloadImage is the default image: the payload's url (a SoraCam export,
// seed 000), else presignedUrls.get (a Files event).
func payloadImage(input any) string {
	m, ok := input.(map[string]any)
	if !ok {
		return ""
	}
	if u, ok := m["url"].(string); ok && strings.TrimSpace(u) != "" {
		return u
	}
	if pu, ok := m["presignedUrls"].(map[string]any); ok {
		if g, ok := pu["get"].(string); ok {
			return g
		}
	}
	return ""
}

// aiError classifies an analysis error: one that knows whether it is
// temporary says so; API errors go by status; anything else is retried.
func aiError(err error) error {
	if IsPermanent(err) {
		return err
	}
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		if t.Temporary() {
			return fmt.Errorf("ai: %w", err)
		}
		return Permanent(fmt.Errorf("ai: %w", err))
	}
	return apiError("ai", err)
}
