package vision

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nagare-iot/nagare/internal/credentials"
)

// CredentialStore is the part of the credentials store providers use
// (*credentials.Service).
type CredentialStore interface {
	Get(ctx context.Context, operatorID, id string) (*credentials.Credential, error)
}

// OpenAIConfig configures an OpenAI-compatible chat-completions provider:
// OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp's llama-server.
type OpenAIConfig struct {
	// Name is the provider's registered name (default "openai"); register
	// several (e.g. "ollama") for several endpoints.
	Name string
	// BaseURL is the server: requests go to {BaseURL}/v1/chat/completions
	// (a BaseURL already ending in /v1 gets /chat/completions; one ending
	// in /chat/completions is used as it is). Default https://api.openai.com.
	BaseURL string
	// Azure selects the Azure OpenAI deployment form:
	// {BaseURL}/openai/deployments/{model}/chat/completions?api-version=…
	// with the token in an api-key header instead of Authorization: Bearer.
	Azure      bool
	APIVersion string // Azure api-version, default 2024-10-21
	// Model is the default model (Azure: the deployment name); a call's
	// "model" option overrides it.
	Model string
	// CredentialsID is the api-token-credentials entry whose "token" is
	// the API key, when a call names none ("credentials" option). Empty
	// and no call option: no key is sent (Ollama, llama.cpp).
	CredentialsID string
	Credentials   CredentialStore
	// Timeout bounds one request (default 60s).
	Timeout time.Duration
	// MaxResponseBytes bounds the reply (default 1 MiB).
	MaxResponseBytes int64
	// MaxTokens is sent as max_tokens when > 0 (a call's "maxTokens"
	// option overrides it).
	MaxTokens int
	// Detail is the image_url detail sent ("low", "high", "auto"; empty:
	// not sent, the server's default).
	Detail string
	// HTTP is the client (default: a new one with the timeout).
	HTTP *http.Client
}

// OpenAI is the openai provider.
//
// Tasks: "prompt" (any prompt; the reply's text is "output", and "json"
// holds it parsed when it is JSON), and "people" and "faces" through a
// prompt asking the model for the people/faces JSON shape. A chat model
// counts and locates roughly at best: the local provider is the accurate
// offline default for people and faces.
//
// Per-call options (Request.Options): "model", "credentials" (an
// api-token-credentials id), "json" (bool: response_format json_object;
// default: on when the prompt mentions JSON, always on for people and
// faces), "detail", "maxTokens", "system" (a system message), "imageUrl"
// (used as the image_url as it is when Request.Image is empty — for
// servers that can reach it).
type OpenAI struct{ cfg OpenAIConfig }

// NewOpenAI creates an OpenAI-compatible provider.
func NewOpenAI(cfg OpenAIConfig) *OpenAI {
	if cfg.Name == "" {
		cfg.Name = "openai"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.openai.com"
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = "2024-10-21"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 1 << 20
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{}
	}
	return &OpenAI{cfg: cfg}
}

// Name implements Provider.
func (p *OpenAI) Name() string { return p.cfg.Name }

// chat request and reply, as documented for /v1/chat/completions.
type chatPart struct {
	Type     string        `json:"type"`
	Text     string        `json:"text,omitempty"`
	ImageURL *chatImageURL `json:"image_url,omitempty"`
}

type chatImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"` // string or []chatPart
}

type chatRequest struct {
	Model          string            `json:"model,omitempty"`
	Messages       []chatMessage     `json:"messages"`
	ResponseFormat map[string]string `json:"response_format,omitempty"`
	MaxTokens      int               `json:"max_tokens,omitempty"`
}

