package mqtt_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/mqtt"
	"github.com/nagare-iot/nagare/internal/servertest"
)

// env is a test server with MQTT on and a Harvest-enabled group.
type env struct {
	t     *testing.T
	ts    *servertest.TS
	group string
	n     atomic.Int64
}

func start(t *testing.T) *env {
	t.Helper()
	ts := servertest.Start(t, servertest.WithMQTT)
	var g struct{ GroupID string }
	res := ts.Root.Do("POST", "/v1/groups", map[string]any{"tags": map[string]string{"name": "mqtt"},
		"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}})
	if res.Status != 201 {
		t.Fatalf("group: %d %s", res.Status, res.Body)
	}
	res.JSON(&g)
	return &env{t: t, ts: ts, group: g.GroupID}
}

type device struct{ id, secret string }

// device creates a device, in the Harvest group unless noGroup.
func (e *env) device(noGroup ...bool) device {
	e.t.Helper()
	var d struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string `json:"deviceSecret"`
	}
	res := e.ts.Root.Do("POST", "/v1/devices", map[string]any{})
	if res.Status != 201 {
		e.t.Fatalf("device: %d %s", res.Status, res.Body)
	}
	res.JSON(&d)
	if len(noGroup) == 0 {
		if res := e.ts.Root.Do("POST", "/v1/devices/"+d.DeviceID+"/set_group", map[string]any{"groupId": e.group}); res.Status != 200 {
			e.t.Fatalf("set_group: %d %s", res.Status, res.Body)
		}
	}
	return device{d.DeviceID, d.DeviceSecret}
}

func (e *env) tcpURL() string { return "tcp://" + e.ts.Bus.MQTTAddr() }
func (e *env) wsURL() string  { return "ws://" + strings.TrimPrefix(e.ts.URL, "http://") + mqtt.Path }

type clientOpt func(*paho.ClientOptions)

func clean(b bool) clientOpt { return func(o *paho.ClientOptions) { o.SetCleanSession(b) } }
func clientID(id string) clientOpt {
	return func(o *paho.ClientOptions) { o.SetClientID(id) }
}

// connect logs in; it returns the client and the CONNECT error.
func (e *env) connect(broker, user, pass string, opts ...clientOpt) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(broker).SetUsername(user).SetPassword(pass).
		SetClientID(fmt.Sprintf("test-%d", e.n.Add(1))).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).SetKeepAlive(30 * time.Second)
	for _, f := range opts {
		f(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	e.t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func (e *env) mustConnect(broker, user, pass string, opts ...clientOpt) paho.Client {
	e.t.Helper()
	c, err := e.connect(broker, user, pass, opts...)
	if err != nil {
		e.t.Fatalf("connect %s as %s: %v", broker, user, err)
	}
	return c
}

// login returns a root API key and token.
func (e *env) rootLogin() (string, string) { return e.ts.Root.APIKey, e.ts.Root.Token }

func wait(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatal("MQTT operation timed out")
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
}

// inbox collects messages of one subscription.
type inbox struct {
	mu   sync.Mutex
	msgs []paho.Message
	ch   chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1000)} }

func (b *inbox) handler(_ paho.Client, m paho.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.ch <- struct{}{}
}

func (b *inbox) next(t *testing.T, d time.Duration) paho.Message {
	t.Helper()
	select {
	case <-b.ch:
	case <-time.After(d):
		t.Fatal("no message")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.msgs[0]
	b.msgs = b.msgs[1:]
	return m
}

func (b *inbox) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-b.ch:
		b.mu.Lock()
		defer b.mu.Unlock()
		t.Fatalf("unexpected message on %s: %q", b.msgs[0].Topic(), b.msgs[0].Payload())
	case <-time.After(d):
	}
}

