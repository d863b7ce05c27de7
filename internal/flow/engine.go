package flow

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nagare-iot/nagare/internal/auth"
	"github.com/nagare-iot/nagare/internal/bus"
	"github.com/nagare-iot/nagare/internal/expr"
	"github.com/nagare-iot/nagare/internal/inventory"
	"github.com/nagare-iot/nagare/internal/store"
)

// How execution maps onto JetStream. One work-queue stream holds every
// piece of pending work, so a message is removed only once a node has
// finished it:
//
//	flux.in.<op>.<app>.<channel>   an event arriving at a channel
//	flux.do.<op>.<app>.<action>    one action to run for one event
//	flux.sched.<event id>          a delayed output (scheduled message)
//	flux.timer.<op>.<app>.<channel>.<n>  a timer source (recurring schedule)
//
// Two durable consumers, shared by every node, take flux.in and flux.do.
// A channel event fans out into one flux.do message per action; an action
// that finishes publishes its outputs to flux.in. Every message carries a
// Nats-Msg-Id derived from the event and action, so work repeated after a
// crash publishes nothing twice.
const (
	Stream       = "FLUX"
	DeadStream   = "FLUX_DEAD"
	subjIn       = "flux.in."
	subjDo       = "flux.do."
	subjSched    = "flux.sched."
	subjTimer    = "flux.timer."
	subjDead     = "fluxdead."
	subjDone     = "fluxevt.done."
	subjChanged  = "fluxevt.apps"
	consumerIn   = "flux-events"
	consumerDo   = "flux-actions"
	consumerDev  = "flux-devices"
	dedupeWindow = 15 * time.Minute
)

// Options tune the engine. Zero values take the defaults.
type Options struct {
	Node            string
	AckWait         time.Duration // redelivery after a node died mid-step (30s)
	BackoffBase     time.Duration // first retry delay (1s), doubling
	BackoffMax      time.Duration // longest retry delay (1m)
	MaxHops         int           // events one run may pass through channels (100)
	MaxPayloadBytes int           // largest event payload, as JSON (256 KiB)
	Workers         int           // concurrent steps per node (32)
	RunRetention    time.Duration // succeeded runs kept (7 days)
	FailedRetention time.Duration // failed runs kept (30 days)
	PublicBase      string        // base URL for incoming-webhook URLs
	HookKey         []byte        // derives incoming-webhook secrets
	DeviceSources   bool          // consume the HARVEST stream (default true via New)
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.AckWait, 30*time.Second)
	def(&o.BackoffBase, time.Second)
	def(&o.BackoffMax, time.Minute)
	def(&o.RunRetention, 7*24*time.Hour)
	def(&o.FailedRetention, 30*24*time.Hour)
	if o.MaxHops <= 0 {
		o.MaxHops = 100
	}
	if o.MaxPayloadBytes <= 0 {
		o.MaxPayloadBytes = 256 << 10
	}
	if o.Workers <= 0 {
		o.Workers = 128
	}
}

// Engine runs the apps of every operator on this node.
type Engine struct {
	db    *store.DB
	bus   *bus.Bus
	deps  *Deps
	inv   *inventory.Service
	users *auth.Service
	opts  Options
	batch *store.Batcher
	sql   statements
	m     *metrics

	mu   sync.RWMutex
	apps map[string]*loadedApp // operator/app

	work     chan jetstream.Msg
	stopping chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	consume  []jetstream.ConsumeContext
	appSub   *nats.Subscription
	now      func() time.Time
}

// loadedApp is an app as the engine runs it.
type loadedApp struct {
	OperatorID string
	App        *App
	Enabled    bool
	Version    int64
	HookSalt   string
	Created    time.Time
	Updated    time.Time
	channels   map[string]*Channel
	actions    map[string]*compiledAction
	gen        string // appGen(HookSalt), computed when loaded
}

// appGen names an incarnation of an app: it stays through updates and
// changes when the app is deleted and created again (a new hook salt), so
// work left over from the deleted app (a delayed output, a step in
// flight) is not run by its namesake. Derived, not the salt itself: the
// salt keys the webhook URLs.
func appGen(hookSalt string) string {
	h := sha256.Sum256([]byte("gen\x00" + hookSalt))
	return hex.EncodeToString(h[:6])
}

