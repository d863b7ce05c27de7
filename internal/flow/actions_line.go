// The line action: the LINE Messaging API's reply and push (text and Flex
// messages) and the download of a message's content (an image a user
// sent) into Harvest Files. Requests go through the line-bot-sdk's
// messaging_api clients (endpoint, bearer token); Flex contents are sent
// as the JSON the template rendered, never through the SDK's Flex
// structs, whose marshalling adds "flex":0 to every component.
package flow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
)

// LINE Messaging API limits and defaults.
const (
	lineMaxMessages   = 5 // per reply or push
	lineMaxAnswer     = 64 << 10
	lineDefaultAPI    = "https://api.line.me"
	lineDefaultData   = "https://api-data.line.me"
	lineDefaultMaxDow = 32 << 20
)

// LINE action operations.
const (
	LineReply   = "reply"
	LinePush    = "push"
	LineContent = "content"
	LineProfile = "profile"
)

func init() {
	RegisterAction(Spec{Kind: "line", Run: runLine, Check: checkLine,
		Summary: "LINE Messaging API with a line-channel credential. `reply` answers a webhook event with its `replyToken` (usable once, within a minute), `push` sends to a user, group or room ID (`to`); `messages` (1–5) are `{type: text, text}` or `{type: flex, altText, contents}`, where `contents` (a bubble or carousel, as the Flex Message Simulator exports it) is sent exactly as rendered. `content` downloads a message's image (video, audio, file) by `messageId` into Harvest Files at `path`. `profile` reads a user's `{userId, displayName, pictureUrl, statusMessage, language}` (the user must be a friend of the bot). LINE 5xx and 429 are retried (429 after Retry-After); 400 (with LINE's message and details), 401 and 403 fail at once. Output: reply/push `{status, sentMessages}`; content `{path, contentType, size, presignedUrls: {get}}`; profile the profile.",
		Fields: []Field{
			{Name: "operation", Type: TEnum, Enum: []string{LineReply, LinePush, LineContent, LineProfile}, Required: true, Doc: "reply, push, content or profile"},
			{Name: "credentials", Type: TCredential, Required: true, Doc: "line-channel credential (its channelAccessToken is used)"},
			{Name: "replyToken", Type: TTemplate, Doc: "reply: the event's reply token, e.g. ${payload.replyToken}"},
			{Name: "to", Type: TTemplate, Doc: "push: user, group or room ID, e.g. ${payload.userId}"},
			{Name: "messages", Type: TAny, Doc: "reply, push: 1–5 messages, `{type: text, text}` or `{type: flex, altText, contents}`"},
			{Name: "notificationDisabled", Type: TBool, Default: false, Doc: "reply, push: deliver without a notification"},
			{Name: "messageId", Type: TTemplate, Doc: "content: the message ID, e.g. ${payload.messageId}"},
			{Name: "path", Type: TTemplate, Doc: "content: Harvest Files path, e.g. /line/${payload.userId}/${payload.messageId}.jpg"},
			{Name: "userId", Type: TTemplate, Doc: "profile: the user ID, e.g. ${payload.userId}"},
		},
	})
}

// checkLine validates the operation's fields and, where literal, the
// messages.
func checkLine(cfg map[string]any) []string {
	var out []string
	need := func(op string, fields ...string) {
		for _, f := range fields {
			if _, ok := cfg[f]; !ok {
				out = append(out, fmt.Sprintf("operation %s needs %s", op, f))
			}
		}
	}
	op, _ := cfg["operation"].(string)
	switch op {
	case LineReply:
		need(op, "replyToken", "messages")
	case LinePush:
		need(op, "to", "messages")
	case LineContent:
		need(op, "messageId", "path")
	case LineProfile:
		need(op, "userId")
	}
	switch m := cfg["messages"].(type) {
	case nil:
	case string:
		if !isSingleTemplate(m) {
			out = append(out, "messages must be a list of messages (or one ${…} giving one)")
		}
	case []any:
		if len(m) == 0 || len(m) > lineMaxMessages {
			out = append(out, fmt.Sprintf("messages: %d messages; LINE takes 1 to %d", len(m), lineMaxMessages))
		}
		for i, v := range m {
			if mm, ok := v.(map[string]any); ok {
				if t, _ := mm["type"].(string); strings.Contains(t, "${") {
					continue
				}
			}
			if _, err := lineMessage(v, true); err != nil {
				out = append(out, fmt.Sprintf("messages[%d]: %v", i, err))
			}
		}
	default:
		out = append(out, "messages must be a list of messages")
	}
	return out
}

// isSingleTemplate reports whether s is exactly one ${…}.
func isSingleTemplate(s string) bool {
	t, err := template(s)
	return err == nil && t.IsSingle()
}