type chatReply struct {
	Choices []struct {
		Message *struct {
			Content json.RawMessage `json:"content"`
			Refusal string          `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
}

// jsonSystemPrompt is the system message of JSON mode; OpenAI requires
// the word JSON in the messages when response_format is json_object.
const jsonSystemPrompt = "Reply with a JSON object only."

const peoplePrompt = `Count the people visible in this image%s. Reply with a JSON object only, exactly of this shape:
{"person_count": <integer>, "boxes": [{"Left": <0..1>, "Top": <0..1>, "Width": <0..1>, "Height": <0..1>, "Confidence": <0..100>}]}
One box per person; box coordinates are fractions of the image width and height, measured from the top-left corner.`

const facesPrompt = `Find every human face in this image%s and judge each face's expression. Reply with a JSON object only, exactly of this shape:
{"FaceDetails": [{"BoundingBox": {"Left": <0..1>, "Top": <0..1>, "Width": <0..1>, "Height": <0..1>}, "Confidence": <0..100>, "Emotions": [{"Type": "HAPPY", "Confidence": <0..100>}]}]}
Box coordinates are fractions of the image width and height from the top-left corner. List for every face all of these emotion types with a confidence 0..100: HAPPY, SAD, ANGRY, CONFUSED, DISGUSTED, SURPRISED, CALM, FEAR. Use {"FaceDetails": []} when there is no face.`

// Analyze implements Provider.
func (p *OpenAI) Analyze(ctx context.Context, req *Request) (map[string]any, error) {
	name := p.cfg.Name
	prompt := req.Prompt
	jsonMode := strings.Contains(strings.ToLower(prompt), "json")
	switch req.Task {
	case TaskPrompt:
		if strings.TrimSpace(prompt) == "" {
			return nil, errInvalid("%s: the prompt task needs a prompt", name)
		}
		if v, ok := req.Options["json"].(bool); ok {
			jsonMode = v
		}
	case TaskPeople, TaskFaces:
		tmpl := peoplePrompt
		if req.Task == TaskFaces {
			tmpl = facesPrompt
		}
		where := ""
		if r := req.ROI; r != nil {
			where = fmt.Sprintf(" inside the region Left=%.3f Top=%.3f Width=%.3f Height=%.3f (fractions of the image); ignore everything outside it", r.Left, r.Top, r.Width, r.Height)
		}
		prompt = fmt.Sprintf(tmpl, where)
		if strings.TrimSpace(req.Prompt) != "" {
			prompt += "\nAdditional instructions: " + req.Prompt
		}
		jsonMode = true
	default:
		return nil, errInvalid("%s: unknown task %q (people, faces or prompt)", name, req.Task)
	}

	imageURL := ""
	switch {
	case len(req.Image) > 0:
		imageURL = "data:" + http.DetectContentType(req.Image) + ";base64," + base64.StdEncoding.EncodeToString(req.Image)
	case optString(req.Options, "imageUrl") != "":
		imageURL = optString(req.Options, "imageUrl")
	default:
		return nil, errInvalid("%s: no image", name)
	}
	model := firstNonEmpty(optString(req.Options, "model"), p.cfg.Model)
	if model == "" {
		return nil, errInvalid("%s: no model: name one in the call (model) or in the provider's configuration", name)
	}
	detail := firstNonEmpty(optString(req.Options, "detail"), p.cfg.Detail)
	switch detail {
	case "", "auto", "low", "high":
	default:
		return nil, errInvalid("%s: detail %q is not auto, low or high", name, detail)
	}
	body := chatRequest{Model: model, MaxTokens: p.cfg.MaxTokens}
	if n := optInt(req.Options, "maxTokens"); n > 0 {
		body.MaxTokens = n
	}
	system := optString(req.Options, "system")
	if jsonMode {
		body.ResponseFormat = map[string]string{"type": "json_object"}
		system = strings.TrimSpace(system + "\n" + jsonSystemPrompt)
	}
	if system != "" {
		body.Messages = append(body.Messages, chatMessage{Role: "system", Content: system})
	}
	body.Messages = append(body.Messages, chatMessage{Role: "user", Content: []chatPart{
		{Type: "text", Text: prompt},
		{Type: "image_url", ImageURL: &chatImageURL{URL: imageURL, Detail: detail}},
	}})
	if p.cfg.Azure {
		body.Model = "" // the deployment in the URL names it
	}

	token, err := p.token(ctx, optString(req.Options, "credentials"))
	if err != nil {
		return nil, err
	}
	content, finish, err := p.post(ctx, model, token, &body)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(content)
	parsed, isJSON := parseJSONReply(text)
	if isJSON {
		text = jsonText(text)
	}
	if jsonMode && !isJSON {
		if finish == "length" {
			return nil, newError(http.StatusUnprocessableEntity, CodeRejected, false, nil,
				"%s: the reply was cut off (finish_reason length) before the JSON ended; raise maxTokens", name)
		}
		return nil, errMalformed(name, "JSON was asked for but the reply is not JSON: %s", quote(text, 200))
	}
	switch req.Task {
	case TaskPeople:
		return peopleFromReply(name, parsed, req)
	case TaskFaces:
		return facesFromReply(name, parsed)
	}
	out := map[string]any{"output": text}
	if isJSON {
		out["json"] = parsed
	}
	return out, nil
}

// token reads the API key from the credentials store: the call's
// credential, else the configured one, else none.
func (p *OpenAI) token(ctx context.Context, id string) (string, error) {
	if id == "" {
		id = p.cfg.CredentialsID
	}
	if id == "" {
		return "", nil
	}
	c, err := getCredential(ctx, p.cfg.Credentials, p.cfg.Name, id, "api-token-credentials")
	if err != nil {
		return "", err
	}
	return c.Values["token"], nil
}

// getCredential fetches a credential of a type for the call's operator.
func getCredential(ctx context.Context, store CredentialStore, provider, id, typ string) (*credentials.Credential, error) {
	if store == nil {
		return nil, errInvalid("%s: credential %q named but no credentials store is configured", provider, id)
	}
	op := OperatorFrom(ctx)
	if op == "" {
		return nil, errInvalid("%s: credential %q named but the call has no operator", provider, id)
	}
	c, err := store.Get(ctx, op, id)
	if errors.Is(err, credentials.ErrNotFound) {
		return nil, errInvalid("%s: credential %q not found in the credentials store", provider, id)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: credential %q: %w", provider, id, err)
	}
	if c.Type != typ {
		return nil, errInvalid("%s: credential %q is of type %s; %s is needed", provider, id, c.Type, typ)
	}
	return c, nil
}

// endpoint is the chat-completions URL.
func (p *OpenAI) endpoint(model string) (string, error) {
	base := strings.TrimRight(p.cfg.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errInvalid("%s: base URL %q is not an http(s) URL", p.cfg.Name, p.cfg.BaseURL)
	}
	if p.cfg.Azure {
		u.Path = strings.TrimSuffix(u.Path, "/openai") + "/openai/deployments/" + url.PathEscape(model) + "/chat/completions"
		q := u.Query()
		q.Set("api-version", p.cfg.APIVersion)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	switch {
	case strings.HasSuffix(u.Path, "/chat/completions"):
	case strings.HasSuffix(u.Path, "/v1"):
		u.Path += "/chat/completions"
	default:
		u.Path += "/v1/chat/completions"
	}
	return u.String(), nil
}

// post sends the request and returns the first choice's text and finish
// reason.
func (p *OpenAI) post(ctx context.Context, model, token string, body *chatRequest) (string, string, error) {
	name := p.cfg.Name
	endpoint, err := p.endpoint(model)
	if err != nil {
		return "", "", err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
	if err != nil {
		return "", "", errInvalid("%s: %v", name, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "nagare-vision")
	if token != "" {
		if p.cfg.Azure {
			hreq.Header.Set("api-key", token)
		} else {
			hreq.Header.Set("Authorization", "Bearer "+token)
		}
	}
	resp, err := p.cfg.HTTP.Do(hreq)
	if err != nil {
		return "", "", errTransport(name, redactURLError(err, token))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxResponseBytes+1))
	if err != nil {
		return "", "", errTransport(name+": reading the reply", redactURLError(err, token))
	}
	if int64(len(raw)) > p.cfg.MaxResponseBytes {
		return "", "", newError(http.StatusBadGateway, CodeProvider, false, nil, "%s: the reply exceeds %d bytes", name, p.cfg.MaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", "", errHTTPStatus(name, resp.StatusCode, providerMessage(raw))
	}
	var reply chatReply
	if err := json.Unmarshal(raw, &reply); err != nil {
		return "", "", errMalformed(name, "not a chat completion: %v: %s", err, quote(string(raw), 200))
	}
	if len(reply.Choices) == 0 || reply.Choices[0].Message == nil {
		if msg := providerMessage(raw); msg != "" {
			return "", "", errMalformed(name, "no choices: %s", msg)
		}
		return "", "", errMalformed(name, "no choices")
	}
	ch := reply.Choices[0]
	if ch.Message.Refusal != "" {
		return "", "", newError(http.StatusUnprocessableEntity, CodeRejected, false, nil, "%s: the model refused: %s", name, quote(ch.Message.Refusal, 300))
	}
	if ch.FinishReason == "content_filter" {
		return "", "", newError(http.StatusUnprocessableEntity, CodeRejected, false, nil, "%s: the reply was withheld by the content filter", name)
	}
	text, ok := contentText(ch.Message.Content)
	if !ok {
		return "", "", errMalformed(name, "the message content is neither text nor text parts")
	}
	if strings.TrimSpace(text) == "" {
		if ch.FinishReason == "length" {
			return "", "", newError(http.StatusUnprocessableEntity, CodeRejected, false, nil, "%s: the reply was cut off (finish_reason length) before any text; raise maxTokens", name)
		}
		return "", "", errMalformed(name, "empty message content")
	}
	return text, ch.FinishReason, nil
}

// contentText reads a message's content: a string, or a list of parts
// whose text parts are joined.
func contentText(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" || p.Type == "output_text" {
			b.WriteString(p.Text)
		}
	}
	return b.String(), true
}

// providerMessage extracts the error message of an error body:
// {"error":{"message":…}} (OpenAI, Azure, Ollama, llama.cpp),
// {"error":"…"}, or {"message":…} (vLLM); else the start of the body.
func providerMessage(raw []byte) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(raw, &e) == nil {
		var inner struct {
			Message string `json:"message"`
			Code    any    `json:"code"`
		}
		var s string
		switch {
		case len(e.Error) > 0 && json.Unmarshal(e.Error, &inner) == nil && inner.Message != "":
			return quote(inner.Message, 500)
		case len(e.Error) > 0 && json.Unmarshal(e.Error, &s) == nil && s != "":
			return quote(s, 500)
		case e.Message != "":
			return quote(e.Message, 500)
		}
	}
	return quote(string(raw), 200)
}

// parseJSONReply parses a reply as JSON, also when a model wrapped it in
// a ``` fence.
func parseJSONReply(text string) (any, bool) {
	t := jsonText(text)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return nil, false
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	return normalizeNumbers(v), true
}

// jsonText strips a Markdown code fence around a reply.
func jsonText(text string) string {
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "```") && strings.HasSuffix(t, "```") && len(t) >= 6 {
		t = strings.TrimSuffix(t[3:], "```")
		if i := strings.IndexByte(t, '\n'); i >= 0 && !strings.ContainsAny(t[:i], "{[") {
			t = t[i+1:] // the fence's language tag, e.g. json
		}
		t = strings.TrimSpace(t)
	}
	return t
}

// normalizeNumbers turns json.Numbers into float64 (as encoding/json
// decodes into any), keeping integers exact.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return float64(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	}
	return v
}

// peopleFromReply checks and normalises a people reply.
func peopleFromReply(name string, v any, req *Request) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errMalformed(name, "the people reply is not a JSON object")
	}
	boxes := []any{}
	if list, ok := m["boxes"].([]any); ok {
		for _, b := range list {
			bm, ok := b.(map[string]any)
			if !ok {
				continue
			}
			box, ok := rectValue(bm)
			if !ok {
				continue
			}
			conf, hasConf := num(bm["Confidence"])
			if !hasConf {
				conf = 100
			}
			if req.MinScore > 0 && conf < req.MinScore*100 {
				continue
			}
			box["Confidence"] = conf
			boxes = append(boxes, box)
		}
	}
	count, ok := num(m["person_count"])
	switch {
	case ok && count >= 0:
	case m["person_count"] == nil && m["boxes"] != nil:
		count = float64(len(boxes))
	default:
		return nil, errMalformed(name, "person_count is missing or not a number")
	}
	n := int(math.Round(count))
	return map[string]any{"person_count": n, "boxes": boxes, "crowding_level": CrowdingLevel(n, req.Capacity)}, nil
}

