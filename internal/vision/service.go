package vision

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig checks JPEGs
	_ "image/png"  // and PNGs
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/harvest"
)

// DefaultMaxImageBytes bounds an image (download, base64 or file).
const DefaultMaxImageBytes = 20 << 20

// Options configure the Service.
type Options struct {
	// DefaultProvider is used when a call names none (default "local").
	DefaultProvider string
	// HTTP downloads image URLs. The server passes a client whose dialer
	// enforces its network policy; redirects are limited to http(s) and
	// at most 5 whatever the client says. Default: a plain client.
	HTTP *http.Client
	// FetchTimeout bounds an image download (default 20s).
	FetchTimeout time.Duration
	// MaxImageBytes bounds an image (default 20 MiB).
	MaxImageBytes int64
	// Blobs is the store Harvest Files live in: a "filesPath" image is
	// read from the key "<operatorID>/<path>" (harvest.Files' layout).
	Blobs *blob.Store
	// Files stores annotated images.
	Files *harvest.Files
	// Annotator draws results for "annotate"; nil: annotation answers 501.
	Annotator Annotator
}

// Service selects a provider per call, loads images and answers
// POST /v1/vision/analyze. It also satisfies flow.Analyzer (Analyze).
type Service struct {
	opts Options

	mu        sync.RWMutex
	providers map[string]Provider
}

// New creates the service. Providers are added with AddProvider.
func New(opts Options) *Service {
	if opts.DefaultProvider == "" {
		opts.DefaultProvider = "local"
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 20 * time.Second
	}
	if opts.MaxImageBytes <= 0 {
		opts.MaxImageBytes = DefaultMaxImageBytes
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{}
	}
	return &Service{opts: opts, providers: map[string]Provider{}}
}

// AddProvider registers p under p.Name(), replacing one of that name.
func (s *Service) AddProvider(p Provider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.providers[p.Name()] = p
}

// Provider returns the provider registered under name.
func (s *Service) Provider(name string) (Provider, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.providers[name]
	return p, ok
}

// ProviderNames lists the registered providers, sorted.
func (s *Service) ProviderNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.providers))
	for n := range s.providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DefaultProvider is the provider used when a call names none.
func (s *Service) DefaultProvider() string { return s.opts.DefaultProvider }

// AnalyzeRequest is the body of POST /v1/vision/analyze, and what the
// flow ai action sends (as a map, see Analyze).
type AnalyzeRequest struct {
	Task        string      `json:"task"`               // people | faces | prompt
	Provider    string      `json:"provider,omitempty"` // default: the service's default
	Prompt      string      `json:"prompt,omitempty"`
	Capacity    int         `json:"capacity,omitempty"`
	ROI         *Rect       `json:"roi,omitempty"`      // {"Left","Top","Width","Height"} fractions
	MinScore    float64     `json:"minScore,omitempty"` // 0..1
	Model       string      `json:"model,omitempty"`
	Credentials string      `json:"credentials,omitempty"` // credentials store id
	JSON        *bool       `json:"json,omitempty"`        // openai: JSON mode (default: on when the prompt mentions JSON)
	Image       ImageSource `json:"image"`
	Annotate    *Annotate   `json:"annotate,omitempty"`
	// Options are passed to the provider as they are (see Request.Options).
	Options map[string]any `json:"options,omitempty"`
}

// ImageSource names the image: exactly one of URL (http or https; data:
// URLs too), Base64 (plain or a data: URL) and FilesPath (a Harvest
// Files path). In JSON it may also be a string: an http(s) URL, a data:
// URL, "files:/path", or plain base64.
type ImageSource struct {
	URL       string `json:"url,omitempty"`
	Base64    string `json:"base64,omitempty"`
	FilesPath string `json:"filesPath,omitempty"`
	// PassURL hands URL to the provider as it is instead of downloading
	// it (openai only; the provider's server must reach the URL). Not
	// possible together with annotate.
	PassURL bool `json:"passUrl,omitempty"`
}