// lineMessage builds one message's JSON. Flex contents are inserted as
// they rendered (an object), or parsed when a lone ${…} gave a JSON
// string; static reports a check before data arrived.
func lineMessage(v any, static bool) (json.RawMessage, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a message is an object {type: text|flex, …}, not %s", typeName(v))
	}
	str := func(k string) (string, bool) { s, ok := m[k].(string); return s, ok }
	typ, _ := str("type")
	switch typ {
	case "text":
		text, ok := str("text")
		if !ok || (!static && text == "") {
			return nil, errors.New("a text message needs text")
		}
		for k := range m {
			if k != "type" && k != "text" {
				return nil, fmt.Errorf("unknown field %q in a text message (type, text)", k)
			}
		}
		return marshalJSON(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{"text", text})
	case "flex":
		alt, ok := str("altText")
		if !ok || (!static && alt == "") {
			return nil, errors.New("a flex message needs altText (shown in notifications and the chat list)")
		}
		for k := range m {
			if k != "type" && k != "altText" && k != "contents" {
				return nil, fmt.Errorf("unknown field %q in a flex message (type, altText, contents)", k)
			}
		}
		var contents json.RawMessage
		switch c := m["contents"].(type) {
		case map[string]any:
			b, err := marshalJSON(c)
			if err != nil {
				return nil, fmt.Errorf("flex contents: %v", err)
			}
			contents = b
		case string:
			if static {
				if !isSingleTemplate(c) {
					return nil, errors.New("flex contents must be an object (write the JSON as it is: YAML reads it) or one ${…} giving one")
				}
				return nil, nil
			}
			if !json.Valid([]byte(c)) || !strings.HasPrefix(strings.TrimSpace(c), "{") {
				return nil, errors.New("flex contents rendered to a string that is not a JSON object")
			}
			contents = json.RawMessage(strings.TrimSpace(c))
		case nil:
			return nil, errors.New("a flex message needs contents (a bubble or carousel)")
		default:
			return nil, fmt.Errorf("flex contents must be an object (a bubble or carousel), not %s", typeName(c))
		}
		if static {
			return nil, nil
		}
		return marshalJSON(struct {
			Type     string          `json:"type"`
			AltText  string          `json:"altText"`
			Contents json.RawMessage `json:"contents"`
		}{"flex", alt, contents})
	case "":
		return nil, errors.New("a message needs a type: text or flex")
	default:
		return nil, fmt.Errorf("message type %q is not supported: text or flex", typ)
	}
}

func runLine(ctx context.Context, c *Call) (any, error) {
	cfg := c.Config
	vals, err := credentialValues(ctx, c.Deps, c.OperatorID, cfgString(cfg, "credentials"), credLineChannel)
	if err != nil {
		return nil, err
	}
	token := strings.TrimSpace(vals["channelAccessToken"])
	if token == "" {
		return nil, Permanent(fmt.Errorf("credentials %q has no channelAccessToken", cfgString(cfg, "credentials")))
	}
	var red redactor
	red.add(token)
	switch op := cfgString(cfg, "operation"); op {
	case LineReply, LinePush:
		return lineSend(ctx, c, op, token, red)
	case LineContent:
		return lineContent(ctx, c, token, red)
	case LineProfile:
		return lineProfile(ctx, c, token, red)
	default:
		return nil, Permanent(fmt.Errorf("line: unknown operation %q", op))
	}
}