// emotionTypes are Rekognition's EmotionName values.
var emotionTypes = map[string]bool{"HAPPY": true, "SAD": true, "ANGRY": true, "CONFUSED": true, "DISGUSTED": true,
	"SURPRISED": true, "CALM": true, "UNKNOWN": true, "FEAR": true}

// facesFromReply checks and normalises a faces reply to Rekognition's
// shape.
func facesFromReply(name string, v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errMalformed(name, "the faces reply is not a JSON object")
	}
	list, ok := m["FaceDetails"].([]any)
	if !ok {
		return nil, errMalformed(name, "FaceDetails is missing or not a list")
	}
	faces := make([]any, 0, len(list))
	for _, f := range list {
		fm, ok := f.(map[string]any)
		if !ok {
			return nil, errMalformed(name, "a FaceDetails entry is not an object")
		}
		bb, _ := fm["BoundingBox"].(map[string]any)
		box, ok := rectValue(bb)
		if !ok {
			return nil, errMalformed(name, "a face has no valid BoundingBox")
		}
		conf, ok := num(fm["Confidence"])
		if !ok {
			conf = 100
		}
		emotions := []any{}
		if el, ok := fm["Emotions"].([]any); ok {
			for _, e := range el {
				em, _ := e.(map[string]any)
				typ, _ := em["Type"].(string)
				typ = strings.ToUpper(strings.TrimSpace(typ))
				if typ == "FEARFUL" {
					typ = "FEAR"
				}
				c, ok := num(em["Confidence"])
				if !emotionTypes[typ] || !ok {
					continue
				}
				emotions = append(emotions, map[string]any{"Type": typ, "Confidence": c})
			}
		}
		faces = append(faces, map[string]any{"BoundingBox": box, "Confidence": conf, "Emotions": emotions})
	}
	return map[string]any{"FaceDetails": faces}, nil
}

