package bus

import (
	"context"
	"testing"
	"time"
)

// One holder at a time; renewal keeps it; a holder that stops renewing
// loses it after the TTL; release frees it at once.
func TestLeases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ttl := time.Second
	a, err := b.OpenLeases(ctx, "TEST_LEASES", "node-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	o, err := b.OpenLeases(ctx, "TEST_LEASES", "node-b", ttl)
	if err != nil {
		t.Fatal(err)
	}
	must := func(l *Leases, want bool) {
		t.Helper()
		got, err := l.Acquire(ctx, "cam")
		if err != nil || got != want {
			t.Fatalf("%s: acquire %v %v; want %v", l.node, got, err, want)
		}
	}
	must(a, true)
	must(o, false)
	for i := 0; i < 4; i++ { // renewed past the TTL
		time.Sleep(ttl / 2)
		must(a, true)
		must(o, false)
	}
	if h, _ := o.Holder(ctx, "cam"); h != "node-a" {
		t.Errorf("holder %q", h)
	}
	// a stops renewing (a crash): b takes over once the TTL has passed.
	deadline := time.Now().Add(5 * ttl)
	for {
		if ok, err := o.Acquire(ctx, "cam"); err != nil {
			t.Fatal(err)
		} else if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(a, false)
	if err := o.Release(ctx, "cam"); err != nil {
		t.Fatal(err)
	}
	must(a, true)
	// Racing for a free key: exactly one wins.
	wins := make(chan bool, 2)
	for _, l := range []*Leases{a, o} {
		go func() { ok, _ := l.Acquire(ctx, "race"); wins <- ok }()
	}
	if w1, w2 := <-wins, <-wins; w1 == w2 {
		t.Errorf("race: %v %v; want one winner", w1, w2)
	}
}