// current reports whether work stamped with gen belongs to this app's
// incarnation (work from before stamping carries none, and is taken).
func (la *loadedApp) current(gen string) bool { return gen == "" || gen == la.gen }

type compiledAction struct {
	*Action
	Channel   string
	spec      *Spec
	condition *expr.Condition
}

func appKey(op, name string) string { return op + "/" + name }

// New creates the engine's streams and loads the stored apps; Start begins
// processing.
func New(ctx context.Context, db *store.DB, b *bus.Bus, deps *Deps, inv *inventory.Service, users *auth.Service, opts Options, reg prometheus.Registerer) (*Engine, error) {
	opts.defaults()
	e := &Engine{db: db, bus: b, deps: deps, inv: inv, users: users, opts: opts,
		apps: map[string]*loadedApp{}, now: time.Now, m: newMetrics(reg)}
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{
		Name:              Stream,
		Description:       "Flow engine work: channel events, action steps, delayed outputs and timers",
		Subjects:          []string{subjIn + ">", subjDo + ">", subjSched + ">", subjTimer + ">"},
		Retention:         jetstream.WorkQueuePolicy,
		Storage:           jetstream.FileStorage,
		Duplicates:        dedupeWindow,
		AllowMsgSchedules: true,
		MaxMsgSize:        int32(opts.MaxPayloadBytes*2 + 64<<10),
	}); err != nil {
		return nil, fmt.Errorf("flow stream: %w", err)
	}
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{
		Name:        DeadStream,
		Description: "Flow steps that failed after their last retry, with the error",
		Subjects:    []string{subjDead + ">"},
		Storage:     jetstream.FileStorage,
		MaxAge:      opts.FailedRetention,
	}); err != nil {
		return nil, fmt.Errorf("flow dead-letter stream: %w", err)
	}
	if err := e.loadAll(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Start consumes channel events, action steps and device data until Close.
func (e *Engine) Start(ctx context.Context) error {
	ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := e.prepare(ctx); err != nil {
		return fmt.Errorf("flow statements: %w", err)
	}
	e.batch = store.NewBatcher(e.db, 128)
	e.work, e.stopping = make(chan jetstream.Msg), make(chan struct{})
	for i := 0; i < e.opts.Workers; i++ {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for {
				select {
				case m := <-e.work:
					e.handle(ctx, m)
				case <-e.stopping:
					return
				}
			}
		}()
	}
	for _, c := range []struct{ name, filter string }{{consumerIn, subjIn + ">"}, {consumerDo, subjDo + ">"}} {
		cons, err := e.bus.JS.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
			Durable:       c.name,
			FilterSubject: c.filter,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       e.opts.AckWait,
			MaxAckPending: e.opts.Workers * 4,
		})
		if err != nil {
			return fmt.Errorf("flow consumer %s: %w", c.name, err)
		}
		cc, err := cons.Consume(e.dispatch, jetstream.PullMaxMessages(e.opts.Workers), consumeErrors)
		if err != nil {
			return fmt.Errorf("flow consumer %s: %w", c.name, err)
		}
		e.consume = append(e.consume, cc)
	}
	if e.opts.DeviceSources {
		if err := e.startDevices(ctx); err != nil {
			return err
		}
	}
	if e.deps.Shadows != nil { // shadow sources: see source_shadow.go
		if err := e.startShadows(ctx); err != nil {
			return err
		}
	}
	// Another node changed an app: reload it.
	sub, err := e.bus.NC.Subscribe(subjChanged, func(m *nats.Msg) {
		op, name, _ := strings.Cut(string(m.Data), "/")
		if err := e.reload(ctx, op, name); err != nil {
			slog.Warn("flow: reloading app", "app", name, "err", err)
		}
	})
	if err != nil {
		return err
	}
	e.appSub = sub
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.pruneLoop(ctx)
	}()
	slog.Info("flow engine started", "apps", len(e.apps), "workers", e.opts.Workers)
	return nil
}

