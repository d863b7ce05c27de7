package vision

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/aws/smithy-go"
)

// RekognitionConfig configures the AWS Rekognition provider.
type RekognitionConfig struct {
	Name   string // registered name, default "rekognition"
	Region string // default us-east-1
	// Endpoint overrides the service endpoint (tests, VPC endpoints).
	Endpoint string
	// CredentialsID is the aws-credentials entry (accessKeyId,
	// secretAccessKey) used when a call names none ("credentials" option).
	CredentialsID string
	Credentials   CredentialStore
	// Timeout bounds one call, retries included (default 30s).
	Timeout time.Duration
	// MaxAttempts is the SDK's attempts per call (default 3: throttling
	// and 5xx answers are retried with back-off).
	MaxAttempts int
	HTTP        *http.Client
}

// Rekognition is the rekognition provider.
//
// Tasks: "faces" is DetectFaces with Attributes ALL, its FaceDetails
// returned as Rekognition's JSON (it IS the faces shape); "people" is
// DetectLabels' "Person" label instances (a box per person Rekognition
// locates, MinScore as MinConfidence). "prompt" is not supported.
// Images must be at most 5 MB (Rekognition's limit for bytes).
//
// Per-call options: "credentials" (an aws-credentials id), "region".
type Rekognition struct{ cfg RekognitionConfig }

// MaxRekognitionImage is Rekognition's limit for image bytes.
const MaxRekognitionImage = 5 << 20

// NewRekognition creates the Rekognition provider.
func NewRekognition(cfg RekognitionConfig) *Rekognition {
	if cfg.Name == "" {
		cfg.Name = "rekognition"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	return &Rekognition{cfg: cfg}
}

// Name implements Provider.
func (p *Rekognition) Name() string { return p.cfg.Name }

func (p *Rekognition) client(ctx context.Context, opts map[string]any) (*rekognition.Client, error) {
	id := firstNonEmpty(optString(opts, "credentials"), p.cfg.CredentialsID)
	if id == "" {
		return nil, errInvalid("%s: no AWS credentials: name an aws-credentials entry (credentials)", p.cfg.Name)
	}
	c, err := getCredential(ctx, p.cfg.Credentials, p.cfg.Name, id, "aws-credentials")
	if err != nil {
		return nil, err
	}
	o := rekognition.Options{
		Region:           firstNonEmpty(optString(opts, "region"), p.cfg.Region),
		Credentials:      aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(c.Values["accessKeyId"], c.Values["secretAccessKey"], "")),
		RetryMaxAttempts: p.cfg.MaxAttempts,
	}
	if p.cfg.Endpoint != "" {
		o.BaseEndpoint = aws.String(p.cfg.Endpoint)
	}
	if p.cfg.HTTP != nil {
		o.HTTPClient = p.cfg.HTTP
	}
	return rekognition.New(o), nil
}

