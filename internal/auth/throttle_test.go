package auth

import (
	"testing"
	"time"
)

func TestLoginThrottle(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		at       float64 // seconds after t0
		account  string
		addr     string
		fail     bool // a failed try (only when allowed)
		ok       bool // a successful try (only when allowed)
		wantWait time.Duration
	}
	steps := []step{
		// Five misses are free.
		{at: 0, account: "a", addr: "1.1.1.1", fail: true},
		{at: 0.1, account: "a", addr: "1.1.1.1", fail: true},
		{at: 0.2, account: "a", addr: "1.1.1.1", fail: true},
		{at: 0.3, account: "a", addr: "1.1.1.1", fail: true},
		{at: 0.4, account: "a", addr: "1.1.1.1", fail: true},
		// Then 1 s after the last miss, then 2 s, 4 s …
		{at: 0.5, account: "a", addr: "2.2.2.2", wantWait: 900 * time.Millisecond},
		{at: 1.4, account: "a", addr: "2.2.2.2", fail: true},
		{at: 2.4, account: "a", addr: "2.2.2.2", wantWait: time.Second},
		{at: 3.4, account: "a", addr: "2.2.2.2", fail: true},
		{at: 5.4, account: "a", addr: "2.2.2.2", wantWait: 2 * time.Second},
		// Other accounts are not affected.
		{at: 5.4, account: "b", addr: "2.2.2.2"},
		// Waiting it out and succeeding clears the account.
		{at: 7.4, account: "a", addr: "2.2.2.2", ok: true},
		{at: 7.5, account: "a", addr: "2.2.2.2", fail: true},
		{at: 7.6, account: "a", addr: "2.2.2.2"},
	}
	th := newLoginThrottle()
	for i, s := range steps {
		got := th.wait(at(s.at), s.account, s.addr)
		if got != s.wantWait {
			t.Fatalf("step %d (%+v): wait %s, want %s", i, s, got, s.wantWait)
		}
		if got == 0 && s.fail {
			th.failed(at(s.at), s.account, s.addr)
		}
		if got == 0 && s.ok {
			th.succeeded(s.account)
		}
	}

	// One address trying many accounts: closed after addressFailures
	// misses until its window has passed.
	th = newLoginThrottle()
	for i := range addressFailures {
		if w := th.wait(t0, string(rune('A'+i)), "3.3.3.3"); w != 0 {
			t.Fatalf("try %d: wait %s", i, w)
		}
		th.failed(t0, string(rune('A'+i)), "3.3.3.3")
	}
	if w := th.wait(t0.Add(time.Minute), "fresh", "3.3.3.3"); w != addressWindow-time.Minute {
		t.Fatalf("address after %d misses: wait %s", addressFailures, w)
	}
	if w := th.wait(t0.Add(time.Minute), "fresh", "4.4.4.4"); w != 0 {
		t.Fatalf("another address: wait %s", w)
	}
	if w := th.wait(t0.Add(addressWindow), "fresh", "3.3.3.3"); w != 0 {
		t.Fatalf("after the window: wait %s", w)
	}

	// Memory stays bounded whatever names are tried.
	th = newLoginThrottle()
	for i := range maxTracked + 10 {
		th.failed(t0, "acct-"+string(rune(i)), "5.5.5.5")
	}
	if n := len(th.accounts); n > maxTracked {
		t.Fatalf("%d accounts tracked", n)
	}
}