// consumeErrors logs a consumer's trouble (NATS reconnecting, a stream
// recreated); the client keeps pulling where it can.
var consumeErrors = jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
	slog.Warn("flow: consuming", "err", err)
})

// dispatch hands a message to a worker; after Close began it leaves the
// message unacknowledged, for redelivery.
func (e *Engine) dispatch(m jetstream.Msg) {
	select {
	case e.work <- m:
	case <-e.stopping:
	}
}

// Close stops taking work, lets running steps finish (unfinished ones are
// redelivered to another node or after a restart) and stops.
func (e *Engine) Close() {
	if e.cancel == nil {
		return
	}
	for _, cc := range e.consume {
		cc.Stop()
	}
	if e.appSub != nil {
		_ = e.appSub.Unsubscribe()
	}
	close(e.stopping)
	e.wg.Wait()
	e.cancel()
	e.batch.Close()
	e.sql.close()
	e.cancel = nil
}

// SetClock replaces the engine's clock (tests of retention).
func (e *Engine) SetClock(now func() time.Time) { e.now = now }

// app returns the loaded app, or nil.
func (e *Engine) app(op, name string) *loadedApp {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.apps[appKey(op, name)]
}

func (e *Engine) appsOf(op string) []*loadedApp {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var out []*loadedApp
	for _, a := range e.apps {
		if op == "" || a.OperatorID == op {
			out = append(out, a)
		}
	}
	return out
}

// compile prepares a parsed app for running.
func compile(op string, app *App) (*loadedApp, error) {
	la := &loadedApp{OperatorID: op, App: app, channels: map[string]*Channel{}, actions: map[string]*compiledAction{}}
	for _, ch := range app.Channels {
		la.channels[ch.Name] = ch
		for _, a := range ch.Actions {
			ca := &compiledAction{Action: a, Channel: ch.Name, spec: reg.get(reg.actions, a.Kind)}
			if a.Condition != "" {
				c, err := expr.CompileCondition(a.Condition)
				if err != nil {
					return nil, fmt.Errorf("action %s: condition: %w", a.Name, err)
				}
				ca.condition = c
			}
			la.actions[a.Name] = ca
		}
	}
	return la, nil
}

// envelope is one event, as carried on flux.in and flux.do subjects.
type envelope struct {
	ID      string  `json:"id"`
	Run     string  `json:"run"`
	Op      string  `json:"op"`
	App     string  `json:"app"`
	Channel string  `json:"channel"`
	Action  string  `json:"action,omitempty"`
	Hop     int     `json:"hop"`
	Source  string  `json:"source"`
	Time    int64   `json:"time"`
	Payload any     `json:"payload"`
	Context any     `json:"context"`
	Event   *origin `json:"event,omitempty"`
	// Timer is set on timer schedules: the scheduled copies get their id
	// from the stream sequence.
	Timer string `json:"timer,omitempty"`
	// Key is set on a keyed timer (an output with a key, see timers.go):
	// it is scheduled on a subject named by the key.
	Key string `json:"key,omitempty"`
	// Gen is the app incarnation the work belongs to (loadedApp.gen):
	// stamped on a run's first event, inherited by everything after it.
	Gen string `json:"gen,omitempty"`
}

// origin is the source event of a run, visible to every step as `event`.
type origin struct {
	Payload any `json:"payload"`
	Context any `json:"context"`
}

func (ev *envelope) env() expr.Env {
	o := ev.Event
	if o == nil {
		o = &origin{Payload: ev.Payload, Context: ev.Context}
	}
	return expr.Env{"payload": ev.Payload, "context": ev.Context,
		"event": map[string]any{"payload": o.Payload, "context": o.Context}}
}

// env is what an action's condition, config and output see: the event, and
// app (name, operatorId, publicUrl) for links back to this server.
func (e *Engine) env(ev *envelope) expr.Env {
	env := ev.env()
	env["app"] = map[string]any{"name": ev.App, "operatorId": ev.Op, "publicUrl": strings.TrimRight(e.opts.PublicBase, "/")}
	return env
}