// drain collects topic → payload (the last per topic) until every
// wanted topic has arrived and then for d more, or fails after 10 s.
func (b *inbox) drain(t *testing.T, d time.Duration, want ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	deadline := time.Now().Add(10 * time.Second)
	var quiet <-chan time.Time
	for {
		missing := false
		for _, w := range want {
			if _, ok := got[w]; !ok {
				missing = true
			}
		}
		if !missing && quiet == nil {
			quiet = time.After(d)
		}
		select {
		case <-b.ch:
			b.mu.Lock()
			m := b.msgs[0]
			b.msgs = b.msgs[1:]
			b.mu.Unlock()
			got[m.Topic()] = string(m.Payload())
		case <-quiet:
			return got
		case <-time.After(time.Until(deadline)):
			t.Fatalf("missing some of %v; got %v", want, got)
		}
	}
}

// subscribe subscribes and returns the granted QoS (0x80: refused).
func subscribe(t *testing.T, c paho.Client, topic string, qos byte, in *inbox) byte {
	t.Helper()
	tok := c.Subscribe(topic, qos, in.handler)
	wait(t, tok)
	return tok.(*paho.SubscribeToken).Result()[topic]
}

// entries reads a device's Harvest Data back (oldest first).
func (e *env) entries(id string) []harvest.DataEntry {
	e.t.Helper()
	res := e.ts.Root.Do("GET", "/v1/devices/"+id+"/data?sort=asc&limit=1000", nil)
	if res.Status != 200 {
		e.t.Fatalf("data: %d %s", res.Status, res.Body)
	}
	var out []harvest.DataEntry
	res.JSON(&out)
	return out
}

// waitEntries waits until a device has n entries.
func (e *env) waitEntries(id string, n int) []harvest.DataEntry {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := e.entries(id)
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				e.t.Fatalf("device %s: %d entries, want %d: %+v", id, len(got), n, got)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeviceLogin(t *testing.T) {
	e := start(t)
	d := e.device()
	for _, broker := range []string{e.tcpURL(), e.wsURL()} {
		c := e.mustConnect(broker, d.id, d.secret)
		c.Disconnect(0)
		for _, bad := range []struct{ name, user, pass string }{
			{"wrong secret", d.id, d.secret + "x"},
			{"unknown device", "d-nosuchdevice", d.secret},
			{"no password", d.id, ""},
			{"not a device ID", "d.x.>", d.secret},
			{"wrong token", "api-nosuchkey", "token"},
			{"device secret as token", e.ts.Root.APIKey, d.secret},
		} {
			_, err := e.connect(broker, bad.user, bad.pass)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "not authori") {
				t.Errorf("%s %s: connect error %v, want not authorized", broker, bad.name, err)
			}
		}
	}
}

func TestDevicePublishIntoHarvest(t *testing.T) {
	e := start(t)
	d := e.device()
	for i, broker := range []string{e.tcpURL(), e.wsURL()} {
		c := e.mustConnect(broker, d.id, d.secret)
		for qos := byte(0); qos <= 1; qos++ {
			wait(t, c.Publish(mqtt.DataTopic(d.id), qos, false, fmt.Sprintf(`{"qos":%d,"broker":%d}`, qos, i)))
		}
	}
	wait(t, e.mustConnect(e.tcpURL(), d.id, d.secret).Publish(mqtt.DataTopic(d.id), 1, false, []byte{0xff, 0x00, 'x'}))
	got := e.waitEntries(d.id, 5)
	seen := map[string]bool{}
	for _, en := range got[:4] {
		if en.ContentType != "application/json" || en.ResourceType != "Device" || en.ResourceID != d.id {
			t.Errorf("entry %+v", en)
		}
		seen[en.Content] = true
	}
	for _, want := range []string{`{"qos":0,"broker":0}`, `{"qos":1,"broker":0}`, `{"qos":0,"broker":1}`, `{"qos":1,"broker":1}`} {
		if !seen[want] {
			t.Errorf("missing entry %s in %+v", want, got)
		}
	}
	if last := got[4]; last.ContentType != "application/octet-stream" || last.ContentEncoding != "base64" || last.Content != "/wB4" {
		t.Errorf("binary entry %+v", last)
	}
}

