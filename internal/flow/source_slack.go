// The slack event source: Slack posting to a channel's secret webhook URL
// (the same URL mechanism as the webhook source) — legacy Outgoing
// Webhooks (a token in the form), or requests signed with a Slack app's
// signing secret (slash commands, the Events API). This file owns the
// source's spec, request authentication, parsing into one message shape,
// and the answers Slack expects.
package flow

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nagare-iot/nagare/internal/api"
)

// Slack source modes.
const (
	SlackOutgoing = "outgoing-webhook" // legacy Outgoing Webhooks: form + token
	SlackSigned   = "signed"           // slash commands and Events API: X-Slack-Signature
)

// SlackMaxSkew is how far a signed request's timestamp may be from now:
// older requests are replays (Slack's own rule is 5 minutes).
const SlackMaxSkew = 5 * time.Minute

func init() {
	RegisterSource(Spec{Kind: "slack", Check: checkSlackSource,
		Summary: "Slack posting to this channel's secret URL (`webhookUrl`, as for `webhook`): legacy Outgoing Webhooks (mode outgoing-webhook: the form's `token` is checked) or requests signed with a Slack app's signing secret (mode signed: slash commands, and Events API events; the URL verification is answered). Unauthenticated, stale (over 5 min) or badly signed requests get 401 and start nothing; Events API retries are de-duplicated by event_id. Message: `{user_id, user_name, text, command, args, channel_id, channel_name, team_id, trigger_word, event}`; context `{eventType: \"slack\", mode: outgoing-webhook|slash-command|events-api}`.",
		Fields: []Field{
			{Name: "mode", Type: TEnum, Enum: []string{SlackOutgoing, SlackSigned}, Required: true, Doc: "outgoing-webhook (legacy, token) or signed (a Slack app: slash commands, Events API)"},
			{Name: "credentials", Type: TCredential, Required: true, Doc: "outgoing-webhook: api-token-credentials holding the webhook's token; signed: slack-signing-secret"},
			{Name: "triggerWords", Type: TStrings, Doc: "only messages starting with one of these words (any case) start runs; the word becomes `command`, the rest `args` (not applied to slash commands)"},
			{Name: "ignoreBots", Type: TBool, Default: true, Doc: "ignore messages posted by bots and integrations (such as this app's own slack action), which could otherwise loop"},
			{Name: "reply", Type: TString, Doc: "text Slack shows in answer: posted in the channel (outgoing webhook) or to the user (slash command)"},
		},
	})
}

func checkSlackSource(cfg map[string]any) []string {
	var out []string
	words, _ := cfg["triggerWords"].([]string)
	for _, w := range words {
		if strings.TrimSpace(w) == "" || strings.ContainsFunc(w, unicode.IsSpace) {
			out = append(out, fmt.Sprintf("triggerWords: %q must be one word", w))
		}
	}
	return out
}

// slackSource returns the channel's slack source, or nil.
func slackSource(ch *Channel) *Source {
	for _, s := range ch.Sources {
		if s.Kind == "slack" {
			return s
		}
	}
	return nil
}

// hasHook reports whether a channel has a secret URL: its webhook, slack
// or line source is reached through it.
func hasHook(ch *Channel) bool {
	return hasSource(ch, "webhook") || hasSource(ch, "slack") || hasSource(ch, "line")
}

// slackMsg is a request normalized for the flow; nil fields stay null.
type slackMsg struct {
	payload map[string]any
	mode    string // outgoing-webhook, slash-command, events-api
	id      string // what Slack sends again on a retry; "" if nothing
	text    string // the text trigger words apply to ("" for slash commands)
	bot     bool   // posted by a bot or integration
	context map[string]any
}

