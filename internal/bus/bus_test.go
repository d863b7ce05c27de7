package bus

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A message acknowledged by the embedded server is still there after the
// server is closed and started again on the same data directory.
func TestEmbeddedDurableAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	b, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Embedded() || !b.Ready() || b.ClientURL() == "" {
		t.Fatalf("embedded=%v ready=%v url=%q", b.Embedded(), b.Ready(), b.ClientURL())
	}
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := b.JS.Publish(ctx, "t.x", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	b, err = Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err := b.JS.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 10 {
		t.Fatalf("after restart: %+v %v", info, err)
	}
}

// With a URL nagare connects to an external server instead of embedding one.
func TestExternalURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := freeAddr(t)
	server, err := Open(ctx, Config{DataDir: t.TempDir(), Listen: addr, Name: "ext"})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	client, err := Open(ctx, Config{URL: "nats://" + addr, Name: "client"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if client.Embedded() || client.ClientURL() != "" {
		t.Fatal("external client claims to embed a server")
	}
	if _, err := client.EnsureStream(ctx, jetstream.StreamConfig{Name: "E", Subjects: []string{"e.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.JS.Publish(ctx, "e.1", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	// The embedded side sees what the external client published.
	s, err := server.JS.Stream(ctx, "E")
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 1 {
		t.Fatalf("msgs %d", info.State.Msgs)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Config{URL: "nats://127.0.0.1:1"}); err == nil {
		t.Fatal("connected to a closed port")
	}
	if _, err := Open(ctx, Config{DataDir: t.TempDir(), Listen: "nonsense"}); err == nil {
		t.Fatal("bad listen address accepted")
	}
}
