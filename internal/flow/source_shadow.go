package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nagare-iot/nagare/internal/shadow"
)

// consumerShadow is the durable consumer, shared by every node, that
// turns the shadow change feed into channel events.
const consumerShadow = "flux-shadows"

func init() {
	RegisterSource(Spec{Kind: "shadow",
		Summary: "A device shadow was updated or deleted (over MQTT, HTTP or by a flow), delivered durably from the shadow change feed. Message: `{previous, current, state, thingName, shadowName}` — the documents before and after (`current` is null after a delete) and the update's requested state; context `{eventType: \"shadow\", change: \"updated\"|\"deleted\", thingName, shadowName, version}` (`shadowName` is \"\" for the classic shadow).",
		Fields: []Field{
			{Name: "thingName", Type: TString, Doc: "only this thing; omitted: every thing"},
			{Name: "shadowName", Type: TString, Doc: "only this named shadow; omitted: every shadow, classic and named (a condition `context.shadowName == \"\"` keeps the classic one)"},
			{Name: "events", Type: TStrings, Enum: []string{shadow.EventUpdated, shadow.EventDeleted}, Default: []string{shadow.EventUpdated, shadow.EventDeleted}, Doc: "which changes fire"},
		},
		Check: func(cfg map[string]any) []string {
			var out []string
			if t, _ := cfg["thingName"].(string); t != "" && !shadow.ValidThingName(t) {
				out = append(out, fmt.Sprintf("thingName %q is not a thing name (1-128 of a-z A-Z 0-9 : _ -)", t))
			}
			if n, _ := cfg["shadowName"].(string); n != "" && !shadow.ValidShadowName(n) {
				out = append(out, fmt.Sprintf("shadowName %q is not a shadow name (1-64 of a-z A-Z 0-9 $ : _ -)", n))
			}
			return out
		},
	})
}

// startShadows consumes the shadow change feed. Its messages are handled
// in the consumer's callback, in order: each only fans out into channel
// events, which the worker pool runs.
func (e *Engine) startShadows(ctx context.Context) error {
	cons, err := e.bus.JS.CreateOrUpdateConsumer(ctx, shadow.EventStream, jetstream.ConsumerConfig{
		Durable:       consumerShadow,
		FilterSubject: shadow.EventSubjectPrefix + ">",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.opts.AckWait,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		MaxAckPending: e.opts.Workers * 4,
	})
	if err != nil {
		return fmt.Errorf("flow shadow consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { e.handleShadow(ctx, m) }, jetstream.PullMaxMessages(e.opts.Workers), consumeErrors)
	if err != nil {
		return fmt.Errorf("flow shadow consumer: %w", err)
	}
	e.consume = append(e.consume, cc)
	return nil
}

// handleShadow turns a shadow change into events for the channels whose
// shadow source matches it.
func (e *Engine) handleShadow(ctx context.Context, m jetstream.Msg) {
	op := m.Headers().Get(shadow.OperatorHeader)
	md, err := m.Metadata()
	var ev struct {
		Type       string `json:"type"`
		ThingName  string `json:"thingName"`
		ShadowName string `json:"shadowName"`
		Previous   any    `json:"previous"`
		Current    any    `json:"current"`
		State      any    `json:"state"`
		Version    int64  `json:"version"`
	}
	if err != nil || op == "" || json.Unmarshal(m.Data(), &ev) != nil {
		_ = m.Term()
		return
	}
	// An update made by a flow action carries its run's hop count on.
	hop, _ := strconv.Atoi(m.Headers().Get(shadow.HopHeader))
	payload := map[string]any{"previous": ev.Previous, "current": ev.Current, "state": ev.State,
		"thingName": ev.ThingName, "shadowName": ev.ShadowName}
	cv := map[string]any{"eventType": "shadow", "change": ev.Type, "thingName": ev.ThingName,
		"shadowName": ev.ShadowName, "version": ev.Version}
	seq := strconv.FormatUint(md.Sequence.Stream, 10)
	for _, la := range e.appsOf(op) {
		if !la.Enabled {
			continue
		}
		for _, ch := range la.App.Channels {
			for _, s := range ch.Sources {
				if s.Kind != "shadow" {
					continue
				}
				thing, _ := s.Config["thingName"].(string)
				name, _ := s.Config["shadowName"].(string)
				kinds, _ := s.Config["events"].([]string)
				if thing != "" && thing != ev.ThingName || name != "" && name != ev.ShadowName || !contains(kinds, ev.Type) {
					continue
				}
				id := childID("shadow", m.Subject(), seq, la.App.Name, ch.Name)
				env := &envelope{ID: id, Run: id, Op: op, App: la.App.Name, Channel: ch.Name, Source: "shadow", Hop: hop,
					Time: md.Timestamp.UnixMilli(), Payload: payload, Context: cv, Event: &origin{Payload: payload, Context: cv}}
				if err := e.publishEvent(ctx, env, 0); err != nil {
					slog.Warn("flow: shadow event", "app", la.App.Name, "err", err)
					_ = m.NakWithDelay(time.Second)
					return
				}
			}
		}
	}
	_ = m.Ack()
}
