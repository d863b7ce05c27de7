package auth

import (
	"strings"
	"sync"
	"time"
)

// Login throttling: guessing passwords (or auth keys) through POST /v1/auth
// gets slower with every miss, per account and per client address.
const (
	// freeFailures failed logins of one account cost nothing; each one
	// after them doubles the wait before the next try, from 1 s up to
	// maxAccountWait. A successful login clears the count.
	freeFailures   = 5
	maxAccountWait = 15 * time.Minute
	// addressFailures failed logins from one client address within
	// addressWindow close that address for the rest of the window,
	// whatever account it tries.
	addressFailures = 30
	addressWindow   = 10 * time.Minute
	// maxTracked bounds the accounts and addresses remembered; past it the
	// oldest are forgotten first.
	maxTracked = 100_000
)

type failures struct {
	n           int
	first, last time.Time
}

// loginThrottle counts failed logins in memory, per node: a restart
// forgets them, and several nodes each count their own.
type loginThrottle struct {
	mu       sync.Mutex
	accounts map[string]*failures
	addrs    map[string]*failures
}

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{accounts: map[string]*failures{}, addrs: map[string]*failures{}}
}

// accountKey names the account a login request is for.
func (req LoginRequest) accountKey() string {
	switch {
	case req.AuthKeyID != "":
		return "key:" + req.AuthKeyID
	case req.OperatorID != "" || req.UserName != "":
		return "user:" + req.OperatorID + "/" + req.UserName
	default:
		return "email:" + strings.ToLower(req.Email)
	}
}

// wait is how long account and addr must wait before the next try (0:
// they may try now).
func (t *loginThrottle) wait(now time.Time, account, addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var d time.Duration
	if f := t.accounts[account]; f != nil && f.n >= freeFailures {
		backoff := min(time.Second<<min(f.n-freeFailures, 20), maxAccountWait)
		d = f.last.Add(backoff).Sub(now)
	}
	if f := t.addrs[addr]; f != nil && f.n >= addressFailures && now.Sub(f.first) < addressWindow {
		d = max(d, f.first.Add(addressWindow).Sub(now))
	}
	return max(d, 0)
}

// failed counts a failed login. An account's count starts again only
// after a quiet spell longer than the longest wait (so waiting out the
// backoff does not reset it); an address's after its window.
func (t *loginThrottle) failed(now time.Time, account, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := entry(t.accounts, account, now); now.Sub(f.last) > maxAccountWait+time.Minute {
		f.n = 0
	}
	if f := entry(t.addrs, addr, now); now.Sub(f.first) > addressWindow {
		f.n, f.first = 0, now
	}
	t.accounts[account].n++
	t.accounts[account].last = now
	t.addrs[addr].n++
	t.addrs[addr].last = now
}

// succeeded clears an account's failures.
func (t *loginThrottle) succeeded(account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.accounts, account)
}

// entry returns m[key], adding it if missing. A full map first forgets
// counts older than any wait, then, if need be, arbitrary ones down to
// half: memory stays bounded whatever names are tried.
func entry(m map[string]*failures, key string, now time.Time) *failures {
	if f := m[key]; f != nil {
		return f
	}
	if len(m) >= maxTracked {
		for k, f := range m {
			if now.Sub(f.last) > maxAccountWait+time.Minute {
				delete(m, k)
			}
		}
		for k := range m {
			if len(m) <= maxTracked/2 {
				break
			}
			delete(m, k)
		}
	}
	f := &failures{first: now, last: now}
	m[key] = f
	return f
}