// A device whose group has Harvest off, and a payload over
// max-publish-bytes, are refused exactly like an HTTP publish: nothing is
// stored (and the stream does not keep them).
func TestDevicePublishChecks(t *testing.T) {
	ts := servertest.Start(t, servertest.WithMQTT, func(c *config.Config) { c.MaxPublishBytes = 64 })
	e := &env{t: t, ts: ts}
	var g struct{ GroupID string }
	ts.Root.Do("POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}}).JSON(&g)
	e.group = g.GroupID
	off := e.device(true)
	on := e.device()
	// HTTP says so first.
	if res := ts.Anon().Do("POST", "/v1/devices/"+off.id+"/publish?device_secret="+off.secret, `{"a":1}`); res.Status != 400 || res.ErrorCode() != "HRV0001" {
		t.Fatalf("HTTP publish with Harvest off: %d %s", res.Status, res.Body)
	}
	if res := ts.Anon().Do("POST", "/v1/devices/"+on.id+"/publish?device_secret="+on.secret, strings.Repeat("x", 65)); res.Status != 413 {
		t.Fatalf("HTTP publish too large: %d %s", res.Status, res.Body)
	}
	wait(t, e.mustConnect(e.tcpURL(), off.id, off.secret).Publish(mqtt.DataTopic(off.id), 1, false, `{"a":1}`))
	c := e.mustConnect(e.tcpURL(), on.id, on.secret)
	wait(t, c.Publish(mqtt.DataTopic(on.id), 1, false, strings.Repeat("x", 65)))
	wait(t, c.Publish(mqtt.DataTopic(on.id), 1, false, `{"ok":true}`))
	got := e.waitEntries(on.id, 1)
	if got[0].Content != `{"ok":true}` {
		t.Fatalf("entries %+v", got)
	}
	if n := len(e.entries(off.id)); n != 0 {
		t.Fatalf("Harvest-off device has %d entries", n)
	}
	// Both refused messages left the work queue: nothing is waiting.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := ts.Bus.JS.Stream(t.Context(), mqtt.DataStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages left in %s", info.State.Msgs, mqtt.DataStream)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Device A cannot subscribe to, or publish on, device B's topics, not
// even through wildcards; nothing of B's reaches A.
func TestDeviceIsolation(t *testing.T) {
	e := start(t)
	a, b := e.device(), e.device()
	ca := e.mustConnect(e.tcpURL(), a.id, a.secret)
	cb := e.mustConnect(e.wsURL(), b.id, b.secret)
	leaks := newInbox()
	for _, topic := range []string{"#", "+/" + b.id + "/data", "devices/+/data", "devices/" + b.id + "/#",
		"$aws/things/" + b.id + "/shadow/#", "$aws/things/+/shadow/update/accepted", "$aws/#", "harvest/#", "$MQTT/sub/#"} {
		for _, qos := range []byte{0, 1} {
			if got := subscribe(t, ca, topic, qos, leaks); got != 0x80 {
				t.Errorf("device A subscribed to %q at QoS %d (granted %d)", topic, qos, got)
			}
		}
	}
	own := newInbox()
	for _, topic := range []string{"devices/" + a.id + "/#", "$aws/things/" + a.id + "/shadow/#"} {
		if got := subscribe(t, ca, topic, 1, own); got != 1 {
			t.Fatalf("device A own topic %q: granted %d", topic, got)
		}
	}
	// B's subscriber sees what is published for B; A's attempts never arrive.
	bIn := newInbox()
	subscribe(t, cb, "devices/"+b.id+"/#", 1, bIn)
	subscribe(t, cb, "$aws/things/"+b.id+"/shadow/#", 1, bIn)
	for _, topic := range []string{mqtt.DataTopic(b.id), "devices/" + b.id + "/commands", "$aws/things/" + b.id + "/shadow/update"} {
		for _, qos := range []byte{0, 1} {
			wait(t, ca.Publish(topic, qos, false, `{"from":"A"}`))
		}
	}
	// A device cannot answer as the shadow service either.
	wait(t, cb.Publish("$aws/things/"+b.id+"/shadow/update/accepted", 1, false, `{"forged":true}`))
	// B's own traffic: published by B, seen by B, not by A.
	wait(t, cb.Publish("devices/"+b.id+"/status", 1, false, "b-status"))
	wait(t, cb.Publish(mqtt.DataTopic(b.id), 1, false, `{"from":"B"}`))
	wait(t, cb.Publish("$aws/things/"+b.id+"/shadow/update", 1, false, `{"state":{"reported":{"x":1}}}`))
	// B gets its own messages (and the shadow service's answers to its
	// update), nothing from A, and not the forged answer.
	got := bIn.drain(t, 3*time.Second, "devices/"+b.id+"/status", mqtt.DataTopic(b.id), "$aws/things/"+b.id+"/shadow/update")
	if got["devices/"+b.id+"/status"] != "b-status" || got[mqtt.DataTopic(b.id)] != `{"from":"B"}` {
		t.Fatalf("B received %v", got)
	}
	for topic, payload := range got {
		if strings.Contains(payload, `"from":"A"`) || strings.Contains(payload, "forged") {
			t.Errorf("B received %s %s", topic, payload)
		}
	}
	leaks.none(t, 100*time.Millisecond)
	own.none(t, 100*time.Millisecond)
	if en := e.waitEntries(b.id, 1); en[0].Content != `{"from":"B"}` {
		t.Fatalf("B's data: %+v", en)
	}
	if n := len(e.entries(a.id)); n != 0 {
		t.Fatalf("A has %d entries", n)
	}
}

// Retained messages, wills on an abnormal disconnect and persistent
// sessions come from NATS and work under the per-device permissions.
func TestRetainedWillAndSessions(t *testing.T) {
	e := start(t)
	d := e.device()
	key, tok := e.rootLogin()
	dc := e.mustConnect(e.tcpURL(), d.id, d.secret)
	wait(t, dc.Publish("devices/"+d.id+"/firmware", 1, true, "v1.2.3"))

	t.Run("retained", func(t *testing.T) {
		// NATS stores a retained message in a JetStream stream after the
		// PUBACK, so a subscriber right after the publish may come before
		// it: the first subscriber retries on a new connection.
		for i, broker := range []string{e.tcpURL(), e.wsURL()} {
			var m paho.Message
			for try := 0; m == nil; try++ {
				in := newInbox()
				c := e.mustConnect(broker, key, tok)
				subscribe(t, c, "devices/+/firmware", 1, in)
				select {
				case <-in.ch:
					in.mu.Lock()
					m = in.msgs[0]
					in.mu.Unlock()
				case <-time.After(3 * time.Second):
					if i > 0 || try == 4 {
						t.Fatal("no retained message")
					}
				}
				c.Disconnect(0)
			}
			if string(m.Payload()) != "v1.2.3" || !m.Retained() {
				t.Fatalf("retained %q retained=%v", m.Payload(), m.Retained())
			}
		}
		// The device itself gets it too (own topic).
		in := newInbox()
		subscribe(t, e.mustConnect(e.wsURL(), d.id, d.secret), "devices/"+d.id+"/firmware", 0, in)
		if m := in.next(t, 10*time.Second); string(m.Payload()) != "v1.2.3" {
			t.Fatalf("device retained %q", m.Payload())
		}
	})

	t.Run("will", func(t *testing.T) {
		in := newInbox()
		subscribe(t, e.mustConnect(e.wsURL(), key, tok), "devices/"+d.id+"/status", 1, in)
		var mu sync.Mutex
		var raw net.Conn
		c := e.mustConnect(e.tcpURL(), d.id, d.secret, func(o *paho.ClientOptions) {
			o.SetWill("devices/"+d.id+"/status", "offline", 1, false)
			o.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
				conn, err := net.Dial("tcp", u.Host)
				mu.Lock()
				raw = conn
				mu.Unlock()
				return conn, err
			})
		})
		wait(t, c.Publish("devices/"+d.id+"/status", 1, false, "online"))
		if m := in.next(t, 10*time.Second); string(m.Payload()) != "online" {
			t.Fatalf("status %q", m.Payload())
		}
		mu.Lock()
		raw.Close() // the network goes away: no DISCONNECT
		mu.Unlock()
		if m := in.next(t, 10*time.Second); string(m.Payload()) != "offline" {
			t.Fatalf("will %q", m.Payload())
		}
		// A will is a publish like any other: on another device's topic it
		// goes nowhere.
		other := e.device()
		otherIn := newInbox()
		subscribe(t, e.mustConnect(e.tcpURL(), key, tok), "devices/"+other.id+"/#", 1, otherIn)
		var raw2 net.Conn
		e.mustConnect(e.tcpURL(), d.id, d.secret, func(o *paho.ClientOptions) {
			o.SetWill("devices/"+other.id+"/status", "forged offline", 1, false)
			o.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
				conn, err := net.Dial("tcp", u.Host)
				mu.Lock()
				raw2 = conn
				mu.Unlock()
				return conn, err
			})
		})
		mu.Lock()
		raw2.Close()
		mu.Unlock()
		otherIn.none(t, time.Second)
		// A clean disconnect sends no will.
		c2 := e.mustConnect(e.tcpURL(), d.id, d.secret, func(o *paho.ClientOptions) { o.SetWill("devices/"+d.id+"/status", "offline", 1, false) })
		c2.Disconnect(100)
		in.none(t, 500*time.Millisecond)
	})

	t.Run("persistent session", func(t *testing.T) {
		id := d.id + "-session"
		in := newInbox()
		c := e.mustConnect(e.tcpURL(), d.id, d.secret, clean(false), clientID(id))
		if got := subscribe(t, c, "devices/"+d.id+"/commands/#", 1, in); got != 1 {
			t.Fatalf("granted %d", got)
		}
		c.Disconnect(100)
		// While the device is away, the root account sends it commands.
		pub := e.mustConnect(e.tcpURL(), key, tok)
		for i := range 3 {
			wait(t, pub.Publish(fmt.Sprintf("devices/%s/commands/%d", d.id, i), 1, false, fmt.Sprintf("cmd-%d", i)))
		}
		// Back with the same client ID and clean=false: the session and its
		// subscription were kept; the messages arrive (the handler is the
		// client's default, as the subscription is the server's).
		got := map[string]bool{}
		back := newInbox()
		e.mustConnect(e.tcpURL(), d.id, d.secret, clean(false), clientID(id), func(o *paho.ClientOptions) {
			o.SetDefaultPublishHandler(back.handler)
		})
		for range 3 {
			m := back.next(t, 15*time.Second)
			got[string(m.Payload())] = true
		}
		if !got["cmd-0"] || !got["cmd-1"] || !got["cmd-2"] {
			t.Fatalf("session got %v", got)
		}
		// Client IDs starting with a device's ID are that device's: no other
		// login can take its session over.
		other := e.device()
		for _, c := range []struct{ user, pass string }{{other.id, other.secret}, {key, tok}} {
			if _, err := e.connect(e.tcpURL(), c.user, c.pass, clean(false), clientID(id)); err == nil {
				t.Errorf("%s took over %s's session", c.user, d.id)
			}
		}
		if _, err := e.connect(e.tcpURL(), key, tok, clientID("d-anything")); err == nil {
			t.Error("a user logged in with a device client ID")
		}
		// A session under an arbitrary client ID can be taken over (MQTT
		// says the newer connection wins), but not its subscriptions: they
		// are re-made under the new login's permissions.
		free := e.mustConnect(e.tcpURL(), d.id, d.secret, clean(false), clientID("shared-id"))
		subscribe(t, free, "devices/"+d.id+"/commands/#", 1, newInbox())
		free.Disconnect(100)
		stolen := newInbox()
		e.mustConnect(e.tcpURL(), other.id, other.secret, clean(false), clientID("shared-id"), func(o *paho.ClientOptions) {
			o.SetDefaultPublishHandler(stolen.handler)
		})
		wait(t, pub.Publish("devices/"+d.id+"/commands/x", 1, false, "secret-command"))
		stolen.none(t, 700*time.Millisecond)
	})
}