// lineSend posts a reply or push. The body is built here so Flex contents
// reach LINE as rendered; the SDK client supplies the URL and token.
func lineSend(ctx context.Context, c *Call, op, token string, red redactor) (any, error) {
	cfg := c.Config
	list, ok := cfg["messages"].([]any)
	if !ok {
		return nil, Permanent(fmt.Errorf("messages rendered to %s; LINE takes a list of messages", typeName(cfg["messages"])))
	}
	if len(list) == 0 || len(list) > lineMaxMessages {
		return nil, Permanent(fmt.Errorf("messages: %d messages; LINE takes 1 to %d", len(list), lineMaxMessages))
	}
	msgs := make([]json.RawMessage, 0, len(list))
	for i, v := range list {
		b, err := lineMessage(v, false)
		if err != nil {
			return nil, Permanent(fmt.Errorf("messages[%d]: %v", i, err))
		}
		msgs = append(msgs, b)
	}
	req := struct {
		ReplyToken           string            `json:"replyToken,omitempty"`
		To                   string            `json:"to,omitempty"`
		Messages             []json.RawMessage `json:"messages"`
		NotificationDisabled bool              `json:"notificationDisabled,omitempty"`
	}{Messages: msgs}
	req.NotificationDisabled, _ = cfg["notificationDisabled"].(bool)
	path := "/v2/bot/message/reply"
	if op == LineReply {
		if req.ReplyToken = strings.TrimSpace(cfgString(cfg, "replyToken")); req.ReplyToken == "" {
			return nil, Permanent(errors.New("reply: replyToken rendered empty (only webhook events with a replyToken can be answered; push instead)"))
		}
	} else {
		path = "/v2/bot/message/push"
		if req.To = strings.TrimSpace(cfgString(cfg, "to")); req.To == "" {
			return nil, Permanent(errors.New("push: to rendered empty"))
		}
	}
	body, err := marshalJSON(req)
	if err != nil {
		return nil, Permanent(fmt.Errorf("line %s: %v", op, err))
	}
	bot, err := messaging_api.NewMessagingApiAPI(token,
		messaging_api.WithEndpoint(lineBase(c.Deps.LineAPIURL, lineDefaultAPI)),
		messaging_api.WithHTTPClient(capBodies(actionClient(c), lineMaxAnswer+1)))
	if err != nil {
		return nil, Permanent(errors.New(red.apply("line client: " + err.Error())))
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, bot.Url(path), bytes.NewReader(body))
	if err != nil {
		return nil, Permanent(fmt.Errorf("line %s request: %v", op, err))
	}
	hreq.Header.Set("Content-Type", "application/json; charset=UTF-8")
	if op == LinePush {
		// The same key on every attempt: LINE sends a retried push once.
		hreq.Header.Set("X-Line-Retry-Key", retryKey(c))
	}
	resp, err := bot.Do(hreq)
	if err != nil {
		return nil, requestError("line "+op, err, red)
	}
	defer resp.Body.Close()
	b, err := readCapped(resp, lineMaxAnswer, "the answer limit")
	if err != nil {
		return nil, requestError("line "+op+" answer", err, red)
	}
	// 409 on a push with a retry key: LINE already accepted this request.
	if op == LinePush && resp.StatusCode == http.StatusConflict && resp.Header.Get("X-Line-Accepted-Request-Id") != "" {
		return map[string]any{"status": resp.StatusCode, "sentMessages": []any{}}, nil
	}
	if resp.StatusCode/100 != 2 {
		return nil, lineStatus("line "+op, resp, b, red)
	}
	var ans struct {
		SentMessages []any `json:"sentMessages"`
	}
	_ = json.Unmarshal(b, &ans)
	if ans.SentMessages == nil {
		ans.SentMessages = []any{}
	}
	return map[string]any{"status": resp.StatusCode, "sentMessages": ans.SentMessages}, nil
}

// retryKey is a UUID (version 4 layout) derived from the step's work ID.
func retryKey(c *Call) string {
	seed := c.WorkID
	if seed == "" {
		seed = newID()
	}
	h := sha256.Sum256([]byte("line-retry\x00" + c.OperatorID + "\x00" + c.App + "\x00" + seed))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// lineContent downloads a message's content with the SDK's blob client
// and stores it in Harvest Files.
func lineContent(ctx context.Context, c *Call, token string, red redactor) (any, error) {
	cfg := c.Config
	if c.Deps == nil || c.Deps.Files == nil {
		return nil, Permanent(errors.New("line content: Harvest Files is not configured"))
	}
	id := strings.TrimSpace(cfgString(cfg, "messageId"))
	path := cfgString(cfg, "path")
	if id == "" || strings.ContainsAny(id, "/?#%") {
		return nil, Permanent(fmt.Errorf("content: messageId %s is not a LINE message ID", quoteValue(id)))
	}
	limit := c.Deps.MaxContentBytes
	if limit <= 0 {
		limit = lineDefaultMaxDow
	}
	blobAPI, err := messaging_api.NewMessagingApiBlobAPI(token,
		messaging_api.WithBlobEndpoint(lineBase(c.Deps.LineDataURL, lineDefaultData)),
		messaging_api.WithBlobHTTPClient(capBodies(actionClient(c), limit+1)))
	if err != nil {
		return nil, Permanent(errors.New(red.apply("line client: " + err.Error())))
	}
	// One client per call: WithContext sets the context of its next call.
	blobAPI.WithContext(ctx)
	resp, err := blobAPI.GetMessageContent(id)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, lineSDKError("line content", err, red)
	}
	defer resp.Body.Close()
	tooLarge := Permanent(fmt.Errorf("line content: the content exceeds %d bytes; nothing was stored", limit))
	if resp.ContentLength > limit {
		return nil, tooLarge
	}
	ct := resp.Header.Get("Content-Type")
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		ct = "application/octet-stream"
	}
	body := &cappedReader{r: resp.Body, max: limit}
	e, _, err := c.Deps.Files.PutWithMetadata(ctx, c.OperatorID, path, ct, map[string]string{"lineMessageId": id}, body)
	switch {
	case err == nil:
	case errors.Is(body.err, errDownloadTooLarge):
		return nil, tooLarge
	case body.err != nil:
		return nil, requestError("line content", body.err, red)
	default:
		return nil, apiError("files "+path, err)
	}
	out := map[string]any{"path": e.FilePath, "contentType": e.ContentType, "size": e.ContentLength, "presignedUrls": map[string]any{}}
	if u, err := c.Deps.Files.SignedURL(ctx, c.OperatorID, e.FilePath, time.Hour); err == nil {
		out["presignedUrls"] = map[string]any{"get": u}
	}
	return out, nil
}

