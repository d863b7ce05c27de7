// The slack action: posts a message to a Slack Incoming Webhook whose URL
// lives in the credentials store. This file owns the action's spec, the
// message it builds (mentions, escaped text, blocks) and how Slack's
// answers map to retryable and permanent errors.
package flow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Credential types the Slack components read.
const (
	credSlackWebhook = "slack-incoming-webhook" // {url}
	credSlackSigning = "slack-signing-secret"   // {signingSecret}
	credSlackToken   = "api-token-credentials"  // {token}: an Outgoing Webhook's token
)

// slackUserRE is a Slack user ID (U…, or W… on Enterprise Grid): what a
// mention needs since Slack stopped resolving names in 2017.
var slackUserRE = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// slackMaxAnswer bounds Slack's answer (it says "ok" or an error code).
const slackMaxAnswer = 64 << 10

func init() {
	RegisterAction(Spec{Kind: "slack", Run: runSlack, Check: checkSlack,
		Summary: "Posts a message to a Slack Incoming Webhook. Values from data in `text` and `blocks` are escaped (`&` `<` `>`), so data cannot mention anyone or add links: only `mention` makes mentions. Slack 5xx and 429 (after its Retry-After) are retried; other refusals (invalid_payload, no_service, …) fail at once. Output: `{status, body}`.",
		Fields: []Field{
			{Name: "credentials", Type: TCredential, Required: true, Doc: "slack-incoming-webhook credential holding the webhook URL"},
			{Name: "text", Type: TTemplate, Escape: "slack", Doc: "message text (mrkdwn); every value from data is escaped, even a lone ${…}; with blocks, the notification text"},
			{Name: "mention", Type: TAny, Doc: "user IDs (U…/W…) mentioned before the text: a list, or one ${…} giving an ID or a list"},
			{Name: "blocks", Type: TAny, Escape: "slack", Doc: "Block Kit blocks (a list); strings from data in them are escaped"},
			{Name: "username", Type: TTemplate, Doc: "display name, where the webhook allows overriding it"},
			{Name: "iconEmoji", Type: TTemplate, Doc: "icon, e.g. :bell:"},
		},
	})
}

// checkSlack validates what can be checked before data arrives: a
// message needs text or blocks, literal mentions are user IDs, blocks
// are a list.
func checkSlack(cfg map[string]any) []string {
	var out []string
	_, hasText := cfg["text"]
	_, hasBlocks := cfg["blocks"]
	if !hasText && !hasBlocks {
		out = append(out, "needs text or blocks")
	}
	switch m := cfg["mention"].(type) {
	case nil:
	case string:
		if !strings.Contains(m, "${") && !slackUserRE.MatchString(m) {
			out = append(out, fmt.Sprintf("mention: %q is not a Slack user ID (U… or W…, e.g. U012AB3CD)", m))
		}
	case []any:
		for i, v := range m {
			s, ok := v.(string)
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("mention[%d]: must be a user ID", i))
			case !strings.Contains(s, "${") && !slackUserRE.MatchString(s):
				out = append(out, fmt.Sprintf("mention[%d]: %q is not a Slack user ID (U… or W…, e.g. U012AB3CD)", i, s))
			}
		}
	default:
		out = append(out, "mention must be a user ID or a list of them")
	}
	switch b := cfg["blocks"].(type) {
	case nil, []any:
	case string:
		if !strings.HasPrefix(b, "${") {
			out = append(out, "blocks must be a list of blocks (or one ${…} giving one)")
		}
	default:
		out = append(out, "blocks must be a list of blocks")
	}
	return out
}

