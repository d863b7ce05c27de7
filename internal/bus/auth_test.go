package bus

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/nagare-iot/nagare/internal/testaddr"
)

func mqttConnect(t *testing.T, broker, clientID, user, pass string, hdr http.Header) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	if hdr != nil {
		o.SetHTTPHeaders(hdr)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, errors.New("timeout")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

// The connection description nats-server gives the authenticator is how
// protocol, client ID and forwarded address are told apart (classify):
// this pins it for the pinned server version.
func TestClassify(t *testing.T) {
	ctx := t.Context()
	b, err := Open(ctx, Config{DataDir: t.TempDir(), Listen: testaddr.Loopback(t), MQTTListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.MQTTAddr() == "" || b.WebSocketAddr() == "" || !strings.HasPrefix(b.WebSocketAddr(), "127.0.0.1:") {
		t.Fatalf("mqtt %q ws %q", b.MQTTAddr(), b.WebSocketAddr())
	}
	var mu sync.Mutex
	var logins []MQTTLogin
	// Before an MQTT authenticator is installed, MQTT logins are refused.
	if _, err := mqttConnect(t, "tcp://"+b.MQTTAddr(), "early", "u", "p", nil); err == nil {
		t.Fatal("MQTT login accepted without an authenticator")
	}
	b.SetMQTTAuth(func(ctx context.Context, l MQTTLogin) (*MQTTAccess, error) {
		mu.Lock()
		logins = append(logins, l)
		mu.Unlock()
		if l.Password != "good" {
			return nil, errors.New("no")
		}
		return &MQTTAccess{Name: l.Username, Publish: []string{"x.>"}}, nil
	})
	if _, err := mqttConnect(t, "tcp://"+b.MQTTAddr(), `id-"quoted"-é`, "dev1", "good", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := mqttConnect(t, "ws://"+b.WebSocketAddr()+"/mqtt", "ws-id", "dev2", "bad",
		http.Header{"X-Forwarded-For": {"203.0.113.7"}}); err == nil || !strings.Contains(err.Error(), "not Authorized") {
		t.Fatalf("refused login: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []MQTTLogin{
		{Username: "dev1", Password: "good", ClientID: `id-"quoted"-é`, RemoteAddr: "127.0.0.1"},
		{Username: "dev2", Password: "bad", ClientID: "ws-id", RemoteAddr: "203.0.113.7", WebSocket: true},
	}
	if len(logins) != 2 || logins[0] != want[0] || logins[1] != want[1] {
		t.Fatalf("logins %+v, want %+v", logins, want)
	}
}

// An MQTT login with an empty subscribe list may subscribe to nothing
// (NATS reads an empty allow list as "anything").
func TestMQTTPermissions(t *testing.T) {
	b, err := Open(t.Context(), Config{DataDir: t.TempDir(), MQTTListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetMQTTAuth(func(ctx context.Context, l MQTTLogin) (*MQTTAccess, error) {
		return &MQTTAccess{Name: l.Username, Publish: []string{"a.>"}}, nil
	})
	c, err := mqttConnect(t, "tcp://"+b.MQTTAddr(), "p1", "u", "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"a/b", "#", "b/c"} {
		tok := c.Subscribe(topic, 0, func(paho.Client, paho.Message) {})
		tok.Wait()
		if got := tok.(*paho.SubscribeToken).Result()[topic]; got != 0x80 {
			t.Errorf("subscribed to %s (%d)", topic, got)
		}
	}
	sub, err := b.NC.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Publish("b/c", 0, false, "no").Wait()
	c.Publish("a/b", 0, false, "yes").Wait()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || m.Subject != "a.b" {
		t.Fatalf("nagare's own connection got %v %v", m, err)
	}
}

// The NATS client port: open as before without a token; with one, only
// for clients presenting it. nagare's own connection is unaffected, and
// NATS over the (loopback) WebSocket port is refused.
func TestNATSToken(t *testing.T) {
	ctx := t.Context()
	addr := testaddr.Loopback(t)
	b, err := Open(ctx, Config{DataDir: t.TempDir(), Listen: addr, Token: "s3cret-token", MQTTListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.JS.AccountInfo(ctx); err != nil {
		t.Fatalf("own connection: %v", err)
	}
	for _, bad := range []string{"nats://" + addr, "nats://wrong@" + addr} {
		if nc, err := nats.Connect(bad, nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Errorf("%s accepted", bad)
		}
	}
	nc, err := nats.Connect("nats://s3cret-token@" + addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	// A nagare node using this server as its external NATS sends the token.
	ext, err := Open(ctx, Config{URL: "nats://" + addr, Token: "s3cret-token"})
	if err != nil {
		t.Fatal(err)
	}
	ext.Close()
	if nc, err := nats.Connect("ws://"+b.WebSocketAddr(), nats.Token("s3cret-token"), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("NATS over the WebSocket port accepted")
	}
	// Without nats-listen there is no way in but the in-process connection.
	b2, err := Open(ctx, Config{DataDir: t.TempDir(), MQTTListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if nc, err := nats.Connect("ws://"+b2.WebSocketAddr(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("NATS over the WebSocket port accepted")
	}
}

// A taken MQTT port fails at once, or moves to loopback with fallback.
func TestMQTTPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	if _, err := Open(t.Context(), Config{DataDir: t.TempDir(), MQTTListen: ln.Addr().String()}); err == nil || !strings.Contains(err.Error(), "mqtt listen") {
		t.Fatalf("taken port: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("failing took %s", time.Since(start))
	}
	b, err := Open(t.Context(), Config{DataDir: t.TempDir(), MQTTListen: ln.Addr().String(), MQTTFallback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.MQTTAddr() == ln.Addr().String() || !strings.HasPrefix(b.MQTTAddr(), "127.0.0.1:") {
		t.Fatalf("fallback address %q", b.MQTTAddr())
	}
}