// rectValue reads {Left,Top,Width,Height} fractions (also given in
// lower case), clamped to the image.
func rectValue(m map[string]any) (map[string]any, bool) {
	if m == nil {
		return nil, false
	}
	get := func(k string) (float64, bool) {
		if v, ok := num(m[k]); ok {
			return v, true
		}
		return num(m[strings.ToLower(k)])
	}
	l, ok1 := get("Left")
	t, ok2 := get("Top")
	w, ok3 := get("Width")
	h, ok4 := get("Height")
	if !ok1 || !ok2 || !ok3 || !ok4 || w <= 0 || h <= 0 {
		return nil, false
	}
	clamp := func(x float64) float64 { return math.Min(1, math.Max(0, x)) }
	return map[string]any{"Left": clamp(l), "Top": clamp(t), "Width": clamp(w), "Height": clamp(h)}, true
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case int:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func optString(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func optInt(m map[string]any, k string) int {
	if f, ok := num(m[k]); ok {
		return int(f)
	}
	return 0
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// quote shortens s to at most n bytes (on a rune boundary), on one line.
func quote(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// redactURLError drops the URL a *url.Error names (it may carry
// signatures) and masks a token.
func redactURLError(err error, token string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
		if errors.Is(err, context.DeadlineExceeded) || ue.Timeout() {
			return context.DeadlineExceeded
		}
	}
	if token != "" && strings.Contains(err.Error(), token) {
		return errors.New(strings.ReplaceAll(err.Error(), token, "****"))
	}
	return err
}