// UnmarshalJSON accepts the object form or a string.
func (s *ImageSource) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		*s = ParseImageString(str)
		return nil
	}
	type plain ImageSource
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	*s = ImageSource(p)
	return nil
}

// ParseImageString reads the string form of an image: an http(s) URL,
// "files:/path", a data: URL or plain base64.
func ParseImageString(str string) ImageSource {
	t := strings.TrimSpace(str)
	lower := strings.ToLower(t)
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		return ImageSource{URL: t}
	case strings.HasPrefix(lower, "files:"):
		return ImageSource{FilesPath: t[len("files:"):]}
	}
	return ImageSource{Base64: t}
}

// Annotate asks for a copy of the image with the result's boxes drawn,
// stored in Harvest Files.
type Annotate struct {
	FilePath string `json:"filePath"`
}

// UnmarshalJSON accepts {"filePath"} or the path as a string.
func (a *Annotate) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		a.FilePath = str
		return nil
	}
	type plain Annotate
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("annotate: %w", err)
	}
	*a = Annotate(p)
	return nil
}

// Run analyzes one image for an operator. The result is the provider's
// (see Provider), plus "annotated": {"filePath","contentType"} when an
// annotated copy was stored. Errors are *Error (or *api.Error from
// Harvest Files, or internal failures).
func (s *Service) Run(ctx context.Context, operatorID string, in *AnalyzeRequest) (map[string]any, error) {
	switch in.Task {
	case TaskPeople, TaskFaces, TaskPrompt:
	case "":
		return nil, errInvalid("task is required (people, faces or prompt)")
	default:
		return nil, errInvalid("task %q is not people, faces or prompt", in.Task)
	}
	if in.Capacity < 0 {
		return nil, errInvalid("capacity must not be negative")
	}
	if in.MinScore < 0 || in.MinScore > 1 {
		return nil, errInvalid("minScore must be within 0..1")
	}
	if r := in.ROI; r != nil && (r.Left < 0 || r.Top < 0 || r.Width <= 0 || r.Height <= 0 || r.Left+r.Width > 1.0001 || r.Top+r.Height > 1.0001) {
		return nil, errInvalid("roi must be a non-empty rectangle inside the image, in fractions (0..1) of its width and height")
	}
	name := in.Provider
	if name == "" {
		name = s.opts.DefaultProvider
	}
	p, ok := s.Provider(name)
	if !ok {
		return nil, errInvalid("provider %q is not available (available: %s)", name, strings.Join(s.ProviderNames(), ", "))
	}
	annotate := in.Annotate != nil && in.Annotate.FilePath != ""
	if annotate {
		if s.opts.Annotator == nil || s.opts.Files == nil {
			return nil, newError(http.StatusNotImplemented, CodeNotImplemented, false, nil, "annotated images are not available on this server")
		}
		if _, err := harvest.CleanPath(in.Annotate.FilePath, false); err != nil {
			return nil, err
		}
	}

	req := &Request{Task: in.Task, Prompt: in.Prompt, Capacity: in.Capacity, ROI: in.ROI, MinScore: in.MinScore, Options: map[string]any{}}
	for k, v := range in.Options {
		req.Options[k] = v
	}
	if in.Model != "" {
		req.Options["model"] = in.Model
	}
	if in.Credentials != "" {
		req.Options["credentials"] = in.Credentials
	}
	if in.JSON != nil {
		req.Options["json"] = *in.JSON
	}
	if in.Image.PassURL {
		if annotate {
			return nil, errInvalid("image.passUrl cannot be combined with annotate (the image is needed here)")
		}
		if _, err := imageURL(in.Image.URL); err != nil {
			return nil, err
		}
		req.Options["imageUrl"] = in.Image.URL
	} else {
		img, err := s.LoadImage(ctx, operatorID, &in.Image)
		if err != nil {
			return nil, err
		}
		req.Image = img
	}

	res, err := p.Analyze(WithOperator(ctx, operatorID), req)
	if err != nil {
		return nil, err
	}
	if res == nil {
		res = map[string]any{}
	}
	if annotate {
		out, ct, err := s.opts.Annotator(req.Image, res)
		if err != nil {
			return nil, fmt.Errorf("annotating the image: %w", err)
		}
		e, _, err := s.opts.Files.Put(ctx, operatorID, in.Annotate.FilePath, ct, bytes.NewReader(out))
		if err != nil {
			return nil, err
		}
		res["annotated"] = map[string]any{"filePath": e.FilePath, "contentType": e.ContentType}
	}
	return res, nil
}

