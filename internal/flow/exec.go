package flow

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nagare-iot/nagare/internal/expr"
	"github.com/nagare-iot/nagare/internal/harvest"
)

// Step statuses in the run history.
const (
	StepReceived  = "received"  // an event reached a channel
	StepRunning   = "running"   // an attempt started (and, if it stays so, was interrupted)
	StepDropped   = "dropped"   // the app, channel or action is gone
	StepSkipped   = "skipped"   // the condition was false
	StepSucceeded = "succeeded" // the action ran
	StepRetrying  = "retrying"  // this attempt failed; another follows
	StepFailed    = "failed"    // the last attempt failed (dead-lettered)
)

func (e *Engine) handle(ctx context.Context, m jetstream.Msg) {
	subj := m.Subject()
	switch {
	case strings.HasPrefix(subj, subjIn):
		e.handleEvent(ctx, m)
	case strings.HasPrefix(subj, subjDo):
		e.handleAction(ctx, m)
	case strings.HasPrefix(subj, harvest.SubjectPrefix):
		e.handleDevice(ctx, m)
	default:
		_ = m.Term()
	}
}

func decode(m jetstream.Msg) (*envelope, *jetstream.MsgMetadata, bool) {
	var ev envelope
	md, err := m.Metadata()
	if err != nil || json.Unmarshal(m.Data(), &ev) != nil || ev.Op == "" || ev.App == "" {
		slog.Warn("flow: dropping a malformed message", "subject", m.Subject())
		_ = m.Term()
		return nil, nil, false
	}
	return &ev, md, true
}

