package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nagare-iot/nagare/internal/testaddr"
)

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
	addr := testaddr.Loopback(t)
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

// Three embedded servers form a cluster over routes (authenticated with the
// token): streams and buckets get 3 replicas, and a node going away loses
// nothing that was acknowledged.
func TestEmbeddedCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addrs := []string{testaddr.Loopback(t), testaddr.Loopback(t), testaddr.Loopback(t)}
	var routes []string
	for _, a := range addrs {
		routes = append(routes, "nats-route://"+a)
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	open := func(i int) (*Bus, error) {
		return Open(ctx, Config{DataDir: dirs[i], Name: fmt.Sprintf("n%d", i+1), ClusterListen: addrs[i], Routes: routes,
			ClusterName: "test", Token: "route-secret", Replicas: 3})
	}
	// Started together, as nodes are.
	nodes := make([]*Bus, 3)
	errs := make(chan error, 3)
	for i := range nodes {
		go func() {
			var err error
			nodes[i], err = open(i)
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, b := range nodes {
			if b != nil {
				b.Close()
			}
		}
	}()
	st, err := nodes[0].EnsureStream(ctx, jetstream.StreamConfig{Name: "C", Subjects: []string{"c.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if st.CachedInfo().Config.Replicas != 3 {
		t.Errorf("replicas %d", st.CachedInfo().Config.Replicas)
	}
	kv, err := nodes[1].EnsureKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "CKV"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for i, b := range nodes {
		if _, err := b.JS.Publish(ctx, "c.x", []byte{byte(i)}); err != nil {
			t.Fatalf("publish on node %d: %v", i+1, err)
		}
	}
	// Node 3 goes away; the other two still take and keep writes.
	nodes[2].Close()
	nodes[2] = nil
	var pubErr error
	for start := time.Now(); time.Since(start) < time.Minute; {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, pubErr = nodes[0].JS.Publish(actx, "c.x", []byte{9})
		acancel()
		if pubErr == nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // a new stream leader may be elected
	}
	if pubErr != nil {
		t.Fatalf("publish with a node down: %v", pubErr)
	}
	info, err := nodes[1].JS.Stream(ctx, "C")
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 4 {
		t.Errorf("%d messages; want 4", n)
	}
	// The bucket's leader may have been node 3: a new one is elected.
	var kerr error
	for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(200 * time.Millisecond) {
		var e jetstream.KeyValueEntry
		if e, kerr = kv.Get(ctx, "k"); kerr == nil {
			if string(e.Value()) != "v" {
				t.Errorf("kv after a node left: %q", e.Value())
			}
			break
		}
	}
	if kerr != nil {
		t.Errorf("kv after a node left: %v", kerr)
	}
	// It comes back and catches up.
	if nodes[2], err = open(2); err != nil {
		t.Fatal(err)
	}
	// Each look has its own time limit: a node rejoining answers nothing
	// until it is back in the meta group.
	for start := time.Now(); ; {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		si, err := nodes[2].JS.Stream(actx, "C")
		acancel()
		if err == nil && si.CachedInfo().State.Msgs == 4 {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("node 3 did not catch up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