// Analyze is Run taking and returning plain maps, for flow's ai action
// (flow.Analyzer): req has AnalyzeRequest's JSON shape, and "image" and
// "annotate" may be strings.
func (s *Service) Analyze(ctx context.Context, operatorID string, req map[string]any) (map[string]any, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, errInvalid("request: %v", err)
	}
	var in AnalyzeRequest
	if err := api.UnmarshalStrict(b, &in); err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			return nil, errInvalid("%s", ae.Message)
		}
		return nil, errInvalid("%v", err)
	}
	return s.Run(ctx, operatorID, &in)
}

// LoadImage reads an image from its source, checks that it is a JPEG or
// PNG within the size limit and returns its bytes.
func (s *Service) LoadImage(ctx context.Context, operatorID string, src *ImageSource) ([]byte, error) {
	n := 0
	for _, v := range []string{src.URL, src.Base64, src.FilesPath} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return nil, errInvalid("image needs exactly one of url, base64 and filesPath")
	}
	var (
		img []byte
		err error
	)
	switch {
	case strings.HasPrefix(strings.ToLower(src.URL), "data:"):
		img, err = s.decodeBase64(src.URL)
	case src.URL != "":
		img, err = s.download(ctx, src.URL)
	case src.Base64 != "":
		img, err = s.decodeBase64(src.Base64)
	default:
		img, err = s.readFile(ctx, operatorID, src.FilesPath)
	}
	if err != nil {
		return nil, err
	}
	if err := CheckImage(img); err != nil {
		return nil, err
	}
	return img, nil
}

// CheckImage reports whether img is a JPEG or PNG whose header decodes.
func CheckImage(img []byte) error {
	if len(img) == 0 {
		return errBadImage("the image is empty")
	}
	ct := http.DetectContentType(img)
	if ct != "image/jpeg" && ct != "image/png" {
		return errBadImage("the image is not a JPEG or PNG (it looks like %s)", ct)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return errBadImage("the image cannot be read: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > 20000 || cfg.Height > 20000 {
		return errBadImage("the image is %dx%d pixels; at most 20000 on a side", cfg.Width, cfg.Height)
	}
	return nil
}

func (s *Service) decodeBase64(v string) ([]byte, error) {
	data := strings.TrimSpace(v)
	if strings.HasPrefix(strings.ToLower(data), "data:") {
		meta, rest, ok := strings.Cut(data[len("data:"):], ",")
		if !ok || !strings.HasSuffix(strings.ToLower(meta), ";base64") {
			return nil, errInvalid("image: a data: URL must be base64 (data:image/jpeg;base64,…)")
		}
		data = rest
	}
	if max := base64.StdEncoding.EncodedLen(int(s.opts.MaxImageBytes)) + 4096; len(data) > max {
		return nil, errTooLarge("the image exceeds %d bytes", s.opts.MaxImageBytes)
	}
	data = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, data)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(data); err == nil {
			if int64(len(b)) > s.opts.MaxImageBytes {
				return nil, errTooLarge("the image exceeds %d bytes", s.opts.MaxImageBytes)
			}
			return b, nil
		}
	}
	return nil, errInvalid("image: not an http(s) URL, files:/path, data: URL or base64")
}

// imageURL checks an image URL: absolute http or https.
func imageURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, errInvalid("image url is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errInvalid("image url must be an absolute http or https URL")
	}
	return u, nil
}

var errRedirectScheme = errors.New("redirected to a URL that is not http or https")
var errTooManyRedirects = errors.New("stopped after 5 redirects")

