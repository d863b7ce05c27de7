// Package bus is nagare's only door to NATS: it embeds a nats-server with
// JetStream on disk in the data directory (single node, sync writes), or
// connects to an external NATS cluster by URL. The embedded server also
// serves MQTT 3.1.1 (TCP, and WebSocket on a loopback port that nagare
// proxies at /mqtt), with logins decided by a function the server wires
// in (see SetMQTTAuth). The rest of the code sees a connection and
// JetStream context; nothing else imports nats-server.
package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config selects the bus.
type Config struct {
	// URL of an external NATS cluster ("nats://a:4222,nats://b:4222").
	// Empty embeds a server.
	URL string
	// DataDir holds the embedded server's JetStream store (DataDir/jetstream).
	DataDir string
	// Listen, if set, exposes the embedded server's client port (host:port)
	// for tools such as the nats CLI. Empty keeps it in-process only.
	Listen string
	// Name identifies this node (server name and client name).
	Name string
	// SyncInterval is how often the embedded server fsyncs JetStream
	// writes; 0 fsyncs every write. Every write reaches the operating
	// system before it is acknowledged either way, so a crashed or killed
	// process loses nothing; the interval bounds what a power loss can.
	SyncInterval time.Duration
	// Token, when set, is required from plain NATS clients of the Listen
	// port, and sent to the external servers of URL. Empty leaves the
	// Listen port open to clients without credentials.
	Token string
	// MQTTListen (host:port; port 0 picks a free one) enables the embedded
	// server's MQTT listener, and its WebSocket listener on a free
	// loopback port for MQTT over WebSocket (see WebSocketAddr). Empty:
	// neither. MQTT logins are decided by the function given to
	// SetMQTTAuth; until then they are refused.
	MQTTListen string
	// MQTTFallback: when MQTTListen is taken, serve MQTT on a free
	// loopback port instead of failing (for a default address that was
	// not asked for explicitly).
	MQTTFallback bool
	// ClusterListen (host:port) and Routes make the embedded server a node
	// of a NATS cluster named ClusterName (Name must be unique in it).
	// Routes authenticate with Token when it is set.
	ClusterListen string
	Routes        []string
	ClusterName   string
	// Replicas is the replication factor EnsureStream and EnsureKeyValue
	// give streams and buckets that do not set their own (0: 1).
	Replicas int
}

// Bus is an open connection to NATS with JetStream.
type Bus struct {
	NC *nats.Conn
	JS jetstream.JetStream
	ns *server.Server

	internalToken string // nagare's own in-process connection
	natsToken     string // Config.Token
	listens       bool   // the client port is exposed
	mqttAuth      atomic.Pointer[MQTTAuthFunc]
	mqttAddr      string
	wsAddr        string
	replicas      int
}