func runSlack(ctx context.Context, c *Call) (any, error) {
	cfg := c.Config
	hook, err := slackWebhookURL(ctx, c, cfgString(cfg, "credentials"))
	if err != nil {
		return nil, err
	}
	// The whole URL is the secret (…/services/T…/B…/<token>): keep it
	// and its path out of every message.
	var red redactor
	red.add(hook.String())
	red.add(hook.EscapedPath())
	red.add(hook.Path)

	mentions, err := slackMentions(cfg["mention"])
	if err != nil {
		return nil, err
	}
	msg := map[string]any{}
	text := strings.TrimSpace(strings.Join(append(mentions, cfgString(cfg, "text")), " "))
	if text != "" {
		msg["text"] = text
	}
	if b, ok := cfg["blocks"]; ok && b != nil {
		if _, isList := b.([]any); !isList {
			return nil, Permanent(fmt.Errorf("blocks rendered to %s; Slack takes a list of blocks", typeName(b)))
		}
		msg["blocks"] = b
	}
	if len(msg) == 0 {
		return nil, Permanent(errors.New("the message is empty: text and blocks rendered to nothing"))
	}
	if s := cfgString(cfg, "username"); s != "" {
		msg["username"] = s
	}
	if s := cfgString(cfg, "iconEmoji"); s != "" {
		msg["icon_emoji"] = s
	}
	body, err := marshalJSON(msg)
	if err != nil {
		return nil, Permanent(fmt.Errorf("slack message: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.String(), bytes.NewReader(body))
	if err != nil {
		return nil, Permanent(errors.New(red.apply("slack request: " + err.Error())))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "nagare-flow")
	resp, err := actionClient(c).Do(req)
	if err != nil {
		return nil, requestError("slack webhook", err, red)
	}
	defer resp.Body.Close()
	b, err := readCapped(resp, slackMaxAnswer, "the answer limit")
	if err != nil {
		return nil, requestError("slack webhook answer", err, red)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, slackStatus(resp, b, red)
	}
	return map[string]any{"status": resp.StatusCode, "body": strings.TrimSpace(string(b))}, nil
}

// slackWebhookURL reads the webhook URL from a slack-incoming-webhook
// credential. Errors never quote the URL.
func slackWebhookURL(ctx context.Context, c *Call, id string) (*url.URL, error) {
	cred, err := credentialValues(ctx, c.Deps, c.OperatorID, id, credSlackWebhook)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(cred["url"]))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, Permanent(fmt.Errorf("credentials %q: url is not an http(s) URL (it should look like https://hooks.slack.com/services/T…/B…/…)", id))
	}
	return u, nil
}

// slackMentions turns the rendered mention field into "<@U…>" tokens,
// checking each ID: a value from data that is not a plain user ID could
// otherwise smuggle markup in.
func slackMentions(v any) ([]string, error) {
	var ids []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		ids = []any{x}
	case []any:
		ids = x
	default:
		return nil, Permanent(fmt.Errorf("mention rendered to %s; want a user ID or a list of them", typeName(v)))
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		s, ok := id.(string)
		if ok && s == "" {
			continue // an optional mention that data left empty
		}
		if !ok || !slackUserRE.MatchString(s) {
			return nil, Permanent(fmt.Errorf("mention: %s is not a Slack user ID (U… or W…)", quoteValue(id)))
		}
		out = append(out, "<@"+s+">")
	}
	return out, nil
}

// quoteValue shows a value in an error, briefly.
func quoteValue(v any) string {
	s := fmt.Sprintf("%q", fmt.Sprint(v))
	if len(s) > 80 {
		s = s[:77] + "…\""
	}
	return s
}

// slackError is Slack refusing a message: the status, Slack's error code
// (its answer's body, e.g. invalid_payload) and, for 429, how long it
// asked us to wait.
type slackError struct {
	msg  string
	wait time.Duration
}

func (e *slackError) Error() string             { return e.msg }
func (e *slackError) RetryAfter() time.Duration { return e.wait }

// slackHints explain the Incoming Webhook error codes a user can act on
// (https://api.slack.com/messaging/webhooks#handling_errors).
var slackHints = map[string]string{
	"invalid_payload":                   "the message is not valid JSON Slack accepts (check blocks)",
	"invalid_blocks":                    "the blocks are not valid Block Kit",
	"no_text":                           "the message has no text",
	"no_service":                        "the webhook was disabled or removed, or its URL is wrong",
	"no_service_id":                     "the webhook URL is wrong",
	"no_team":                           "the workspace of the webhook is gone, or the URL is wrong",
	"team_disabled":                     "the workspace is disabled",
	"invalid_token":                     "the webhook URL is wrong or was revoked",
	"channel_not_found":                 "the webhook's channel is gone",
	"channel_is_archived":               "the webhook's channel is archived",
	"action_prohibited":                 "an admin restricted posting to the channel",
	"posting_to_general_channel_denied": "only admins may post to this channel",
	"too_many_attachments":              "the message has too many attachments",
}

// slackStatus classifies Slack's non-200 answer: 5xx, 408 and 429 are
// retried (429 after Retry-After), anything else fails at once.
func slackStatus(resp *http.Response, body []byte, red redactor) error {
	code := strings.TrimSpace(string(body))
	if len(code) > errorBodyPrefix {
		code = code[:errorBodyPrefix] + "…"
	}
	msg := "slack webhook: " + resp.Status
	if code != "" {
		msg += ": " + code
	}
	if h := slackHints[code]; h != "" {
		msg += " (" + h + ")"
	}
	e := &slackError{msg: red.apply(msg)}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.wait = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if e.wait > 0 {
			e.msg += fmt.Sprintf("; Slack asks to retry after %s", e.wait)
		}
	}
	if retryableStatus(resp.StatusCode) {
		return e
	}
	return Permanent(e)
}

// parseRetryAfter reads Retry-After: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
