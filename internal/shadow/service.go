package shadow

import (
	"context"
	"errors"
	"fmt"
	"github.com/nagare-iot/nagare/internal/bus"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Bucket is the KV bucket holding every shadow document.
const Bucket = "SHADOWS"

// QueueGroup is the responders' queue group: each request is served by
// one node of a cluster.
const QueueGroup = "nagare-shadow"

// Options tune the service. Zero values take the defaults.
type Options struct {
	// OperatorID owns every shadow addressed over NATS/MQTT topics (which
	// carry no operator). HTTP and flow calls name their own operator.
	OperatorID string
	// Replicas of the KV bucket and the event stream (0: the bus's).
	Replicas int
	Limits
	// DeltaOnReported also sends /update/delta after an update that names
	// only reported; by default, as AWS does, only updates that set
	// desired send it.
	DeltaOnReported bool
	// TombstoneTTL is how long a deleted shadow's version is remembered:
	// re-created sooner, it continues the numbering (48h, as AWS).
	TombstoneTTL time.Duration
	// EventRetention bounds the change feed stream (24h).
	EventRetention time.Duration
	// Workers serve topic requests in parallel; requests for one shadow
	// stay in order on one worker (16).
	Workers int
	// Now is the clock (tests).
	Now func() time.Time
}

func (o *Options) defaults() {
	o.Limits = o.Limits.withDefaults()
	if o.TombstoneTTL <= 0 {
		o.TombstoneTTL = 48 * time.Hour
	}
	if o.EventRetention <= 0 {
		o.EventRetention = 24 * time.Hour
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Service keeps the shadows of every operator. It needs only a NATS
// connection with JetStream, so it runs the same against the embedded
// server and an external cluster.
type Service struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	opts Options

	requests  *prometheus.CounterVec
	casRetry  prometheus.Counter
	subs      []*nats.Subscription
	shards    []chan *nats.Msg
	stopping  chan struct{}
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New creates (or adopts) the KV bucket and the change-feed stream. Start
// begins serving topic requests; HTTP and Update work without it.
func New(ctx context.Context, b *bus.Bus, opts Options, reg prometheus.Registerer) (*Service, error) {
	opts.defaults()
	nc, js := b.NC, b.JS
	// Through the bus: a cluster that is still electing leaders is waited for.
	kv, err := b.EnsureKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Device shadows (AWS IoT-compatible documents), one key per operator, thing and shadow",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("shadow bucket: %w", err)
	}
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{
		Name:        EventStream,
		Description: "Device shadow changes (updated, deleted) for flows and the console",
		Subjects:    []string{EventSubjectPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		MaxAge:      opts.EventRetention,
		Duplicates:  2 * time.Minute,
	}); err != nil {
		return nil, fmt.Errorf("shadow event stream: %w", err)
	}
	s := &Service{nc: nc, js: js, kv: kv, opts: opts,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nagare_shadow_requests_total", Help: "Device shadow requests by operation and AWS result code.",
		}, []string{"op", "code"}),
		casRetry: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nagare_shadow_cas_retries_total", Help: "Shadow writes repeated because another writer changed the document first.",
		}),
	}
	if reg != nil {
		reg.MustRegister(s.requests, s.casRetry)
	}
	return s, nil
}

// Start subscribes to the request topics (queue group QueueGroup) and
// starts the hourly clean-up of old tombstones.
func (s *Service) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.stopping = make(chan struct{})
	s.shards = make([]chan *nats.Msg, s.opts.Workers)
	for i := range s.shards {
		ch := make(chan *nats.Msg, 256)
		s.shards[i] = ch
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case m := <-ch:
					s.serveTopic(ctx, m)
				case <-s.stopping:
					return
				}
			}
		}()
	}
	for _, subj := range requestSubjects {
		sub, err := s.nc.QueueSubscribe(subj, QueueGroup, s.enqueue)
		if err != nil {
			s.Close()
			return fmt.Errorf("shadow topics: %w", err)
		}
		s.subs = append(s.subs, sub)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sweepLoop(ctx)
	}()
	return nil
}