// Open starts the embedded server or connects to the external one.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	name := cfg.Name
	if name == "" {
		name = "nagare"
	}
	if cfg.URL != "" {
		copts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1),
			nats.ReconnectWait(time.Second), nats.Timeout(5 * time.Second)}
		if cfg.Token != "" {
			copts = append(copts, nats.Token(cfg.Token))
		}
		nc, err := nats.Connect(cfg.URL, copts...)
		if err != nil {
			return nil, fmt.Errorf("nats %s: %w", cfg.URL, err)
		}
		b, err := newBus(nc, nil)
		if b != nil {
			b.replicas = cfg.Replicas
		}
		return b, err
	}
	b := &Bus{internalToken: randomToken(), natsToken: cfg.Token, listens: cfg.Listen != "", replicas: cfg.Replicas}
	opts := &server.Options{
		ServerName:   name,
		JetStream:    true,
		StoreDir:     filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways:   cfg.SyncInterval <= 0,
		SyncInterval: cfg.SyncInterval,
		NoSigs:       true,
		NoLog:        true,
		DontListen:   cfg.Listen == "",
		// Every client connection (NATS and MQTT) is decided by checkClient.
		CustomClientAuthentication: clientAuth{b},
	}
	if cfg.Listen != "" {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen %q: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, port
	}
	if cfg.ClusterListen != "" {
		host, port, err := splitHostPort(cfg.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("nats cluster %q: %w", cfg.ClusterListen, err)
		}
		opts.Cluster = server.ClusterOpts{Name: cfg.ClusterName, Host: host, Port: port}
		if cfg.Listen == "" {
			// Routing waits for the client listener: a random loopback
			// port, closed to plain clients (listens stays false).
			opts.DontListen, opts.Host, opts.Port = false, "127.0.0.1", server.RANDOM_PORT
		}
		if cfg.Token != "" {
			opts.Cluster.Username, opts.Cluster.Password = "nagare", cfg.Token
		}
		for _, r := range cfg.Routes {
			u, err := url.Parse(strings.Replace(r, "nats://", "nats-route://", 1))
			if err != nil {
				return nil, fmt.Errorf("nats route %q: %w", r, err)
			}
			if cfg.Token != "" {
				u.User = url.UserPassword("nagare", cfg.Token)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if cfg.MQTTListen != "" {
		host, port, err := mqttAddress(cfg.MQTTListen, cfg.MQTTFallback)
		if err != nil {
			return nil, err
		}
		opts.MQTT = server.MQTTOpts{Host: host, Port: port}
		// MQTT over WebSocket: NATS's own HTTP listener, reached only
		// through nagare's reverse proxy at /mqtt (which checks Origin).
		opts.Websocket = server.WebsocketOpts{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoTLS: true,
			HandshakeTimeout: 10 * time.Second}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready after 15s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name(name), nats.Token(b.internalToken))
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats connect: %w", err)
	}
	if err := b.init(nc, ns); err != nil {
		ns.Shutdown()
		return nil, err
	}
	if cfg.MQTTListen != "" {
		v, err := ns.Varz(nil)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
		b.mqttAddr = net.JoinHostPort(v.MQTT.Host, strconv.Itoa(v.MQTT.Port))
		b.wsAddr = strings.TrimPrefix(ns.WebsocketURL(), "ws://")
	}
	slog.Info("embedded NATS started", "store", opts.StoreDir, "client_listen", cfg.Listen, "mqtt_listen", b.mqttAddr)
	return b, nil
}

// mqttAddress resolves the MQTT listener address. Port 0 becomes NATS's
// random port. A taken port fails here, at once and with a clear error
// (NATS itself would only report the server not ready after its
// timeout), or, with fallback, moves to a free loopback port.
func mqttAddress(listen string, fallback bool) (string, int, error) {
	host, port, err := splitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("mqtt listen %q: %w", listen, err)
	}
	if port == 0 {
		return host, server.RANDOM_PORT, nil
	}
	ln, err := net.Listen("tcp", listen)
	if err == nil {
		ln.Close()
		return host, port, nil
	}
	if !fallback {
		return "", 0, fmt.Errorf("mqtt listen %s: %w", listen, err)
	}
	slog.Warn("the MQTT port is taken: MQTT over TCP is served on a random loopback port instead (MQTT over WebSocket at /mqtt is unaffected); set mqtt-listen to a free address, or off",
		"mqtt_listen", listen, "err", err)
	return "127.0.0.1", server.RANDOM_PORT, nil
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func newBus(nc *nats.Conn, ns *server.Server) (*Bus, error) {
	b := &Bus{}
	if err := b.init(nc, ns); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Bus) init(nc *nats.Conn, ns *server.Server) error {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return err
	}
	b.NC, b.JS, b.ns = nc, js, ns
	return nil
}

// MQTTAddr is the embedded server's MQTT listener (host:port), if any.
func (b *Bus) MQTTAddr() string { return b.mqttAddr }

// WebSocketAddr is the embedded server's loopback WebSocket listener
// (host:port) that serves MQTT over WebSocket at /mqtt, if MQTT is on.
func (b *Bus) WebSocketAddr() string { return b.wsAddr }

// Embedded reports whether this process runs the NATS server.
func (b *Bus) Embedded() bool { return b.ns != nil }

// ClientURL is the embedded server's client URL, if it listens.
func (b *Bus) ClientURL() string {
	if b.ns == nil {
		return ""
	}
	return b.ns.ClientURL()
}

// Ready reports whether the connection is usable.
func (b *Bus) Ready() bool { return b.NC.IsConnected() }

// EnsureStream creates or updates a stream.
//
// Without its own Replicas a stream gets the bus's. In a cluster that is
// just starting, JetStream may not have a leader (or enough peers) yet:
// creation is retried until ctx ends or a minute has passed.
func (b *Bus) EnsureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = max(b.replicas, 1)
	}
	return retryJS(ctx, func(ctx context.Context) (jetstream.Stream, error) { return b.JS.CreateOrUpdateStream(ctx, cfg) })
}

// EnsureKeyValue creates or updates a KV bucket, with the bus's replicas
// unless it sets its own (see EnsureStream).
func (b *Bus) EnsureKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = max(b.replicas, 1)
	}
	return retryJS(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return b.JS.CreateOrUpdateKeyValue(ctx, cfg) })
}

// retryJS retries a JetStream administration call while the cluster has
// no meta leader or too few peers for the replicas asked.
func retryJS[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := f(actx)
		cancel()
		if err == nil || !transientJS(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func transientJS(err error) bool {
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeJetStreamNotEnabled, 10008 /* no suitable peers / insufficient resources */, 10023 /* insufficient resources */, 10074 /* no suitable peers */ :
			return true
		}
	}
	s := err.Error()
	return strings.Contains(s, "no suitable peers") || strings.Contains(s, "insufficient resources") || strings.Contains(s, "JetStream system temporarily unavailable")
}

// Close drains the connection (delivering what is in flight) and stops the
// embedded server.
func (b *Bus) Close() {
	if err := b.NC.Drain(); err != nil {
		b.NC.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for !b.NC.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", 0, errors.New("want host:port")
	}
	var port int
	if _, err := fmt.Sscanf(s[i+1:], "%d", &port); err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("bad port")
	}
	return s[:i], port, nil
}