// lineProfile reads a user's profile (GET /v2/bot/profile/{userId}).
func lineProfile(ctx context.Context, c *Call, token string, red redactor) (any, error) {
	id := strings.TrimSpace(cfgString(c.Config, "userId"))
	if !lineIDRE.MatchString(id) {
		return nil, Permanent(fmt.Errorf("profile: userId %s is not a LINE user ID", quoteValue(id)))
	}
	bot, err := messaging_api.NewMessagingApiAPI(token,
		messaging_api.WithEndpoint(lineBase(c.Deps.LineAPIURL, lineDefaultAPI)),
		messaging_api.WithHTTPClient(capBodies(actionClient(c), lineMaxAnswer+1)))
	if err != nil {
		return nil, Permanent(errors.New(red.apply("line client: " + err.Error())))
	}
	bot.WithContext(ctx)
	p, err := bot.GetProfile(id)
	if err != nil {
		return nil, lineSDKError("line profile", err, red)
	}
	return map[string]any{"userId": p.UserId, "displayName": p.DisplayName, "pictureUrl": p.PictureUrl,
		"statusMessage": p.StatusMessage, "language": p.Language}, nil
}

// lineIDRE matches LINE user, group and room IDs (U, C or R and 32 hex
// digits), loosely.
var lineIDRE = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

// lineSDKError classifies an error of the SDK's blob client: its
// "unexpected status code: N, body" is a LINE answer, anything else a
// transport error (retried).
func lineSDKError(what string, err error, red redactor) error {
	var status int
	var rest string
	if n, _ := fmt.Sscanf(err.Error(), "unexpected status code: %d,", &status); n == 1 {
		_, rest, _ = strings.Cut(err.Error(), ", ")
		resp := &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), Header: http.Header{}}
		b := []byte(rest)
		if len(b) > lineMaxAnswer {
			b = b[:lineMaxAnswer]
		}
		return lineStatus(what, resp, b, red)
	}
	return requestError(what, err, red)
}

// lineBase is a configured base URL or the default.
func lineBase(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimRight(v, "/")
}

// lineHints explain LINE's status codes
// (https://developers.line.biz/en/reference/messaging-api/#status-codes).
var lineHints = map[int]string{
	http.StatusBadRequest:      "LINE refused the request",
	http.StatusUnauthorized:    "the channel access token is invalid or expired",
	http.StatusForbidden:       "the channel is not allowed to use this API",
	http.StatusNotFound:        "no such message, or its content is gone",
	http.StatusConflict:        "this request was already accepted (retry key)",
	http.StatusGone:            "the content is no longer available",
	http.StatusTooManyRequests: "rate limit or monthly message quota exceeded",
}

// lineStatus classifies LINE's non-2xx answer: 5xx and 429 are retried
// (429 after Retry-After), anything else fails at once with LINE's
// message and details.
func lineStatus(what string, resp *http.Response, body []byte, red redactor) error {
	msg := what + ": " + resp.Status
	if h := lineHints[resp.StatusCode]; h != "" {
		msg += " (" + h + ")"
	}
	var ans struct {
		Message string `json:"message"`
		Details []struct {
			Message  string `json:"message"`
			Property string `json:"property"`
		} `json:"details"`
	}
	if json.Unmarshal(body, &ans) == nil && ans.Message != "" {
		msg += ": " + ans.Message
		for i, d := range ans.Details {
			if i == 5 {
				msg += fmt.Sprintf("; and %d more", len(ans.Details)-i)
				break
			}
			msg += "; " + d.Property + ": " + d.Message
		}
	} else if s := strings.TrimSpace(string(body)); s != "" {
		if len(s) > errorBodyPrefix {
			s = s[:errorBodyPrefix] + "…"
		}
		msg += ": " + s
	}
	e := &slackError{msg: red.apply(msg)}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.wait = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	if retryableStatus(resp.StatusCode) {
		return e
	}
	return Permanent(e)
}

// capBodies limits every response body a client reads (the SDK reads
// error answers whole).
func capBodies(cl *http.Client, max int64) *http.Client {
	base := cl.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out := *cl
	out.Transport = capTransport{base: base, max: max}
	return &out
}

type capTransport struct {
	base http.RoundTripper
	max  int64
}

func (t capTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.Body != nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, t.max), resp.Body}
	}
	return resp, err
}
