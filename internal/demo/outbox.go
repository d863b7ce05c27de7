package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The outbox stands in for Slack and LINE: the demo points the example
// apps' Slack webhook credential and nagare's line-api-url/line-data-url
// at it. What would have been sent is stored as Harvest Data of
// App/demo-outbox (one entry per message), which the demo-outbox dashboard
// shows live. It follows the services' documented shapes: Slack answers
// "ok"; LINE answers {sentMessages}, serves message content and profiles.
const (
	outboxPath     = "/_demo/"
	OutboxResource = "demo-outbox"
	lineBase       = outboxPath + "line"
	slackBase      = outboxPath + "slack/"
)

// Recorder stores one outbox message (Harvest Data of App/demo-outbox).
type Recorder func(ctx context.Context, msg map[string]any)

type outbox struct {
	lineToken string
	record    Recorder
	// onSlack is told about every Slack message (the demo's staff answer).
	onSlack func(text string)

	mu       sync.Mutex
	content  map[string][]byte // LINE message ID → image bytes
	profiles map[string]string // LINE user ID → display name
}

func newOutbox(lineToken string, record Recorder) *outbox {
	return &outbox{lineToken: lineToken, record: record, content: map[string][]byte{}, profiles: map[string]string{}}
}

func (o *outbox) serveContent(id string, b []byte) {
	o.mu.Lock()
	o.content[id] = b
	o.mu.Unlock()
}

func (o *outbox) profile(user, name string) {
	o.mu.Lock()
	o.profiles[user] = name
	o.mu.Unlock()
}

// handler serves /_demo/line/… and /_demo/slack/….
func (o *outbox) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+slackBase+"{hook}", o.slack)
	mux.HandleFunc("POST "+lineBase+"/v2/bot/message/{op}", o.lineSend)
	mux.HandleFunc("GET "+lineBase+"/v2/bot/message/{id}/content", o.lineContent)
	mux.HandleFunc("GET "+lineBase+"/v2/bot/profile/{id}", o.lineProfile)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (o *outbox) slack(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Text   string `json:"text"`
		Blocks []any  `json:"blocks"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil || (msg.Text == "" && len(msg.Blocks) == 0) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_payload")
		return
	}
	o.record(r.Context(), map[string]any{"service": "slack", "operation": "incoming-webhook", "to": r.PathValue("hook"), "text": msg.Text})
	if o.onSlack != nil {
		go o.onSlack(msg.Text)
	}
	io.WriteString(w, "ok")
}

func (o *outbox) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+o.lineToken {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Authentication failed. Confirm that the access token in the authorization header is valid."})
		return false
	}
	return true
}

func (o *outbox) lineSend(w http.ResponseWriter, r *http.Request) {
	if !o.authorized(w, r) {
		return
	}
	op := r.PathValue("op")
	if op != "reply" && op != "push" {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not found"})
		return
	}
	var req struct {
		ReplyToken string            `json:"replyToken"`
		To         string            `json:"to"`
		Messages   []json.RawMessage `json:"messages"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Messages) == 0 || len(req.Messages) > 5 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "The request body has 1 error(s)",
			"details": []map[string]string{{"message": "must be specified", "property": "messages"}}})
		return
	}
	to := req.To
	if op == "reply" {
		to = "reply " + shorten(req.ReplyToken, 8)
	}
	var texts []string
	sent := make([]map[string]string, len(req.Messages))
	for i, m := range req.Messages {
		var v struct{ Type, Text, AltText string }
		_ = json.Unmarshal(m, &v)
		switch v.Type {
		case "text":
			texts = append(texts, v.Text)
		case "flex":
			texts = append(texts, "[Flex] "+v.AltText)
		default:
			texts = append(texts, "["+v.Type+"]")
		}
		sent[i] = map[string]string{"id": fmt.Sprint(time.Now().UnixNano() + int64(i)), "quoteToken": "demo"}
	}
	o.record(r.Context(), map[string]any{"service": "line", "operation": op, "to": to, "text": strings.Join(texts, " / ")})
	writeJSON(w, http.StatusOK, map[string]any{"sentMessages": sent})
}

func (o *outbox) lineContent(w http.ResponseWriter, r *http.Request) {
	if !o.authorized(w, r) {
		return
	}
	o.mu.Lock()
	b, ok := o.content[r.PathValue("id")]
	o.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not found"})
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Write(b)
}

func (o *outbox) lineProfile(w http.ResponseWriter, r *http.Request) {
	if !o.authorized(w, r) {
		return
	}
	o.mu.Lock()
	name, ok := o.profiles[r.PathValue("id")]
	o.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"userId": r.PathValue("id"), "displayName": name, "language": "ja"})
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// logRecorder wraps a recorder so failures are logged, not fatal.
func logRecorder(put func(ctx context.Context, content []byte) error) Recorder {
	return func(ctx context.Context, msg map[string]any) {
		b, _ := json.Marshal(msg)
		if err := put(ctx, b); err != nil {
			slog.Warn("demo outbox: storing a message", "err", err)
		}
	}
}