// Close stops serving topics; requests queued but not started are
// dropped (topic requests are at-most-once, like MQTT QoS 0 replies).
func (s *Service) Close() {
	if s == nil || s.stopping == nil {
		return
	}
	s.closeOnce.Do(func() {
		for _, sub := range s.subs {
			_ = sub.Unsubscribe()
		}
		close(s.stopping)
		s.cancel()
		s.wg.Wait()
	})
}

// enqueue hands a topic request to the worker of its shadow, so one
// shadow's requests are applied in the order they arrived.
func (s *Service) enqueue(m *nats.Msg) {
	tr, ok := parseTopic(m.Subject)
	if !ok {
		return
	}
	h := fnv.New32a()
	h.Write([]byte(tr.Prefix))
	select {
	case s.shards[h.Sum32()%uint32(len(s.shards))] <- m:
	case <-s.stopping:
	}
}

type hopKey struct{}

// WithHop marks ctx as a flow action's: the change event of an update
// made with it carries hop, so flows it triggers count hops from there.
func WithHop(ctx context.Context, hop int) context.Context {
	return context.WithValue(ctx, hopKey{}, hop)
}

func (s *Service) now() time.Time { return s.opts.Now() }

// timeout bounds one request's storage work.
const timeout = 10 * time.Second

// maxCASAttempts bounds the read → apply → compare-and-set loop; only a
// shadow written by very many writers at once gets near it.
const maxCASAttempts = 200

func (s *Service) load(ctx context.Context, key string) (*Document, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	d, err := decodeDocument(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("shadow %s: stored document does not decode: %w", key, err)
	}
	return d, e.Revision(), nil
}

// existing is the document if it exists (not a tombstone).
func existing(d *Document) *Document {
	if d == nil || d.Deleted != 0 {
		return nil
	}
	return d
}

// baseVersion is the version an update must name and increments: the
// document's, a recent tombstone's, or 0.
func (s *Service) baseVersion(d *Document) int64 {
	if d == nil {
		return 0
	}
	if d.Deleted != 0 && s.now().Sub(time.Unix(d.Deleted, 0)) > s.opts.TombstoneTTL {
		return 0
	}
	return d.Version
}

func isCASConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// casWait spreads retries of writers that collided.
func casWait(ctx context.Context, attempt int) {
	d := time.Duration(rand.IntN(1+min(attempt, 20))) * time.Millisecond
	if d == 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Event is a change-feed message (EventStream): a shadow's previous and
// current documents after an update or a delete.
type Event struct {
	Type       string    `json:"type"` // updated, deleted
	ThingName  string    `json:"thingName"`
	ShadowName string    `json:"shadowName"` // "" for the classic shadow
	Previous   *Snapshot `json:"previous"`
	Current    *Snapshot `json:"current"` // null after a delete
	// State is the update's state node as requested (null for a delete).
	State       map[string]any `json:"state"`
	Version     int64          `json:"version"`
	Timestamp   int64          `json:"timestamp"`
	ClientToken string         `json:"clientToken,omitempty"`
}

// Event types.
const (
	EventUpdated = "updated"
	EventDeleted = "deleted"
)

// change is an accepted write and the messages it publishes.
type change struct {
	thing, name string
	accepted    []byte // /update/accepted or /delete/accepted
	delta       []byte // /update/delta, nil if none
	documents   []byte // /update/documents, nil for a delete
	event       *Event
}

// Update applies an update request document to a shadow (created if
// missing) and publishes accepted, delta and documents on its topics and
// the change feed. It returns the /update/accepted document; a rejection
// is an *Error (an *api.Error for HTTP).
func (s *Service) Update(ctx context.Context, op, thing, name string, body []byte) ([]byte, error) {
	ch, e := s.update(ctx, op, thing, name, body)
	if e != nil {
		s.count("update", e)
		return nil, e
	}
	s.count("update", nil)
	s.publish(ctx, op, ch)
	return ch.accepted, nil
}

func (s *Service) update(ctx context.Context, op, thing, name string, body []byte) (*change, *Error) {
	if e := checkNames(thing, name); e != nil {
		e.ClientToken = clientTokenOf(body)
		return nil, e
	}
	req, e := ParseUpdate(body, s.opts.Limits)
	if e != nil {
		return nil, e
	}
	fail := func(e *Error) (*change, *Error) {
		e.ClientToken = req.ClientToken
		return nil, e
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ch, e := s.casWrite(ctx, Key(op, thing, name), func(cur *Document) ([]byte, *change, *Error) {
		base := s.baseVersion(cur)
		if req.Version != nil && *req.Version != base {
			return nil, nil, errConflict()
		}
		ts := s.now().Unix()
		next := Apply(cur, req, base+1, ts)
		if StateSize(next) > s.opts.MaxStateBytes {
			return nil, nil, errTooLarge()
		}
		prev := SnapshotOf(existing(cur))
		prev.Version = base
		cur2 := SnapshotOf(next)
		ch := &change{thing: thing, name: name,
			accepted:  marshal(AcceptedOf(req, next.Version, ts)),
			documents: marshal(&Documents{Previous: prev, Current: cur2, Timestamp: ts, ClientToken: req.ClientToken}),
			event: &Event{Type: EventUpdated, ThingName: thing, ShadowName: name, Previous: prev, Current: cur2,
				State: req.State, Version: next.Version, Timestamp: ts, ClientToken: req.ClientToken},
		}
		if req.Desired != nil || req.ClearDesired || s.opts.DeltaOnReported {
			if d := DeltaOf(next, ts, req.ClientToken); d != nil {
				ch.delta = marshal(d)
			}
		}
		return marshal(next), ch, nil
	})
	if e != nil {
		return fail(e)
	}
	return ch, nil
}

// casWrite reads key, lets step decide the document to store and the
// change to report (or refuse), and writes it with compare-and-set,
// reading again when another writer got there first.
func (s *Service) casWrite(ctx context.Context, key string, step func(cur *Document) ([]byte, *change, *Error)) (*change, *Error) {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cur, rev, err := s.load(ctx, key)
		if err != nil {
			slog.Warn("shadow: reading", "key", key, "err", err)
			return nil, errInternal()
		}
		data, ch, e := step(cur)
		if e != nil {
			return nil, e
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, data)
		} else {
			_, err = s.kv.Update(ctx, key, data, rev)
		}
		if isCASConflict(err) {
			s.casRetry.Inc()
			casWait(ctx, attempt)
			continue
		}
		if err != nil {
			slog.Warn("shadow: writing", "key", key, "err", err)
			return nil, errInternal()
		}
		return ch, nil
	}
	slog.Warn("shadow: too many concurrent writers", "key", key)
	return nil, errInternal()
}

// Get returns the /get/accepted document of a shadow.
func (s *Service) Get(ctx context.Context, op, thing, name string) ([]byte, error) {
	b, e := s.get(ctx, op, thing, name, "")
	s.count("get", e)
	if e != nil {
		return nil, e
	}
	return b, nil
}

