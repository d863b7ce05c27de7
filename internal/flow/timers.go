// Keyed timers: an output with a `key` is a durable, replaceable timer (a
// NATS message schedule on a subject named by the key), and the `timer`
// action cancels one. This file owns their subjects, the supersede and
// cancel mechanics, and the `timer` action kind.
package flow

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nagare-iot/nagare/internal/expr"
)

// subjKeyed prefixes keyed timers:
//
//	flux.sched.k.<op>.<app>.<channel>.<key hash>.<event id>
//
// It lies under flux.sched.> (the FLUX stream's schedules) but has more
// tokens than the one-off delays' flux.sched.<event id>, so the two never
// collide. The key is hashed: it is user text (any characters, any
// length) and subjects take neither.
const subjKeyed = subjSched + "k."

// MaxTimerKey bounds a rendered timer key.
const MaxTimerKey = 1024

func init() {
	RegisterAction(Spec{Kind: "timer", Run: runTimer, Idempotent: true,
		Summary: "Cancels the pending keyed timer(s) of this app with a key (see an output's `key`): they never fire. Output: `{key, cancelled}` (how many were pending).",
		Fields: []Field{
			{Name: "cancel", Type: TTemplate, Required: true, Doc: "the key of the timer to cancel, e.g. idle-${payload.staff}"},
			{Name: "channel", Type: TChannel, Doc: "only the timer sending to this channel (default: any channel of the app)"},
		},
	})
}

// keyHash names a key in subjects.
func keyHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:16]))
}

// keyedFilter is the subject filter of an app's pending timers with a
// key; channel "*" matches any channel.
func keyedFilter(op, app, channel, key string) string {
	return subjKeyed + op + "." + app + "." + channel + "." + keyHash(key) + ".*"
}

// keyOutputs turns an action's outputs into keyed timers when its output
// has a key: each becomes the first event of a run of its own (source
// "timer"), due at now+delay. A timer that is replaced or cancelled never
// arrives; were it part of the run that set it, that run would wait for
// it forever.
func (e *Engine) keyOutputs(outs []*envelope, ev *envelope, ca *compiledAction, env expr.Env, result any, delay time.Duration) error {
	tenv := expr.Env{"result": result}
	for k, v := range env {
		tenv[k] = v
	}
	key, err := renderString(ca.Output.Key, "", tenv)
	if err != nil {
		return Permanent(fmt.Errorf("output key: %w", err))
	}
	switch {
	case key == "":
		return Permanent(errors.New("output key rendered empty; a keyed timer needs a key"))
	case len(key) > MaxTimerKey:
		return Permanent(fmt.Errorf("output key is %d bytes; at most %d", len(key), MaxTimerKey))
	}
	due := e.now().Add(delay).UnixMilli()
	for _, o := range outs {
		o.Key, o.Run, o.Hop, o.Source, o.Time = key, o.ID, 0, "timer", due
		o.Context = map[string]any{"eventType": "timer", "key": key, "channel": ev.Channel, "action": ca.Name, "runId": ev.Run}
		o.Event = &origin{Payload: o.Payload, Context: o.Context}
	}
	return nil
}

// inRun counts the outputs that continue run (keyed timers start their
// own), which is the run's new outstanding work.
func inRun(run string, outs []*envelope) int {
	n := 0
	for _, o := range outs {
		if o.Run == run {
			n++
		}
	}
	return n
}

// publishKeyed schedules a keyed timer and drops the older pending timers
// with the same key and channel.
//
// Each timer has a subject of its own (…<key hash>.<event id>), published
// first; then the key's older timers are purged with keep=1, which keeps
// the newest message under the key's filter. Why not one subject per key,
// where JetStream's schedule rollup (Nats-Rollup: sub, which the server
// adds to every schedule) would replace the older timer in one atomic
// publish? A fired one-off schedule purges its own schedule subject
// ("Nats-Schedule-Next: purge") when the server stores the fired message;
// a newer timer stored on that subject in between — a press at the very
// moment the old timer fires — would be purged with it and silently lost.
// With a subject per timer the fired message purges only itself. The cost
// is that supersede is two requests: if this node dies between them, the
// step is redelivered and repeats both (the publish is deduplicated by its
// message id), and only a timer already due by then fires early.
func (e *Engine) publishKeyed(ctx context.Context, ev *envelope, target string, body []byte, delay time.Duration) error {
	prefix := strings.TrimSuffix(keyedFilter(ev.Op, ev.App, ev.Channel, ev.Key), "*")
	if _, err := e.bus.JS.Publish(ctx, prefix+ev.ID, body, jetstream.WithMsgID("sched/"+ev.ID),
		jetstream.WithScheduleAt(e.now().Add(delay)), jetstream.WithScheduleTarget(target)); err != nil {
		return err
	}
	s, err := e.bus.JS.Stream(ctx, Stream)
	if err != nil {
		return err
	}
	return s.Purge(ctx, jetstream.WithPurgeSubject(prefix+"*"), jetstream.WithPurgeKeep(1))
}

// CancelTimer removes an app's pending timers with key (for one channel,
// or any with channel ""); it returns how many were pending.
func (e *Engine) CancelTimer(ctx context.Context, op, app, channel, key string) (int, error) {
	if channel == "" {
		channel = "*"
	}
	filter := keyedFilter(op, app, channel, key)
	s, err := e.bus.JS.Stream(ctx, Stream)
	if err != nil {
		return 0, err
	}
	// The count is for the run history; a timer firing in between is
	// counted but gone anyway.
	n := 0
	if info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter)); err == nil {
		for _, c := range info.State.Subjects {
			n += int(c)
		}
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(filter)); err != nil {
		return 0, err
	}
	return n, nil
}

// purgeKeyed drops every pending keyed timer of a deleted app, so that an
// app created again under the name does not receive them.
func (e *Engine) purgeKeyed(ctx context.Context, s jetstream.Stream, op, app string) error {
	return s.Purge(ctx, jetstream.WithPurgeSubject(subjKeyed+op+"."+app+".>"))
}

type engineKey struct{}

// withEngine lets actions that act on the engine itself (the timer
// action) reach it; other actions only see their Call.
func withEngine(ctx context.Context, e *Engine) context.Context {
	return context.WithValue(ctx, engineKey{}, e)
}

func runTimer(ctx context.Context, c *Call) (any, error) {
	key := cfgString(c.Config, "cancel")
	if key == "" {
		return nil, Permanent(errors.New("cancel rendered empty; name the key of the timer to cancel"))
	}
	e, _ := ctx.Value(engineKey{}).(*Engine)
	if e == nil {
		return nil, Permanent(errors.New("the timer action runs only inside the flow engine"))
	}
	n, err := e.CancelTimer(ctx, c.OperatorID, c.App, cfgString(c.Config, "channel"), key)
	if err != nil {
		return nil, fmt.Errorf("cancelling timer %q: %w", key, err)
	}
	return map[string]any{"key": key, "cancelled": n}, nil
}