// handleEvent fans an event arriving at a channel out to its actions.
func (e *Engine) handleEvent(ctx context.Context, m jetstream.Msg) {
	ev, md, ok := decode(m)
	if !ok {
		return
	}
	if ev.ID == "" { // a timer firing: the stream sequence names it
		ev.ID = "t" + strconv.FormatUint(md.Sequence.Stream, 10)
		ev.Run = ev.ID
		ev.Time = md.Timestamp.UnixMilli()
		ev.Context = map[string]any{"eventType": "schedule", "scheduleId": ev.Timer, "timestamp": ev.Time}
		ev.Event = &origin{Payload: ev.Payload, Context: ev.Context}
	}
	st := &step{Run: ev.Run, WorkID: ev.ID, Attempt: 1, Kind: "event", Channel: ev.Channel, Hop: ev.Hop,
		Status: StepReceived, Input: ev.Payload, Started: e.now()}
	la := e.app(ev.Op, ev.App)
	var ch *Channel
	if la != nil {
		ch = la.channels[ev.Channel]
	}
	switch {
	case la == nil || !la.Enabled || ch == nil || !la.current(ev.Gen):
		if ev.Run == ev.ID {
			_ = m.Ack() // nothing started: nothing to record
			return
		}
		st.Status, st.Error = StepDropped, "the app was deleted or disabled, or lost this channel, while the run was under way"
		st.delta = -1
	case ev.Hop > e.opts.MaxHops:
		st.Status = StepFailed
		st.Error = fmt.Sprintf("hop limit reached: this run passed through channels %d times (limit %d); a loop that never ends? It was stopped at channel %s", ev.Hop, e.opts.MaxHops, ev.Channel)
		st.runError, st.delta = st.Error, -1
		if ev.Run == ev.ID { // a files event caused by a files action
			st.newRun = &runStart{Op: ev.Op, App: ev.App, Channel: ev.Channel, Source: ev.Source, Started: time.UnixMilli(ev.Time)}
		}
	default:
		st.delta = len(ch.Actions) - 1
		if ev.Run == ev.ID { // the first event of a run
			st.newRun = &runStart{Op: ev.Op, App: ev.App, Channel: ev.Channel, Source: ev.Source, Started: time.UnixMilli(ev.Time)}
			st.delta = len(ch.Actions)
		}
	}
	if err := e.record(ctx, st); err != nil {
		slog.Warn("flow: recording an event", "app", ev.App, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	if st.Status == StepReceived {
		var futures []jetstream.PubAckFuture
		for _, a := range ch.Actions {
			w := *ev
			w.Action = a.Name
			body, _ := json.Marshal(&w)
			f, err := e.bus.JS.PublishAsync(subjDo+ev.Op+"."+ev.App+"."+a.Name, body, jetstream.WithMsgID(ev.ID+"/"+a.Name))
			if err != nil {
				_ = m.NakWithDelay(time.Second)
				return
			}
			futures = append(futures, f)
		}
		if err := waitAcks(ctx, futures); err != nil {
			slog.Warn("flow: queueing actions", "app", ev.App, "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
	}
	_ = m.Ack()
}

func waitAcks(ctx context.Context, fs []jetstream.PubAckFuture) error {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for _, f := range fs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-t.C:
			return errors.New("timed out waiting for the stream")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// handleAction runs one action for one event.
func (e *Engine) handleAction(ctx context.Context, m jetstream.Msg) {
	ev, md, ok := decode(m)
	if !ok {
		return
	}
	attempt := int(md.NumDelivered)
	workID := ev.ID + "/" + ev.Action
	st := &step{Run: ev.Run, WorkID: workID, Attempt: attempt, Kind: "action", Channel: ev.Channel, Action: ev.Action,
		Hop: ev.Hop, Input: ev.Payload, Started: e.now()}
	la := e.app(ev.Op, ev.App)
	var ca *compiledAction
	if la != nil && la.Enabled && la.current(ev.Gen) {
		ca = la.actions[ev.Action]
	}
	if ca == nil {
		st.Status, st.Error, st.delta = StepDropped, "the app was deleted or disabled, or lost this action, while the run was under way", -1
		e.finishStep(ctx, m, st, nil, 0)
		return
	}
	// What earlier deliveries did. Checked on every delivery, not only
	// redeliveries: after a crash the stream may hand out a message again
	// as if for the first time.
	prev, err := e.priorAttempts(ctx, ev.Run, workID)
	if err != nil {
		_ = m.NakWithDelay(time.Second)
		return
	}
	if prev.final != "" {
		// Done before a crash, but not acknowledged: send what it sent.
		e.publishOutputs(ctx, m, prev.emitted, prev.delay)
		return
	}
	attempt = max(attempt, prev.last+1)
	st.Attempt = attempt
	if prev.interrupted > 0 && !ca.spec.Idempotent {
		st.Note = fmt.Sprintf("attempt %d was interrupted (node stopped or timed out) after the action started; a %s action may have taken effect twice", prev.interrupted, ca.Kind)
	}

	env := e.env(ev)
	st.Condition = ""
	if ca.condition != nil {
		ok, err := ca.condition.Eval(env)
		if err != nil {
			e.fail(ctx, m, ev, ca, st, Permanent(fmt.Errorf("condition: %w", err)))
			return
		}
		if !ok {
			st.Condition, st.Status, st.delta = "false", StepSkipped, -1
			e.finishStep(ctx, m, st, nil, 0)
			return
		}
		st.Condition = "true"
	}
	cfg, err := renderConfig(ca.spec.Fields, ca.Config, env)
	if err != nil {
		e.fail(ctx, m, ev, ca, st, Permanent(err))
		return
	}
	st.Config = maskSecrets(cfg)

	if !ca.spec.Idempotent {
		// Mark the attempt as started, so that if this node dies before
		// it finishes, the next attempt can say the effect may repeat.
		mark := *st
		mark.Status, mark.marker = StepRunning, true
		if err := e.record(ctx, &mark); err != nil {
			_ = m.NakWithDelay(time.Second)
			return
		}
	}
	actx, cancel := context.WithTimeout(withEngine(withRun(ctx, ev), e), ca.Timeout)
	stopBeat := heartbeat(m, e.opts.AckWait/3)
	start := time.Now()
	result, err := ca.spec.Run(actx, &Call{Deps: e.deps, OperatorID: ev.Op, App: ev.App, Action: ca.Action, Config: cfg, Input: ev.Payload, Attempt: attempt, WorkID: workID})
	if err == nil && actx.Err() != nil {
		err = fmt.Errorf("timed out after %s", ca.Timeout)
	} else if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("timed out after %s: %w", ca.Timeout, err)
	}
	cancel()
	stopBeat()
	e.m.duration.WithLabelValues(ca.Kind).Observe(time.Since(start).Seconds())
	if ctx.Err() != nil {
		// Shutting down: leave the message for redelivery.
		return
	}
	var outs []*envelope
	var delay time.Duration
	if err == nil {
		st.Output = result
		outs, delay, err = e.outputs(ev, ca, ca.Output, "", env, cfg, result)
	}
	if err != nil {
		e.fail(ctx, m, ev, ca, st, err)
		return
	}
	st.Status, st.Emitted, st.delay = StepSucceeded, outs, delay
	st.delta = inRun(ev.Run, outs) - 1
	e.m.steps.WithLabelValues(ca.Kind, StepSucceeded).Inc()
	e.finishStep(ctx, m, st, outs, delay)
}

// heartbeat keeps a long step's message from being redelivered while it runs.
func heartbeat(m jetstream.Msg, every time.Duration) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// fail records a failed attempt: retried later with back-off, or — after the
// last retry, or for errors a retry cannot fix — dead-lettered.
func (e *Engine) fail(ctx context.Context, m jetstream.Msg, ev *envelope, ca *compiledAction, st *step, err error) {
	st.Error = err.Error()
	if !IsPermanent(err) && st.Attempt <= ca.Retries {
		st.Status = StepRetrying
		e.m.steps.WithLabelValues(ca.Kind, StepRetrying).Inc()
		if rerr := e.record(ctx, st); rerr != nil {
			slog.Warn("flow: recording a step", "app", ev.App, "err", rerr)
		}
		_ = m.NakWithDelay(max(e.backoff(st.Attempt), retryAfter(err)))
		return
	}
	st.Status, st.delta = StepFailed, -1
	if ca.OnError != nil {
		// Handled: the failure goes on to the onError channel, and the run
		// can still succeed.
		env := e.env(ev)
		env["error"] = st.Error
		val := map[string]any{"error": st.Error, "action": ca.Name, "attempts": st.Attempt, "payload": ev.Payload}
		outs, delay, oerr := e.outputs(ev, ca, ca.OnError, "onError", env, nil, val)
		if oerr == nil {
			st.Emitted, st.delay = outs, delay
			st.delta = inRun(ev.Run, outs) - 1
			e.m.steps.WithLabelValues(ca.Kind, StepFailed).Inc()
			e.finishStep(ctx, m, st, outs, delay)
			return
		}
		st.Error += "; onError: " + oerr.Error()
	}
	if IsPermanent(err) {
		st.runError = fmt.Sprintf("action %s failed: %s", ca.Name, st.Error)
	} else {
		st.runError = fmt.Sprintf("action %s failed after %d attempts: %s", ca.Name, st.Attempt, st.Error)
	}
	e.m.steps.WithLabelValues(ca.Kind, StepFailed).Inc()
	dead, _ := json.Marshal(map[string]any{"event": ev, "error": st.Error, "attempts": st.Attempt, "time": e.now().UnixMilli()})
	if _, perr := e.bus.JS.Publish(ctx, subjDead+ev.Op+"."+ev.App+"."+ca.Name, dead, jetstream.WithMsgID(st.WorkID)); perr != nil {
		slog.Warn("flow: dead-lettering", "app", ev.App, "action", ca.Name, "err", perr)
		_ = m.NakWithDelay(time.Second)
		return
	}
	e.finishStep(ctx, m, st, nil, 0)
}

// finishStep records a final step, sends its outputs and acknowledges.
func (e *Engine) finishStep(ctx context.Context, m jetstream.Msg, st *step, outs []*envelope, delay time.Duration) {
	if err := e.record(ctx, st); err != nil {
		slog.Warn("flow: recording a step", "action", st.Action, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	e.publishOutputs(ctx, m, outs, delay)
}

func (e *Engine) publishOutputs(ctx context.Context, m jetstream.Msg, outs []*envelope, delay time.Duration) {
	for _, o := range outs {
		if err := e.publishEvent(ctx, o, delay); err != nil {
			slog.Warn("flow: sending an output", "app", o.App, "channel", o.Channel, "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
	}
	_ = m.Ack()
}

// outputs builds the events an action's result sends on through o (its
// output, or with tag "onError" its error output).
func (e *Engine) outputs(ev *envelope, ca *compiledAction, o *Output, tag string, env expr.Env, cfg map[string]any, result any) ([]*envelope, time.Duration, error) {
	if o == nil {
		return nil, 0, nil
	}
	val := result
	if o.Transform != nil {
		tenv := expr.Env{"result": result}
		for k, v := range env {
			tenv[k] = v
		}
		v, err := e.renderValue(o.Transform, tenv, nil)
		if err != nil {
			return nil, 0, Permanent(fmt.Errorf("%s transform: %w", cmp.Or(tag, "output"), err))
		}
		val = v
	}
	vals := []any{val}
	if o.ForEach {
		list, ok := val.([]any)
		if !ok {
			return nil, 0, Permanent(fmt.Errorf("output forEach: the result is %s, not a list", typeName(val)))
		}
		vals = list
	}
	delay := o.Delay
	if d, ok := cfg["duration"].(time.Duration); ok && ca.Kind == "delay" {
		delay += d
	}
	delay = min(delay, MaxOutputDelay)
	root := ev.Event
	if root == nil {
		root = &origin{Payload: ev.Payload, Context: ev.Context}
	}
	outs := make([]*envelope, 0, len(vals))
	for i, v := range vals {
		if n, err := jsonSize(v); err != nil {
			return nil, 0, Permanent(fmt.Errorf("output %d: %w", i, err))
		} else if n > e.opts.MaxPayloadBytes {
			return nil, 0, Permanent(fmt.Errorf("output payload is %d bytes; at most %d may be sent to a channel", n, e.opts.MaxPayloadBytes))
		}
		id := childID(ev.ID, ca.Name, strconv.Itoa(i))
		if tag != "" {
			id = childID(ev.ID, ca.Name, tag, strconv.Itoa(i))
		}
		outs = append(outs, &envelope{
			ID: id, Run: ev.Run, Op: ev.Op, App: ev.App, Channel: o.Channel, Gen: ev.Gen,
			Hop: ev.Hop + 1, Source: ev.Source, Time: e.now().UnixMilli(), Payload: v,
			Context: outContext(ev.Channel, ca.Name, tag),
			Event:   root,
		})
	}
	if o.Key != "" {
		if err := e.keyOutputs(outs, ev, ca, env, result, delay); err != nil {
			return nil, 0, err
		}
	}
	return outs, delay, nil
}

func outContext(channel, action, tag string) map[string]any {
	c := map[string]any{"eventType": "action", "channel": channel, "action": action}
	if tag != "" {
		c["eventType"] = "error"
	}
	return c
}

// retryAfter is how long an error asks to wait before the next attempt
// (a 429's Retry-After), at most MaxOutputDelay; 0 when it does not say.
func retryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return min(ra.RetryAfter(), MaxOutputDelay)
	}
	return 0
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	default:
		return "a number"
	}
}

type runKey struct{}

// withRun tells code an action calls (the Files change hook) which event
// it runs for, so events it causes count the hops of their cause: a files
// action writing under the prefix of its own files source is a loop too.
func withRun(ctx context.Context, ev *envelope) context.Context {
	return context.WithValue(ctx, runKey{}, ev)
}

// causeHop is the hop count of the event an action runs for, or -1.
func causeHop(ctx context.Context) int {
	if ev, ok := ctx.Value(runKey{}).(*envelope); ok {
		return ev.Hop
	}
	return -1
}