func (s *Service) get(ctx context.Context, op, thing, name, token string) ([]byte, *Error) {
	fail := func(e *Error) ([]byte, *Error) {
		e.ClientToken = token
		return nil, e
	}
	if e := checkNames(thing, name); e != nil {
		return fail(e)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cur, _, err := s.load(ctx, Key(op, thing, name))
	if err != nil {
		slog.Warn("shadow: reading", "thing", thing, "err", err)
		return fail(errInternal())
	}
	if existing(cur) == nil {
		return fail(errNotFound(thing, name))
	}
	return marshal(GetOf(cur, s.now().Unix(), token)), nil
}

// Delete removes a shadow and returns the /delete/accepted document. The
// version is remembered for TombstoneTTL.
func (s *Service) Delete(ctx context.Context, op, thing, name string) ([]byte, error) {
	ch, e := s.delete(ctx, op, thing, name, "")
	s.count("delete", e)
	if e != nil {
		return nil, e
	}
	s.publish(ctx, op, ch)
	return ch.accepted, nil
}

func (s *Service) delete(ctx context.Context, op, thing, name, token string) (*change, *Error) {
	fail := func(e *Error) (*change, *Error) {
		e.ClientToken = token
		return nil, e
	}
	if e := checkNames(thing, name); e != nil {
		return fail(e)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ch, e := s.casWrite(ctx, Key(op, thing, name), func(cur *Document) ([]byte, *change, *Error) {
		if existing(cur) == nil {
			return nil, nil, errNotFound(thing, name)
		}
		ts := s.now().Unix()
		tomb := &Document{Version: cur.Version, Timestamp: ts, Deleted: max(ts, 1)}
		return marshal(tomb), &change{thing: thing, name: name,
			accepted: marshal(&DeleteDoc{Version: cur.Version, Timestamp: ts, ClientToken: token}),
			event: &Event{Type: EventDeleted, ThingName: thing, ShadowName: name, Previous: SnapshotOf(cur),
				Version: cur.Version, Timestamp: ts, ClientToken: token},
		}, nil
	})
	if e != nil {
		return fail(e)
	}
	return ch, nil
}

// count records a request's outcome (e is nil for a success).
func (s *Service) count(op string, e *Error) {
	code := 200
	if e != nil {
		code = e.Code
	}
	s.requests.WithLabelValues(op, strconv.Itoa(code)).Inc()
}

// publish sends an accepted change to the shadow's topics (for MQTT and
// NATS subscribers, whoever made the change) and stores its event.
func (s *Service) publish(ctx context.Context, op string, ch *change) {
	prefix := TopicPrefix(ch.thing, ch.name)
	if ch.event.Type == EventDeleted {
		s.pub(prefix+".delete.accepted", ch.accepted)
	} else {
		s.pub(prefix+".update.accepted", ch.accepted)
		if ch.delta != nil {
			s.pub(prefix+".update.delta", ch.delta)
		}
		s.pub(prefix+".update.documents", ch.documents)
	}
	msg := &nats.Msg{Subject: EventSubject(op, ch.thing, ch.name), Header: nats.Header{}, Data: marshal(ch.event)}
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/%s/%s/%d/%s", op, ch.thing, ch.name, ch.event.Version, ch.event.Type))
	msg.Header.Set(OperatorHeader, op)
	if hop, ok := ctx.Value(hopKey{}).(int); ok {
		msg.Header.Set(HopHeader, strconv.Itoa(hop))
	}
	// The document is already stored: a caller giving up must not lose
	// its event, so the publish gets its own deadline and a few tries.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	var err error
	for try := 0; try < 3; try++ {
		if _, err = s.js.PublishMsg(pctx, msg); err == nil {
			return
		}
		casWait(pctx, 10)
	}
	slog.Warn("shadow: change event lost", "subject", msg.Subject, "version", ch.event.Version, "err", err)
}

func (s *Service) pub(subject string, data []byte) {
	if err := s.nc.Publish(subject, data); err != nil {
		slog.Warn("shadow: publishing", "subject", subject, "err", err)
	}
}

// serveTopic answers one request published on a shadow topic: the result
// goes to …/accepted or …/rejected (and, for a NATS request, to its reply
// inbox as well).
func (s *Service) serveTopic(ctx context.Context, m *nats.Msg) {
	tr, ok := parseTopic(m.Subject)
	if !ok {
		return
	}
	op := s.opts.OperatorID
	var (
		ch  *change
		out []byte
		e   *Error
	)
	switch tr.Op {
	case "update":
		ch, e = s.update(ctx, op, tr.Thing, tr.Name, m.Data)
	case "get":
		out, e = s.get(ctx, op, tr.Thing, tr.Name, clientTokenOf(m.Data))
	case "delete":
		ch, e = s.delete(ctx, op, tr.Thing, tr.Name, clientTokenOf(m.Data))
	default:
		return
	}
	if e != nil {
		s.count(tr.Op, e)
		out = marshal(RejectedOf(e, s.now().Unix()))
		s.pub(tr.Prefix+"."+tr.Op+".rejected", out)
	} else {
		s.count(tr.Op, nil)
		if ch != nil {
			s.publish(ctx, op, ch)
			out = ch.accepted
		} else {
			s.pub(tr.Prefix+"."+tr.Op+".accepted", out)
		}
	}
	if m.Reply != "" {
		_ = s.nc.Publish(m.Reply, out)
	}
}

// scan visits the current documents whose keys match filter.
func (s *Service) scan(ctx context.Context, filter string, fn func(key string, d *Document, rev uint64)) error {
	w, err := s.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("shadow: watcher stopped")
			}
			if e == nil {
				return nil // every current value has been seen
			}
			d, err := decodeDocument(e.Value())
			if err != nil {
				slog.Warn("shadow: skipping an undecodable document", "key", e.Key(), "err", err)
				continue
			}
			fn(e.Key(), d, e.Revision())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ListNamedShadows lists the names of a thing's named shadows, sorted.
func (s *Service) ListNamedShadows(ctx context.Context, op, thing string) ([]string, error) {
	if e := checkNames(thing, ""); e != nil {
		return nil, e
	}
	var names []string
	err := s.scan(ctx, encodeName(op)+"."+encodeName(thing)+".*", func(key string, d *Document, _ uint64) {
		if _, _, name, ok := parseKey(key); ok && name != "" && existing(d) != nil {
			names = append(names, name)
		}
	})
	sort.Strings(names)
	return names, err
}

// Thing is a thing that has at least one shadow.
type Thing struct {
	ThingName     string   `json:"thingName"`
	ClassicShadow bool     `json:"classicShadow"`
	NamedShadows  []string `json:"namedShadows"`
}

// ListThings lists an operator's things that have shadows, by name.
func (s *Service) ListThings(ctx context.Context, op string) ([]*Thing, error) {
	byName := map[string]*Thing{}
	err := s.scan(ctx, encodeName(op)+".>", func(key string, d *Document, _ uint64) {
		_, thing, name, ok := parseKey(key)
		if !ok || existing(d) == nil {
			return
		}
		t := byName[thing]
		if t == nil {
			t = &Thing{ThingName: thing, NamedShadows: []string{}}
			byName[thing] = t
		}
		if name == "" {
			t.ClassicShadow = true
		} else {
			t.NamedShadows = append(t.NamedShadows, name)
		}
	})
	out := make([]*Thing, 0, len(byName))
	for _, t := range byName {
		sort.Strings(t.NamedShadows)
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ThingName < out[j].ThingName })
	return out, err
}

// sweepLoop forgets tombstones older than TombstoneTTL, once an hour.
func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Sweep(ctx); err != nil {
				slog.Warn("shadow: sweeping tombstones", "err", err)
			} else if n > 0 {
				slog.Debug("shadow: forgot deleted shadows", "count", n)
			}
		}
	}
}

// Sweep purges tombstones older than TombstoneTTL and returns how many.
// A shadow re-created meanwhile is left alone (the purge is conditional
// on the tombstone's revision), so nodes may sweep at the same time.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	type victim struct {
		key string
		rev uint64
	}
	var old []victim
	err := s.scan(ctx, ">", func(key string, d *Document, rev uint64) {
		if d.Deleted != 0 && s.now().Sub(time.Unix(d.Deleted, 0)) > s.opts.TombstoneTTL {
			old = append(old, victim{key, rev})
		}
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range old {
		if err := s.kv.Purge(ctx, v.key, jetstream.LastRevision(v.rev)); err == nil {
			n++
		}
	}
	if n > 0 {
		_ = s.kv.PurgeDeletes(ctx)
	}
	return n, nil
}