// Browsers and scripts log in with an API key and token; what they may do
// follows their permissions.
func TestUserLogin(t *testing.T) {
	e := start(t)
	d := e.device()
	key, tok := e.rootLogin()
	users := "/v1/operators/" + e.ts.OperatorID + "/users/"
	newUser := func(name, permission string) (string, string) {
		t.Helper()
		e.ts.Root.Do("POST", users+name, nil)
		if res := e.ts.Root.Do("POST", users+name+"/password", map[string]any{"password": name + " password"}); res.Status != 201 {
			t.Fatalf("password: %d %s", res.Status, res.Body)
		}
		if permission != "" {
			if res := e.ts.Root.Do("PUT", users+name+"/permission", map[string]any{"permission": permission}); res.Status != 200 {
				t.Fatalf("permission: %d %s", res.Status, res.Body)
			}
		}
		c := e.ts.Login(map[string]any{"operatorId": e.ts.OperatorID, "userName": name, "password": name + " password"})
		return c.APIKey, c.Token
	}
	viewerKey, viewerTok := newUser("viewer", `{"statements":[{"effect":"allow","api":["Shadow:getThingShadow"]}]}`)
	nobodyKey, nobodyTok := newUser("nobody", `{"statements":[{"effect":"allow","api":["Device:listDevices"]}]}`)
	offsiteKey, offsiteTok := newUser("offsite", `{"statements":[{"effect":"allow","api":["Shadow:*"],"condition":"ipAddress('10.0.0.0/8')"}]}`)

	for _, broker := range []string{e.tcpURL(), e.wsURL()} {
		if _, err := e.connect(broker, key, tok+"x"); err == nil {
			t.Errorf("%s: wrong token accepted", broker)
		}
		if _, err := e.connect(broker, nobodyKey, nobodyTok); err == nil {
			t.Errorf("%s: user without MQTT permissions accepted", broker)
		}
		if _, err := e.connect(broker, offsiteKey, offsiteTok); err == nil {
			t.Errorf("%s: user whose permission needs another address accepted", broker)
		}
	}
	// After logout the token no longer opens a connection.
	lo := e.ts.LoginKey(servertest.RootKeyID, servertest.RootKey)
	if res := lo.Do("POST", "/v1/auth/logout", nil); res.Status != 204 {
		t.Fatalf("logout %d", res.Status)
	}
	if _, err := e.connect(e.wsURL(), lo.APIKey, lo.Token); err == nil {
		t.Error("logged-out token accepted")
	}

	root := e.mustConnect(e.wsURL(), key, tok)
	viewer := e.mustConnect(e.wsURL(), viewerKey, viewerTok)
	rootIn, viewerIn := newInbox(), newInbox()
	if got := subscribe(t, root, "$aws/things/+/shadow/#", 1, rootIn); got != 1 {
		t.Fatalf("root shadow subscription: %d", got)
	}
	if got := subscribe(t, root, "devices/#", 0, rootIn); got != 0 {
		t.Fatalf("root devices subscription: %d", got)
	}
	if got := subscribe(t, viewer, "$aws/things/+/shadow/update/accepted", 1, viewerIn); got != 1 {
		t.Fatalf("viewer shadow subscription: %d", got)
	}
	// (Paho routes a message to every local handler whose filter matches,
	// refused subscriptions included: these get their own inbox.)
	refused := newInbox()
	for _, topic := range []string{"devices/#", "devices/" + d.id + "/data", "#"} {
		if got := subscribe(t, viewer, topic, 0, refused); got != 0x80 {
			t.Errorf("viewer subscribed to %s (%d)", topic, got)
		}
	}
	// Root changes a shadow; the shadow service's answer reaches the viewer.
	wait(t, root.Publish("$aws/things/"+d.id+"/shadow/update", 1, false, `{"state":{"desired":{"x":1}}}`))
	if m := viewerIn.next(t, 10*time.Second); !strings.Contains(string(m.Payload()), `"x":1`) {
		t.Fatalf("viewer got %s %q", m.Topic(), m.Payload())
	}
	// The viewer may ask for the shadow (get) but not change it (update).
	wait(t, viewer.Publish("$aws/things/"+d.id+"/shadow/update", 1, false, `{"state":{"desired":{"x":2}}}`))
	getIn := newInbox()
	subscribe(t, viewer, "$aws/things/"+d.id+"/shadow/get/accepted", 0, getIn)
	wait(t, viewer.Publish("$aws/things/"+d.id+"/shadow/get", 1, false, `{}`))
	if m := getIn.next(t, 10*time.Second); !strings.Contains(string(m.Payload()), `"desired":{"x":1}`) {
		t.Fatalf("get/accepted %q", m.Payload())
	}
	rootSaw := rootIn.drain(t, time.Second, "$aws/things/"+d.id+"/shadow/get")
	if _, ok := rootSaw["$aws/things/"+d.id+"/shadow/update"]; !ok {
		t.Fatalf("root did not see its own update: %v", rootSaw)
	}
	if p := rootSaw["$aws/things/"+d.id+"/shadow/update"]; strings.Contains(p, `"x":2`) {
		t.Fatalf("the viewer's update went through: %v", rootSaw)
	}
	viewerIn.none(t, 300*time.Millisecond) // no second update/accepted
	// A device publish reaches root's devices/# subscription.
	wait(t, e.mustConnect(e.tcpURL(), d.id, d.secret).Publish(mqtt.DataTopic(d.id), 0, false, `{"t":1}`))
	if m := rootIn.next(t, 10*time.Second); m.Topic() != mqtt.DataTopic(d.id) {
		t.Fatalf("root saw %s", m.Topic())
	}
	rootIn.none(t, 300*time.Millisecond)
}

