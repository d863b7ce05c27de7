// Package live owns the browser push channel: one WebSocket per console tab
// at /v1/live, over which the server pushes what changed (new Harvest Data
// entries of a resource, device shadow documents: the packages owning them
// add topics). Pushes are read from NATS subjects, so a browser connected
// to any node sees writes made on every node, and nothing is polled.
//
// Protocol (JSON text messages):
//
//	→ {"type":"auth","apiKey":"…","token":"…"}              first, within AuthTimeout
//	← {"type":"ready"}
//	→ {"type":"subscribe","id":"1","topic":"data","resourceType":"Device","resourceId":"d1"}
//	← {"type":"subscribed","id":"1"}  or  {"type":"error","id":"1","code":"…","message":"…"}
//	← {"type":"data","id":"1","entry":{…DataEntry…}}
//	→ {"type":"unsubscribe","id":"1"}
//
// Each subscription is permission-checked as the API operation that reads
// the same thing (topic "data": DataEntry:getDataEntries on that resource),
// so a user sees live exactly what the API would show them.
package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nagare-iot/nagare/internal/api"
)

const (
	// AuthTimeout bounds the wait for the first (auth) message.
	AuthTimeout = 10 * time.Second
	// maxClientMessage bounds a message from the browser.
	maxClientMessage = 16 << 10
	// maxSubscriptions bounds the subscriptions of one connection.
	maxSubscriptions = 200
	// sendQueue is the pushes buffered per connection; a browser that
	// falls further behind is disconnected (it reconnects and reloads).
	sendQueue = 256
	// writeTimeout bounds one write to a slow browser.
	writeTimeout = 10 * time.Second
)

// pingEvery keeps proxies from closing an idle connection; the token is
// checked again as often, so a logged-out or expired session stops
// receiving pushes within that time. A variable for tests.
var pingEvery = 30 * time.Second

// Topic is one kind of thing a browser can subscribe to.
type Topic struct {
	// Name is the "topic" value of a subscribe message.
	Name string
	// Params are the subscribe message's fields the topic needs (all
	// required, each a non-empty string).
	Params []Param
	// Op is the API operation the subscription is checked as, with the
	// params as its path values (for pathVariable conditions).
	Op string
	// Subject returns the NATS subject to listen on.
	Subject func(params map[string]string) (string, error)
	// Message turns a NATS message into the pushed message's payload
	// fields (e.g. {"entry": …}); ok=false drops it. operatorID is the
	// subscriber's operator: messages of other operators must be dropped.
	Message func(m *nats.Msg, operatorID string) (fields map[string]any, ok bool)
}

// Param is one field of a subscribe message: Field is its JSON name,
// PathValue the path variable of Op it stands for.
type Param struct{ Field, PathValue string }

// Service accepts WebSocket connections and routes pushes to them.
type Service struct {
	auth   api.Authenticator
	nc     *nats.Conn
	topics map[string]Topic

	conns prometheus.Gauge
	sent  prometheus.Counter
}

// New creates the service. reg may be nil.
func New(auth api.Authenticator, nc *nats.Conn, reg prometheus.Registerer) *Service {
	s := &Service{
		auth: auth, nc: nc, topics: map[string]Topic{},
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "nagare_live_connections", Help: "Open /v1/live WebSocket connections."}),
		sent:  prometheus.NewCounter(prometheus.CounterOpts{Name: "nagare_live_pushes_total", Help: "Messages pushed to browsers over /v1/live."}),
	}
	if reg != nil {
		reg.MustRegister(s.conns, s.sent)
	}
	return s
}

// AddTopic registers a topic (at start, before serving).
func (s *Service) AddTopic(t Topic) { s.topics[t.Name] = t }

// Register mounts GET /v1/live.
func (s *Service) Register(rt *api.Router) {
	rt.Handle(api.Op{Name: "Live:connect", Method: "GET", Path: "/v1/live", Auth: api.AuthNone,
		Summary: "WebSocket of live updates for the console: authenticate with the first message {type:auth, apiKey, token}, then subscribe to topics (data: a resource's new Harvest Data entries); each subscription is permission-checked like the API call that reads the same data",
		Handler: s.serve})
}

type clientMsg struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	APIKey string `json:"apiKey"`
	Token  string `json:"token"`
	Topic  string `json:"topic"`
}

type conn struct {
	s      *Service
	ws     *websocket.Conn
	r      *http.Request
	p      *api.Principal
	apiKey string
	token  string
	out    chan []byte
	mu     sync.Mutex
	subs   map[string]*nats.Subscription
	cancel context.CancelFunc
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	if s.nc == nil {
		api.WriteError(w, r, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "live updates are not available"))
		return
	}
	// Same-origin only (the console); OriginPatterns could widen it.
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	ws.SetReadLimit(maxClientMessage)
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{s: s, ws: ws, r: r, out: make(chan []byte, sendQueue), subs: map[string]*nats.Subscription{}, cancel: cancel}
	s.conns.Inc()
	defer s.conns.Dec()
	defer c.close()
	if err := c.authenticate(ctx); err != nil {
		c.writeNow(ctx, errMsg("", err))
		ws.Close(websocket.StatusPolicyViolation, "authentication failed")
		return
	}
	go c.writeLoop(ctx)
	c.push(map[string]any{"type": "ready"})
	c.readLoop(ctx)
}