// Analyze implements Provider.
func (p *Rekognition) Analyze(ctx context.Context, req *Request) (map[string]any, error) {
	name := p.cfg.Name
	switch req.Task {
	case TaskFaces, TaskPeople:
	case TaskPrompt:
		return nil, errInvalid("%s: the prompt task is not supported (use openai or another chat provider)", name)
	default:
		return nil, errInvalid("%s: unknown task %q (people or faces)", name, req.Task)
	}
	if len(req.Image) == 0 {
		return nil, errInvalid("%s: no image", name)
	}
	if len(req.Image) > MaxRekognitionImage {
		return nil, errTooLarge("%s: the image has %d bytes; Rekognition takes at most %d", name, len(req.Image), MaxRekognitionImage)
	}
	cl, err := p.client(ctx, req.Options)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	img := &types.Image{Bytes: req.Image}
	if req.Task == TaskFaces {
		out, err := cl.DetectFaces(ctx, &rekognition.DetectFacesInput{Image: img, Attributes: []types.Attribute{types.AttributeAll}})
		if err != nil {
			return nil, p.error(err)
		}
		faces, err := awsJSON(out.FaceDetails)
		if err != nil {
			return nil, err
		}
		if faces == nil {
			faces = []any{}
		}
		if req.ROI != nil || req.MinScore > 0 {
			faces = filterFaces(faces.([]any), req.ROI, req.MinScore)
		}
		return map[string]any{"FaceDetails": faces}, nil
	}
	in := &rekognition.DetectLabelsInput{Image: img, Features: []types.DetectLabelsFeatureName{types.DetectLabelsFeatureNameGeneralLabels},
		Settings: &types.DetectLabelsSettings{GeneralLabels: &types.GeneralLabelsSettings{LabelInclusionFilters: []string{"Person"}}}}
	if req.MinScore > 0 {
		in.MinConfidence = aws.Float32(float32(req.MinScore * 100))
	}
	out, err := cl.DetectLabels(ctx, in)
	if err != nil {
		return nil, p.error(err)
	}
	boxes := []any{}
	for _, l := range out.Labels {
		if aws.ToString(l.Name) != "Person" {
			continue
		}
		for _, inst := range l.Instances {
			bb := inst.BoundingBox
			if bb == nil {
				continue
			}
			r := Rect{float64(aws.ToFloat32(bb.Left)), float64(aws.ToFloat32(bb.Top)), float64(aws.ToFloat32(bb.Width)), float64(aws.ToFloat32(bb.Height))}
			if req.ROI != nil && !centerIn(r, *req.ROI) {
				continue
			}
			boxes = append(boxes, map[string]any{"Left": r.Left, "Top": r.Top, "Width": r.Width, "Height": r.Height,
				"Confidence": float64(aws.ToFloat32(inst.Confidence))})
		}
	}
	return map[string]any{"person_count": len(boxes), "boxes": boxes, "crowding_level": CrowdingLevel(len(boxes), req.Capacity)}, nil
}

// error classifies an SDK error: Rekognition's client errors (bad image,
// bad parameters, access denied) are permanent; throttling, server errors
// and timeouts are retryable.
func (p *Rekognition) error(err error) error {
	name := p.cfg.Name
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return errTransport(name, err)
	}
	code, msg := ae.ErrorCode(), ae.ErrorMessage()
	text := name + ": " + code
	if msg != "" {
		text += ": " + quote(msg, 500)
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch code {
	case "InvalidImageFormatException", "InvalidS3ObjectException":
		return newError(http.StatusUnprocessableEntity, CodeBadImage, false, err, "%s", text)
	case "ImageTooLargeException":
		return newError(http.StatusRequestEntityTooLarge, "LRG0001", false, err, "%s", text)
	case "ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError", "ServiceUnavailableException", "LimitExceededException":
		return newError(http.StatusBadGateway, CodeProvider, true, err, "%s", text)
	}
	if status >= 500 || status == http.StatusTooManyRequests || ae.ErrorFault() == smithy.FaultServer {
		return newError(http.StatusBadGateway, CodeProvider, true, err, "%s", text)
	}
	return newError(http.StatusUnprocessableEntity, CodeRejected, false, err, "%s", text)
}

// awsJSON is an SDK value as Rekognition's JSON: the SDK's field names
// are the wire names; absent (nil) members are dropped.
func awsJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return dropNulls(out), nil
}

func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = dropNulls(e)
		}
	case []any:
		for i, e := range x {
			x[i] = dropNulls(e)
		}
	}
	return v
}

// filterFaces keeps faces whose box centre lies in roi and whose
// Confidence reaches minScore (0..1).
func filterFaces(faces []any, roi *Rect, minScore float64) []any {
	out := make([]any, 0, len(faces))
	for _, f := range faces {
		fm, _ := f.(map[string]any)
		if minScore > 0 {
			if c, ok := num(fm["Confidence"]); ok && c < minScore*100 {
				continue
			}
		}
		if roi != nil {
			bb, _ := fm["BoundingBox"].(map[string]any)
			l, _ := num(bb["Left"])
			t, _ := num(bb["Top"])
			w, _ := num(bb["Width"])
			h, _ := num(bb["Height"])
			if !centerIn(Rect{l, t, w, h}, *roi) {
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// centerIn reports whether r's centre lies inside roi.
func centerIn(r, roi Rect) bool {
	cx, cy := r.Left+r.Width/2, r.Top+r.Height/2
	return cx >= roi.Left && cx <= roi.Left+roi.Width && cy >= roi.Top && cy <= roi.Top+roi.Height
}