func TestWebSocketEndpoint(t *testing.T) {
	e := start(t)
	d := e.device()
	base := e.ts.URL + mqtt.Path
	upgrade := func(origin, proto string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base, nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if proto != "" {
			req.Header.Set("Sec-WebSocket-Protocol", proto)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if res, err := http.Get(base); err != nil || res.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %v %v", res, err)
	}
	for _, c := range []struct {
		origin, proto string
		want          int
	}{
		{"", "mqtt", 101},
		{"", "", 101},
		{e.ts.URL, "mqtt", 101},
		{e.ts.Config().PublicBase(), "mqtt", 101},
		{"http://evil.example", "mqtt", 403},
		{"null", "mqtt", 403},
		{"", "chat", 400},
	} {
		if got := upgrade(c.origin, c.proto); got != c.want {
			t.Errorf("origin %q protocol %q: %d, want %d", c.origin, c.proto, got, c.want)
		}
	}
	// Paho from a same-origin page, and one from a foreign page.
	e.mustConnect(e.wsURL(), d.id, d.secret, func(o *paho.ClientOptions) {
		o.SetHTTPHeaders(http.Header{"Origin": {e.ts.URL}})
	})
	if _, err := e.connect(e.wsURL(), d.id, d.secret, func(o *paho.ClientOptions) {
		o.SetHTTPHeaders(http.Header{"Origin": {"https://evil.example"}})
	}); err == nil {
		t.Fatal("cross-site WebSocket accepted")
	}
}

// A flow's device source fires for data published over MQTT, as for HTTP.
func TestDeviceDataOnHarvestStream(t *testing.T) {
	e := start(t)
	d := e.device()
	sub, err := e.ts.Bus.NC.SubscribeSync(harvest.Subject(harvest.ResourceDevice, d.id))
	if err != nil {
		t.Fatal(err)
	}
	wait(t, e.mustConnect(e.tcpURL(), d.id, d.secret).Publish(mqtt.DataTopic(d.id), 1, false, `{"temp":21.5}`))
	m, err := sub.NextMsg(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var en harvest.DataEntry
	if err := json.Unmarshal(m.Data, &en); err != nil || en.Content != `{"temp":21.5}` {
		t.Fatalf("HARVEST message %s: %v", m.Data, err)
	}
}