// download fetches an image URL. Errors never quote the URL (presigned
// URLs carry signatures).
func (s *Service) download(ctx context.Context, raw string) ([]byte, error) {
	u, err := imageURL(raw)
	if err != nil {
		return nil, err
	}
	cl := *s.opts.HTTP
	next := cl.CheckRedirect
	cl.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return errRedirectScheme
		}
		if len(via) > 5 {
			return errTooManyRedirects
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errInvalid("image url: %v", err)
	}
	req.Header.Set("User-Agent", "nagare-vision")
	req.Header.Set("Accept", "image/jpeg, image/png, */*;q=0.5")
	resp, err := cl.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, errRedirectScheme) || errors.Is(err, errTooManyRedirects) {
			return nil, errInvalid("image download: %v", err)
		}
		return nil, errTransport("image download", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := errHTTPStatus("image download", resp.StatusCode, "")
		if !e.Retryable && e.Status == http.StatusUnprocessableEntity {
			e.Code = CodeBadImage
		}
		return nil, e
	}
	max := s.opts.MaxImageBytes
	if resp.ContentLength > max {
		return nil, errTooLarge("the image download has %d bytes; at most %d", resp.ContentLength, max)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, errTransport("image download", err)
	}
	if int64(len(b)) > max {
		return nil, errTooLarge("the image download exceeds %d bytes", max)
	}
	return b, nil
}

// readFile reads a Harvest File from the blob store.
func (s *Service) readFile(ctx context.Context, operatorID, p string) ([]byte, error) {
	clean, err := harvest.CleanPath(p, false)
	if err != nil {
		return nil, err
	}
	if s.opts.Blobs == nil {
		return nil, newError(http.StatusNotImplemented, CodeNotImplemented, false, nil, "Harvest Files images are not available on this server")
	}
	key := operatorID + "/" + clean
	a, err := s.opts.Blobs.Bucket.Attributes(ctx, key)
	if blob.IsNotFound(err) {
		return nil, newError(http.StatusNotFound, api.CodeNotFound, false, nil, "file /%s not found", clean)
	}
	if err != nil {
		return nil, err
	}
	if a.Size > s.opts.MaxImageBytes {
		return nil, errTooLarge("file /%s has %d bytes; at most %d", clean, a.Size, s.opts.MaxImageBytes)
	}
	r, err := s.opts.Blobs.Bucket.NewReader(ctx, key, nil)
	if blob.IsNotFound(err) {
		return nil, newError(http.StatusNotFound, api.CodeNotFound, false, nil, "file /%s not found", clean)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, s.opts.MaxImageBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > s.opts.MaxImageBytes {
		return nil, errTooLarge("file /%s exceeds %d bytes", clean, s.opts.MaxImageBytes)
	}
	return b, nil
}

// Register mounts POST /v1/vision/analyze (Vision:analyze).
func (s *Service) Register(rt *api.Router) {
	rt.Handle(api.Op{Name: "Vision:analyze", Method: "POST", Path: "/v1/vision/analyze",
		Summary: "Analyze an image: count people, find faces and their emotions, or ask a prompt (local, openai, rekognition providers)",
		Handler: s.handleAnalyze})
}

func (s *Service) handleAnalyze(w http.ResponseWriter, r *http.Request) {
	// Base64 images make bodies larger than DefaultMaxJSON.
	limit := int64(base64.StdEncoding.EncodedLen(int(s.opts.MaxImageBytes))) + 64<<10
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			api.WriteError(w, r, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "request body exceeds %d bytes", mbe.Limit))
			return
		}
		api.WriteError(w, r, api.BadRequest("reading request body: %v", err))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		api.WriteError(w, r, api.BadRequest("request body is empty; a JSON object is required"))
		return
	}
	var in AnalyzeRequest
	if err := api.UnmarshalStrict(body, &in); err != nil {
		api.WriteError(w, r, err)
		return
	}
	res, err := s.Run(r.Context(), api.PrincipalFrom(r.Context()).OperatorID, &in)
	if err != nil {
		var ve *Error
		if errors.As(err, &ve) {
			err = ve.APIError()
		}
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, res)
}