// receiveSlack handles a request to a channel URL whose channel has a
// slack source. Nothing starts unless the request authenticates.
func (e *Engine) receiveSlack(w http.ResponseWriter, r *http.Request, la *loadedApp, channel string, src *Source) {
	ctx := r.Context()
	body, ok := e.readBody(w, r, "a Slack request")
	if !ok {
		return
	}
	mode, _ := src.Config["mode"].(string)
	credID, _ := src.Config["credentials"].(string)
	typ, field := credSlackSigning, "signingSecret"
	if mode == SlackOutgoing {
		typ, field = credSlackToken, "token"
	}
	vals, err := credentialValues(ctx, e.deps, la.OperatorID, credID, typ)
	if err != nil || vals[field] == "" {
		// The owner must fix the app; the caller learns only that it is
		// not ready (Slack retries, which is what we want once fixed).
		slog.Warn("flow: slack source cannot authenticate requests", "app", la.App.Name, "channel", channel, "err", err)
		api.WriteError(w, r, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "this Slack endpoint is not configured; see the server log"))
		return
	}
	secret := vals[field]

	var msg *slackMsg
	if mode == SlackOutgoing {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			api.WriteError(w, r, api.BadRequest("an Outgoing Webhook posts a form (application/x-www-form-urlencoded): %v", err))
			return
		}
		if !equalSecret(form.Get("token"), secret) {
			api.WriteError(w, r, api.Unauthenticated("the token does not match this channel's Outgoing Webhook token"))
			return
		}
		msg = outgoingMessage(form)
	} else {
		if err := verifySlackSignature(r.Header, body, secret, e.now()); err != nil {
			api.WriteError(w, r, api.Unauthenticated("%v", err))
			return
		}
		var answer any
		msg, answer, err = signedMessage(r.Header, body)
		if err != nil {
			api.WriteError(w, r, api.BadRequest("%v", err))
			return
		}
		if answer != nil { // the Events API's URL verification
			api.WriteJSON(w, http.StatusOK, answer)
			return
		}
	}
	if msg == nil || !slackWanted(msg, src) {
		api.WriteJSON(w, http.StatusOK, map[string]any{})
		return
	}
	if !la.Enabled {
		api.WriteError(w, r, errDisabled(la.App.Name))
		return
	}
	if _, err := e.startRun(ctx, la.OperatorID, la.App.Name, channel, "slack", msg.id, msg.payload, msg.context); err != nil {
		if errors.Is(err, ErrTooLarge) {
			api.WriteError(w, r, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "%v", err))
			return
		}
		api.WriteError(w, r, err)
		return
	}
	reply, _ := src.Config["reply"].(string)
	switch {
	case reply != "" && msg.mode == "outgoing-webhook":
		api.WriteJSON(w, http.StatusOK, map[string]any{"text": reply})
	case reply != "" && msg.mode == "slash-command":
		api.WriteJSON(w, http.StatusOK, map[string]any{"response_type": "ephemeral", "text": reply})
	case msg.mode == "slash-command":
		w.WriteHeader(http.StatusOK) // an empty 200 shows the user nothing
	default:
		api.WriteJSON(w, http.StatusOK, map[string]any{})
	}
}