// childID derives an event id from the work that produced it, so a step
// repeated after a crash produces the same ids (and JetStream drops the
// duplicates).
func childID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "e" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:13]))
}

// newID is a fresh random event (and run) id.
func newID() string {
	return "r" + strings.ToLower(auth.RandomString(20, "abcdefghijklmnopqrstuvwxyz0123456789"))
}

// ErrTooLarge is returned when an event payload exceeds MaxPayloadBytes.
var ErrTooLarge = errors.New("payload too large")

// publishEvent sends an event to its channel, immediately or after delay.
func (e *Engine) publishEvent(ctx context.Context, ev *envelope, delay time.Duration) error {
	if ev.Gen == "" { // a source event: it belongs to the app as it is now
		if la := e.app(ev.Op, ev.App); la != nil {
			ev.Gen = la.gen
		}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	subject := subjIn + ev.Op + "." + ev.App + "." + ev.Channel
	if ev.Key != "" {
		return e.publishKeyed(ctx, ev, subject, body, delay)
	}
	if delay <= 0 {
		_, err = e.bus.JS.Publish(ctx, subject, body, jetstream.WithMsgID(ev.ID))
		return err
	}
	// A one-off schedule on its own subject: the server moves it to the
	// channel when due, even if this node is gone by then.
	_, err = e.bus.JS.Publish(ctx, subjSched+ev.ID, body, jetstream.WithMsgID("sched/"+ev.ID),
		jetstream.WithScheduleAt(e.now().Add(delay)), jetstream.WithScheduleTarget(subject))
	return err
}

// Inject sends a message to an app's channel (the API/manual source and
// test runs). It returns the run id.
func (e *Engine) Inject(ctx context.Context, op, appName, channel, source string, payload, context_ any) (string, error) {
	la := e.app(op, appName)
	if la == nil {
		return "", errNoApp(appName)
	}
	if la.channels[channel] == nil {
		return "", errNoChannel(la, channel)
	}
	if !la.Enabled {
		return "", errDisabled(appName)
	}
	return e.startRun(ctx, op, appName, channel, source, "", payload, context_)
}

// startRun publishes the first event of a run from an outside source. A
// non-empty dedupe (what the sender repeats on a redelivery: LINE's
// webhookEventId, Slack's event_id) derives the run id, so a redelivery
// inside JetStream's duplicate window starts nothing new.
func (e *Engine) startRun(ctx context.Context, op, appName, channel, source, dedupe string, payload, context_ any) (string, error) {
	id := newID()
	if dedupe != "" {
		id = childID(source, op, appName, channel, dedupe)
	}
	if n, err := jsonSize(payload); err != nil || n > e.opts.MaxPayloadBytes {
		return "", fmt.Errorf("%w: %d bytes; at most %d", ErrTooLarge, n, e.opts.MaxPayloadBytes)
	}
	ev := &envelope{ID: id, Run: id, Op: op, App: appName, Channel: channel, Source: source,
		Time: e.now().UnixMilli(), Payload: payload, Context: context_,
		Event: &origin{Payload: payload, Context: context_}}
	return id, e.publishEvent(ctx, ev, 0)
}

func jsonSize(v any) (int, error) {
	b, err := json.Marshal(v)
	return len(b), err
}

// backoff is the delay before attempt n+1 (n ≥ 1): base·2^(n-1), capped,
// with up to 20% jitter so retries of many events spread out.
func (e *Engine) backoff(n int) time.Duration {
	d := e.opts.BackoffBase
	for i := 1; i < n && d < e.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, e.opts.BackoffMax)
	jitter := time.Duration(float64(d) * 0.2 * float64(time.Now().UnixNano()%1000) / 1000)
	return d + jitter
}

type metrics struct {
	steps    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	runs     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nagare_flow_steps_total", Help: "Flow action steps by kind and outcome.",
		}, []string{"kind", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nagare_flow_step_duration_seconds", Help: "Flow action step latency by kind.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nagare_flow_runs_total", Help: "Finished flow runs by status.",
		}, []string{"status"}),
	}
	if reg != nil {
		reg.MustRegister(m.steps, m.duration, m.runs)
	}
	return m
}