func (c *conn) authenticate(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, AuthTimeout)
	defer cancel()
	_, data, err := c.ws.Read(actx)
	if err != nil {
		return api.Unauthenticated("no auth message within %s", AuthTimeout)
	}
	var m clientMsg
	if err := json.Unmarshal(data, &m); err != nil || m.Type != "auth" {
		return api.Unauthenticated(`the first message must be {"type":"auth","apiKey":"…","token":"…"}`)
	}
	p, err := c.s.auth.Authenticate(actx, m.APIKey, m.Token)
	if err != nil {
		return err
	}
	if err := c.s.auth.Authorize(actx, p, "Live:connect", c.r); err != nil {
		return err
	}
	c.p, c.apiKey, c.token = p, m.APIKey, m.Token
	return nil
}

func (c *conn) readLoop(ctx context.Context) {
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		var m clientMsg
		if err := json.Unmarshal(data, &m); err != nil {
			c.push(errMsg("", api.BadRequest("not a JSON message: %v", err)))
			continue
		}
		switch m.Type {
		case "subscribe":
			var params map[string]any
			_ = json.Unmarshal(data, &params)
			if err := c.subscribe(ctx, m.ID, m.Topic, params); err != nil {
				c.push(errMsg(m.ID, err))
			} else {
				c.push(map[string]any{"type": "subscribed", "id": m.ID})
			}
		case "unsubscribe":
			c.unsubscribe(m.ID)
		case "ping":
			c.push(map[string]any{"type": "pong", "id": m.ID})
		default:
			c.push(errMsg(m.ID, api.BadRequest("unknown message type %q (subscribe, unsubscribe, ping)", m.Type)))
		}
	}
}

var paramRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,200}$`)

func (c *conn) subscribe(ctx context.Context, id, topic string, raw map[string]any) error {
	if id == "" || len(id) > 64 {
		return api.BadRequest("subscribe needs an id of 1-64 characters")
	}
	t, ok := c.s.topics[topic]
	if !ok {
		return api.BadRequest("unknown topic %q", topic)
	}
	params := map[string]string{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	if err != nil {
		return err
	}
	req.RemoteAddr = c.r.RemoteAddr
	for _, p := range t.Params {
		v, _ := raw[p.Field].(string)
		if !paramRE.MatchString(v) {
			return api.BadRequest("topic %s needs %s (letters, digits, _ . : @ -)", topic, p.Field)
		}
		params[p.Field] = v
		req.SetPathValue(p.PathValue, v)
	}
	if err := c.s.auth.Authorize(ctx, c.p, t.Op, req); err != nil {
		return err
	}
	subject, err := t.Subject(params)
	if err != nil {
		return api.BadRequest("%v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.subs[id]; dup {
		return api.BadRequest("subscription %s exists", id)
	}
	if len(c.subs) >= maxSubscriptions {
		return api.BadRequest("at most %d subscriptions per connection", maxSubscriptions)
	}
	op := c.p.OperatorID
	sub, err := c.s.nc.Subscribe(subject, func(m *nats.Msg) {
		fields, ok := t.Message(m, op)
		if !ok {
			return
		}
		fields["type"] = topic
		fields["id"] = id
		c.push(fields)
	})
	if err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	c.subs[id] = sub
	return nil
}

func (c *conn) unsubscribe(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sub, ok := c.subs[id]; ok {
		_ = sub.Unsubscribe()
		delete(c.subs, id)
	}
}

// push queues a message; a connection whose queue is full is closed.
func (c *conn) push(m map[string]any) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	select {
	case c.out <- b:
	default:
		slog.Debug("live: browser too slow; closing its connection")
		c.cancel()
	}
}

func (c *conn) writeLoop(ctx context.Context) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.ws.Close(websocket.StatusGoingAway, "")
			return
		case b := <-c.out:
			if err := c.writeNow(ctx, b); err != nil {
				c.cancel()
				return
			}
			c.s.sent.Inc()
		case <-t.C:
			if _, err := c.s.auth.Authenticate(ctx, c.apiKey, c.token); err != nil {
				_ = c.writeNow(ctx, errMsg("", err))
				c.cancel()
				return
			}
			pctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil {
				c.cancel()
				return
			}
		}
	}
}

func (c *conn) writeNow(ctx context.Context, v any) error {
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, b)
}

func (c *conn) close() {
	c.mu.Lock()
	for id, sub := range c.subs {
		_ = sub.Unsubscribe()
		delete(c.subs, id)
	}
	c.mu.Unlock()
	c.cancel()
	c.ws.CloseNow()
}

func errMsg(id string, err error) map[string]any {
	var ae *api.Error
	if !errors.As(err, &ae) {
		ae = &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()}
	}
	m := map[string]any{"type": "error", "code": ae.Code, "message": ae.Message}
	if id != "" {
		m["id"] = id
	}
	return m
}
