// Package bus is nagare's only door to NATS: it embeds a nats-server with
// JetStream on disk in the data directory (single node, sync writes), or
// connects to an external NATS cluster by URL. The rest of the code sees a
// connection and JetStream context; nothing else imports nats-server.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
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
}

// Bus is an open connection to NATS with JetStream.
type Bus struct {
	NC *nats.Conn
	JS jetstream.JetStream
	ns *server.Server
}

// Open starts the embedded server or connects to the external one.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	name := cfg.Name
	if name == "" {
		name = "nagare"
	}
	if cfg.URL != "" {
		nc, err := nats.Connect(cfg.URL, nats.Name(name), nats.MaxReconnects(-1),
			nats.ReconnectWait(time.Second), nats.Timeout(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("nats %s: %w", cfg.URL, err)
		}
		return newBus(nc, nil)
	}
	opts := &server.Options{
		ServerName:   name,
		JetStream:    true,
		StoreDir:     filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways:   cfg.SyncInterval <= 0,
		SyncInterval: cfg.SyncInterval,
		NoSigs:       true,
		NoLog:        true,
		DontListen:   cfg.Listen == "",
	}
	if cfg.Listen != "" {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen %q: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, port
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
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name(name))
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats connect: %w", err)
	}
	b, err := newBus(nc, ns)
	if err != nil {
		ns.Shutdown()
		return nil, err
	}
	slog.Info("embedded NATS started", "store", opts.StoreDir, "client_listen", cfg.Listen)
	return b, nil
}

func newBus(nc *nats.Conn, ns *server.Server) (*Bus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Bus{NC: nc, JS: js, ns: ns}, nil
}

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
func (b *Bus) EnsureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return b.JS.CreateOrUpdateStream(ctx, cfg)
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
