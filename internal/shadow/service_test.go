package shadow

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nagare-iot/nagare/internal/bus"
)

const testOp = "OP0000000001"

func openBus(t *testing.T) *bus.Bus {
	t.Helper()
	b, err := bus.Open(t.Context(), bus.Config{DataDir: t.TempDir(), Name: "shadowtest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// node starts a shadow service on b, as one node of a cluster would.
func node(t *testing.T, b *bus.Bus, opts Options) *Service {
	t.Helper()
	if opts.OperatorID == "" {
		opts.OperatorID = testOp
	}
	s, err := New(t.Context(), b, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type accepted struct {
	State       map[string]any
	Version     int64
	ClientToken string
	Code        int
	Message     string
}

func decode(t *testing.T, b []byte) accepted {
	t.Helper()
	var a accepted
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return a
}

// Two nodes write one shadow from many goroutines at once: every update
// is applied exactly once (the compare-and-set loop retries the losers),
// and versions are unique and increase.
func TestConcurrentUpdatesTwoNodes(t *testing.T) {
	b := openBus(t)
	nodes := []*Service{node(t, b, Options{}), node(t, b, Options{})}
	const writers, each = 8, 25
	versions := make([][]int64, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				body := fmt.Sprintf(`{"state":{"reported":{"g%d":%d}}}`, g, j)
				out, err := nodes[(g+j)%2].Update(t.Context(), testOp, "counter", "", []byte(body))
				if err != nil {
					t.Errorf("writer %d: %v", g, err)
					return
				}
				versions[g] = append(versions[g], decode(t, out).Version)
			}
		}()
	}
	wg.Wait()
	var all []int64
	for g, vs := range versions {
		for i := 1; i < len(vs); i++ {
			if vs[i] <= vs[i-1] {
				t.Errorf("writer %d saw versions go %d → %d", g, vs[i-1], vs[i])
			}
		}
		all = append(all, vs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for i, v := range all {
		if v != int64(i+1) {
			t.Fatalf("versions are not 1..%d exactly once: %v", writers*each, all)
		}
	}
	out, err := nodes[0].Get(t.Context(), testOp, "counter", "")
	if err != nil {
		t.Fatal(err)
	}
	doc := decode(t, out)
	rep := doc.State["reported"].(map[string]any)
	for g := range writers {
		if rep[fmt.Sprintf("g%d", g)] != float64(each-1) {
			t.Errorf("lost update: g%d = %v", g, rep[fmt.Sprintf("g%d", g)])
		}
	}
	if doc.Version != writers*each {
		t.Errorf("version %d; want %d", doc.Version, writers*each)
	}
}

// Clients doing read → modify → write with version get 409 when they lose
// a race, retry, and no increment is lost.
func TestOptimisticLocking(t *testing.T) {
	b := openBus(t)
	s := node(t, b, Options{})
	if _, err := s.Update(t.Context(), testOp, "ctr", "", []byte(`{"state":{"reported":{"n":0}}}`)); err != nil {
		t.Fatal(err)
	}
	const clients, each = 6, 10
	var conflicts atomic.Int32
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < each; {
				out, err := s.Get(t.Context(), testOp, "ctr", "")
				if err != nil {
					t.Error(err)
					return
				}
				doc := decode(t, out)
				n := doc.State["reported"].(map[string]any)["n"].(float64)
				body := fmt.Sprintf(`{"state":{"reported":{"n":%d}},"version":%d}`, int(n)+1, doc.Version)
				_, err = s.Update(t.Context(), testOp, "ctr", "", []byte(body))
				var e *Error
				switch {
				case err == nil:
					done++
				case asError(err, &e) && e.Code == 409 && e.Message == "Version conflict":
					conflicts.Add(1)
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	out, _ := s.Get(t.Context(), testOp, "ctr", "")
	doc := decode(t, out)
	if n := doc.State["reported"].(map[string]any)["n"]; n != float64(clients*each) {
		t.Fatalf("n = %v; want %d (%d conflicts)", n, clients*each, conflicts.Load())
	}
	t.Logf("%d version conflicts", conflicts.Load())
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}

// Requests on the topics reach exactly one node of the queue group, and
// a NATS request also gets its answer on its reply inbox.
func TestTopicQueueGroup(t *testing.T) {
	b := openBus(t)
	node(t, b, Options{})
	node(t, b, Options{})
	var acceptedMsgs atomic.Int32
	sub, err := b.NC.Subscribe("$aws.things.q.shadow.update.accepted", func(*nats.Msg) { acceptedMsgs.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	const clients, each = 5, 20
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				m, err := b.NC.Request("$aws.things.q.shadow.update", fmt.Appendf(nil, `{"state":{"reported":{"c%d":%d}}}`, g, j), 10*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				v := decode(t, m.Data).Version
				mu.Lock()
				if seen[v] {
					t.Errorf("version %d twice", v)
				}
				seen[v] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for acceptedMsgs.Load() < clients*each && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive now
	if n := acceptedMsgs.Load(); n != clients*each || len(seen) != clients*each {
		t.Fatalf("%d accepted messages, %d versions; want %d each", n, len(seen), clients*each)
	}
}

// A deleted shadow keeps its numbering for TombstoneTTL; after that (and
// a sweep) it starts again at 1.
func TestDeleteAndTombstone(t *testing.T) {
	b := openBus(t)
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	s := node(t, b, Options{Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	ctx := t.Context()
	for range 2 {
		if _, err := s.Update(ctx, testOp, "t1", "n", []byte(`{"state":{"desired":{"a":1}}}`)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := s.Delete(ctx, testOp, "t1", "n")
	if err != nil || decode(t, out).Version != 2 {
		t.Fatalf("delete: %s %v", out, err)
	}
	for _, call := range []func() error{
		func() error { _, err := s.Get(ctx, testOp, "t1", "n"); return err },
		func() error { _, err := s.Delete(ctx, testOp, "t1", "n"); return err },
	} {
		if err := call(); err == nil || err.(*Error).Code != 404 || err.(*Error).Message != "No shadow exists with name: 'n'" {
			t.Fatalf("after delete: %v", err)
		}
	}
	if names, _ := s.ListNamedShadows(ctx, testOp, "t1"); len(names) != 0 {
		t.Fatalf("deleted shadow listed: %v", names)
	}
	// A version check against the remembered version.
	if _, err := s.Update(ctx, testOp, "t1", "n", []byte(`{"state":{"desired":{"a":1}},"version":0}`)); err == nil || err.(*Error).Code != 409 {
		t.Fatalf("version 0 after delete of version 2: %v", err)
	}
	out, err = s.Update(ctx, testOp, "t1", "n", []byte(`{"state":{"reported":{"b":1}},"version":2}`))
	if err != nil || decode(t, out).Version != 3 {
		t.Fatalf("re-created within the TTL: %s %v", out, err)
	}
	got, _ := s.Get(ctx, testOp, "t1", "n")
	if doc := decode(t, got); doc.State["desired"] != nil {
		t.Fatalf("re-created shadow kept old state: %s", got)
	}
	s.Delete(ctx, testOp, "t1", "n")
	now.Add(int64((49 * time.Hour).Seconds()))
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	out, err = s.Update(ctx, testOp, "t1", "n", []byte(`{"state":{"reported":{"b":1}}}`))
	if err != nil || decode(t, out).Version != 1 {
		t.Fatalf("re-created after the TTL: %s %v", out, err)
	}
}

// Every change lands in the event stream once, with its operator and a
// message id.
func TestChangeFeed(t *testing.T) {
	b := openBus(t)
	s := node(t, b, Options{})
	ctx := t.Context()
	s.Update(WithHop(ctx, 3), testOp, "arn:x", "", []byte(`{"state":{"desired":{"on":true}},"clientToken":"ct"}`))
	s.Delete(ctx, testOp, "arn:x", "")
	cons, err := b.JS.OrderedConsumer(ctx, EventStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []jetstream.Msg
	for range 2 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, m)
	}
	if evs[0].Subject() != "shadow.changed."+testOp+".arn=3Ax.=" || evs[0].Headers().Get(OperatorHeader) != testOp ||
		evs[0].Headers().Get(HopHeader) != "3" || evs[0].Headers().Get(jetstream.MsgIDHeader) == "" {
		t.Fatalf("event 1: %s %v", evs[0].Subject(), evs[0].Headers())
	}
	var up, del Event
	json.Unmarshal(evs[0].Data(), &up)
	json.Unmarshal(evs[1].Data(), &del)
	if up.Type != EventUpdated || up.ThingName != "arn:x" || up.Current.Version != 1 || up.Previous.Version != 0 || up.ClientToken != "ct" || up.State["desired"] == nil {
		t.Errorf("update event: %s", evs[0].Data())
	}
	if del.Type != EventDeleted || del.Current != nil || del.Previous.Version != 1 {
		t.Errorf("delete event: %s", evs[1].Data())
	}
	if evs[1].Headers().Get(HopHeader) != "" {
		t.Errorf("a delete outside flows has a hop")
	}
}