// equalSecret compares in constant time (for equal lengths; the length
// of a token is no secret worth hiding).
func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// verifySlackSignature checks Slack's request signature:
// X-Slack-Signature = "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp +
// ":" + body)), with X-Slack-Request-Timestamp within SlackMaxSkew of now.
func verifySlackSignature(h http.Header, body []byte, secret string, now time.Time) error {
	ts, sig := h.Get("X-Slack-Request-Timestamp"), h.Get("X-Slack-Signature")
	if ts == "" || sig == "" {
		return errors.New("the request is not signed: X-Slack-Request-Timestamp and X-Slack-Signature are required")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("X-Slack-Request-Timestamp is not a UNIX time")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SlackMaxSkew || d < -SlackMaxSkew {
		return fmt.Errorf("the request's timestamp is %s from now (more than %s): a replay, or a clock is wrong", d.Round(time.Second).Abs(), SlackMaxSkew)
	}
	if !equalSecret(sig, slackSignature(secret, ts, body)) {
		return errors.New("the Slack signature does not match (is the signing secret right?)")
	}
	return nil
}

// slackSignature is the X-Slack-Signature of a request.
func slackSignature(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// formEvent is a form as the flow's event: every field but the token.
func formEvent(form url.Values) map[string]any {
	ev := make(map[string]any, len(form))
	for k, v := range form {
		if k != "token" && len(v) > 0 {
			ev[k] = v[0]
		}
	}
	return ev
}

// outgoingMessage reads a legacy Outgoing Webhook's form.
func outgoingMessage(form url.Values) *slackMsg {
	text := form.Get("text")
	p := map[string]any{
		"user_id": form.Get("user_id"), "user_name": form.Get("user_name"), "text": text,
		"command": "", "args": text, "channel_id": form.Get("channel_id"), "channel_name": form.Get("channel_name"),
		"team_id": form.Get("team_id"), "trigger_word": form.Get("trigger_word"), "event": formEvent(form),
	}
	var id string
	if ts := form.Get("timestamp"); ts != "" {
		id = "outgoing\x00" + form.Get("team_id") + "\x00" + form.Get("channel_id") + "\x00" + ts
	}
	// Slack posts bot and integration messages too (user_name slackbot,
	// or a bot_id); with no trigger word configured our own posts would
	// come back.
	bot := form.Get("bot_id") != "" || form.Get("user_id") == "USLACKBOT"
	return &slackMsg{payload: p, mode: "outgoing-webhook", id: id, text: text, bot: bot,
		context: map[string]any{"eventType": "slack", "mode": "outgoing-webhook"}}
}

// signedMessage reads a signed request: a slash command (a form with a
// command), or an Events API callback (JSON). answer is set for the URL
// verification handshake; msg is nil for requests that start nothing
// (other callback types, interactivity payloads).
func signedMessage(h http.Header, body []byte) (msg *slackMsg, answer any, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return eventsMessage(h, trimmed)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nil, fmt.Errorf("a signed Slack request is JSON (Events API) or a form (slash command): %v", err)
	}
	if form.Get("command") == "" {
		return nil, nil, nil // interactivity and other forms: not handled here
	}
	text := form.Get("text")
	p := map[string]any{
		"user_id": form.Get("user_id"), "user_name": form.Get("user_name"), "text": text,
		"command": form.Get("command"), "args": strings.TrimSpace(text), "channel_id": form.Get("channel_id"),
		"channel_name": form.Get("channel_name"), "team_id": form.Get("team_id"), "trigger_word": nil, "event": formEvent(form),
	}
	var id string
	if t := form.Get("trigger_id"); t != "" {
		id = "slash\x00" + t
	}
	return &slackMsg{payload: p, mode: "slash-command", id: id,
		context: map[string]any{"eventType": "slack", "mode": "slash-command"}}, nil, nil
}

// eventsMessage reads an Events API request.
func eventsMessage(h http.Header, body []byte) (*slackMsg, any, error) {
	var outer struct {
		Type      string         `json:"type"`
		Challenge string         `json:"challenge"`
		TeamID    string         `json:"team_id"`
		EventID   string         `json:"event_id"`
		EventTime int64          `json:"event_time"`
		Event     map[string]any `json:"event"`
	}
	if err := json.Unmarshal(body, &outer); err != nil {
		return nil, nil, fmt.Errorf("the Events API request is not valid JSON: %v", err)
	}
	switch outer.Type {
	case "url_verification":
		return nil, map[string]any{"challenge": outer.Challenge}, nil
	case "event_callback":
	default:
		return nil, nil, nil // app_rate_limited and future types
	}
	if outer.Event == nil {
		return nil, nil, errors.New("an event_callback without an event")
	}
	str := func(k string) string { s, _ := outer.Event[k].(string); return s }
	text := str("text")
	channel := str("channel")
	if channel == "" { // e.g. reaction_added: the item's channel
		if item, _ := outer.Event["item"].(map[string]any); item != nil {
			channel, _ = item["channel"].(string)
		}
	}
	team := outer.TeamID
	if team == "" {
		team = str("team")
	}
	p := map[string]any{
		"user_id": str("user"), "user_name": nil, "text": text, "command": "", "args": text,
		"channel_id": channel, "channel_name": nil, "team_id": team, "trigger_word": nil, "event": outer.Event,
	}
	cv := map[string]any{"eventType": "slack", "mode": "events-api", "eventId": outer.EventID, "eventTime": outer.EventTime}
	if n := h.Get("X-Slack-Retry-Num"); n != "" {
		cv["retryNum"] = n
	}
	var id string
	if outer.EventID != "" {
		id = "event\x00" + outer.EventID
	}
	bot := str("bot_id") != "" || str("subtype") == "bot_message"
	return &slackMsg{payload: p, mode: "events-api", id: id, text: text, bot: bot, context: cv}, nil, nil
}

// slackWanted applies the source's filters: bots, and trigger words
// (which also fill command, args and trigger_word).
func slackWanted(msg *slackMsg, src *Source) bool {
	if ignore, _ := src.Config["ignoreBots"].(bool); ignore && msg.bot {
		return false
	}
	if msg.mode == "slash-command" {
		return true
	}
	words, _ := src.Config["triggerWords"].([]string)
	if len(words) == 0 {
		// Slack matched one of its own trigger words: split on it.
		if tw, _ := msg.payload["trigger_word"].(string); tw != "" {
			if cmd, typed, args, ok := matchTrigger(msg.text, []string{tw}); ok {
				msg.payload["command"], msg.payload["trigger_word"], msg.payload["args"] = cmd, typed, args
			}
		}
		return true
	}
	cmd, typed, args, ok := matchTrigger(msg.text, words)
	if !ok {
		return false
	}
	msg.payload["command"], msg.payload["trigger_word"], msg.payload["args"] = cmd, typed, args
	return true
}

// matchTrigger finds the trigger word a text starts with, in any case, as
// a whole word ("ok" matches "OK, on my way" but not "okay"). Leading
// mentions (an app_mention's "<@U…> ok") are skipped. It returns the
// word as configured, as typed, and the rest of the text.
func matchTrigger(text string, words []string) (cmd, typed, args string, ok bool) {
	t := strings.TrimSpace(text)
	for strings.HasPrefix(t, "<@") {
		end := strings.IndexByte(t, '>')
		if end < 0 {
			break
		}
		t = strings.TrimSpace(t[end+1:])
	}
	for _, w := range words {
		if len(t) < len(w) || !strings.EqualFold(t[:len(w)], w) {
			continue
		}
		rest := t[len(w):]
		if r, _ := utf8.DecodeRuneInString(rest); rest != "" && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			continue // a longer word
		}
		return w, t[:len(w)], strings.TrimSpace(strings.TrimLeft(rest, " \t:,;")), true
	}
	return "", "", "", false
}
