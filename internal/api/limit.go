package api

import (
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ClientAddr is the address a request comes from, for rate limits: the
// peer's IP, or, when the peer is a proxy on the same machine (loopback),
// the address that proxy appended to X-Forwarded-For. A header from any
// other peer is not trusted: a client could write anything in it.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if last := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(last) != nil {
				return last
			}
		}
	}
	return host
}

// Limiter is a token bucket per key (a client address): Rate requests a
// second on average, Burst at once. Buckets idle long enough to be full
// again are forgotten, so memory follows the number of active clients.
// Counts are per node.
type Limiter struct {
	Rate  float64
	Burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
	now     func() time.Time
	pruned  time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewLimiter returns a limiter of rate requests a second, burst at once.
func NewLimiter(rate, burst float64) *Limiter {
	return &Limiter{Rate: rate, Burst: burst, buckets: map[string]*bucket{}, now: time.Now}
}

// Allow takes a token for key; without one it says how long until the
// next.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	full := time.Duration(l.Burst / l.Rate * float64(time.Second))
	if now.Sub(l.pruned) > full {
		for k, b := range l.buckets {
			if now.Sub(b.at) > full {
				delete(l.buckets, k)
			}
		}
		l.pruned = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.Burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.Burst, b.tokens+now.Sub(b.at).Seconds()*l.Rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
}

// Wrap refuses requests over the client address's limit with 429, a
// Retry-After and {"code","message"}.
func (l *Limiter) Wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.Allow(ClientAddr(r)); !ok {
			WriteError(w, r, TooManyRequests(wait, "too many requests from this address; try again in %s", RetryAfter(wait)))
			return
		}
		h(w, r)
	}
}

// RetryAfter rounds a wait up to whole seconds (at least 1), as
// Retry-After says it.
func RetryAfter(wait time.Duration) time.Duration {
	return max(time.Second, time.Duration(math.Ceil(wait.Seconds()))*time.Second)
}

// TooManyRequests is a 429 whose Retry-After (set by WriteError) is wait.
func TooManyRequests(wait time.Duration, format string, args ...any) *Error {
	e := Errorf(http.StatusTooManyRequests, CodeTooManyRequests, format, args...)
	e.RetryAfter = RetryAfter(wait)
	return e
}
