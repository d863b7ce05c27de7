// The line event source: the LINE Messaging API posting webhooks to a
// channel's secret URL (the same URL mechanism as the webhook and slack
// sources). This file owns the source's spec, the X-Line-Signature check
// (the line-bot-sdk's webhook package), the normalized message shape and
// the de-duplication of redelivered webhook events.
package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"

	"github.com/nagare-iot/nagare/internal/api"
)

// credLineChannel is a LINE Messaging API channel: {channelSecret,
// channelAccessToken}.
const credLineChannel = "line-channel"

func init() {
	RegisterSource(Spec{Kind: "line",
		Summary: "LINE Messaging API webhooks posted to this channel's secret URL (`webhookUrl`, as for `webhook`; set it as the LINE channel's Webhook URL). `X-Line-Signature` is checked with the channel secret: a missing or bad signature gets 401 and starts nothing. Each event of a webhook starts one run; redelivered events are de-duplicated by `webhookEventId` (15 min). Message: `{type, messageType, text, messageId, replyToken, userId, source, timestamp, webhookEventId, raw}` (`messageType` text, image, sticker…, null for other events; `text` only for text); context `{eventType: \"line\", destination, mode, isRedelivery}`. Download an image with the `line` action's `content` operation.",
		Fields: []Field{
			{Name: "credentials", Type: TCredential, Required: true, Doc: "line-channel credential: its channelSecret verifies the webhooks"},
		},
	})
}

// lineSource returns the channel's line source, or nil.
func lineSource(ch *Channel) *Source {
	for _, s := range ch.Sources {
		if s.Kind == "line" {
			return s
		}
	}
	return nil
}

// lineEvent is one webhook event normalized for the flow.
type lineEvent struct {
	id      string // webhookEventId; "" if absent
	payload map[string]any
	context map[string]any
}

// receiveLine handles a request to a channel URL whose channel has a line
// source. Nothing starts unless the signature verifies.
func (e *Engine) receiveLine(w http.ResponseWriter, r *http.Request, la *loadedApp, channel string, src *Source) {
	ctx := r.Context()
	body, ok := e.readBody(w, r, "a LINE webhook")
	if !ok {
		return
	}
	credID, _ := src.Config["credentials"].(string)
	vals, err := credentialValues(ctx, e.deps, la.OperatorID, credID, credLineChannel)
	if err != nil || vals["channelSecret"] == "" {
		slog.Warn("flow: line source cannot verify webhooks", "app", la.App.Name, "channel", channel, "err", err)
		api.WriteError(w, r, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "this LINE endpoint is not configured; see the server log"))
		return
	}
	sig := r.Header.Get("X-Line-Signature")
	if sig == "" {
		api.WriteError(w, r, api.Unauthenticated("the request is not signed: X-Line-Signature is required"))
		return
	}
	if !webhook.ValidateSignature(vals["channelSecret"], sig, body) {
		api.WriteError(w, r, api.Unauthenticated("the LINE signature does not match (is the channel secret right?)"))
		return
	}
	events, err := lineEvents(body)
	if err != nil {
		api.WriteError(w, r, api.BadRequest("%v", err))
		return
	}
	if len(events) == 0 { // the console's "Verify" button posts no events
		api.WriteJSON(w, http.StatusOK, map[string]any{})
		return
	}
	if !la.Enabled {
		api.WriteError(w, r, errDisabled(la.App.Name))
		return
	}
	for _, ev := range events {
		if _, err := e.startRun(ctx, la.OperatorID, la.App.Name, channel, "line", ev.id, ev.payload, ev.context); err != nil {
			// LINE redelivers the whole webhook (when redelivery is on);
			// events already published are de-duplicated then.
			if errors.Is(err, ErrTooLarge) {
				api.WriteError(w, r, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "%v", err))
				return
			}
			api.WriteError(w, r, err)
			return
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{})
}

// lineEvents parses a verified webhook body with the SDK and normalizes
// each event; raw keeps the event as LINE sent it.
func lineEvents(body []byte) ([]*lineEvent, error) {
	var cb webhook.CallbackRequest
	if err := json.Unmarshal(body, &cb); err != nil {
		return nil, fmt.Errorf("the LINE webhook is not valid: %v", err)
	}
	var raw struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Events) != len(cb.Events) {
		return nil, errors.New("the LINE webhook's events are not valid JSON objects")
	}
	out := make([]*lineEvent, 0, len(cb.Events))
	for i, ev := range cb.Events {
		out = append(out, normalizeLineEvent(cb.Destination, ev, raw.Events[i]))
	}
	return out, nil
}

func normalizeLineEvent(destination string, ev webhook.EventInterface, raw map[string]any) *lineEvent {
	str := func(m map[string]any, k string) any {
		if s, ok := m[k].(string); ok {
			return s
		}
		return nil
	}
	p := map[string]any{
		"type": ev.GetType(), "messageType": nil, "text": nil, "messageId": nil,
		"replyToken": str(raw, "replyToken"), "userId": nil, "source": raw["source"],
		"timestamp": raw["timestamp"], "webhookEventId": str(raw, "webhookEventId"), "raw": raw,
	}
	if src, ok := raw["source"].(map[string]any); ok {
		p["userId"] = str(src, "userId")
	}
	if m, ok := ev.(webhook.MessageEvent); ok && m.Message != nil {
		p["messageType"] = m.Message.GetType()
		switch c := m.Message.(type) {
		case webhook.TextMessageContent:
			p["messageId"], p["text"] = c.Id, c.Text
		case webhook.ImageMessageContent:
			p["messageId"] = c.Id
		default:
			if msg, ok := raw["message"].(map[string]any); ok {
				p["messageId"] = str(msg, "id")
			}
		}
	}
	cv := map[string]any{"eventType": "line", "destination": destination, "mode": str(raw, "mode"), "isRedelivery": false}
	if dc, ok := raw["deliveryContext"].(map[string]any); ok {
		if b, ok := dc["isRedelivery"].(bool); ok {
			cv["isRedelivery"] = b
		}
	}
	id, _ := raw["webhookEventId"].(string)
	return &lineEvent{id: id, payload: p, context: cv}
}
