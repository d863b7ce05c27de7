package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	cases := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.5:4000", nil, "203.0.113.5"},
		// A client's own X-Forwarded-For is not believed.
		{"203.0.113.5:4000", []string{"10.0.0.1"}, "203.0.113.5"},
		// A proxy on the same machine: the address it appended (the last).
		{"127.0.0.1:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"127.0.0.1:5000", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"[::1]:5000", []string{"spoofed", "2001:db8::1"}, "2001:db8::1"},
		{"127.0.0.1:5000", []string{"not-an-ip"}, "127.0.0.1"},
		{"127.0.0.1:5000", nil, "127.0.0.1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ClientAddr(r); got != c.want {
			t.Errorf("%s %v: %q, want %q", c.remote, c.xff, got, c.want)
		}
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(2, 3) // 2/s, 3 at once
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	if ok, wait := l.Allow("a"); ok || wait != 500*time.Millisecond {
		t.Fatalf("4th at once: %v %s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another client refused")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refused after a token came back")
	}
	// Idle buckets are forgotten once full again.
	now = now.Add(time.Minute)
	l.Allow("c")
	if _, ok := l.buckets["a"]; ok {
		t.Fatal("idle bucket kept")
	}

	// Over HTTP: 429 with Retry-After and the error shape.
	l = NewLimiter(1, 1)
	h := l.Wrap(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	for i, want := range []int{204, 429} {
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest("GET", "/", nil))
		if w.Code != want {
			t.Fatalf("request %d: %d", i, w.Code)
		}
		if want == 429 && (w.Header().Get("Retry-After") != "1" || !json429(w.Body.String())) {
			t.Fatalf("429: Retry-After %q body %s", w.Header().Get("Retry-After"), w.Body)
		}
	}
}

func json429(body string) bool {
	return strings.Contains(body, `"code":"LIM0001"`) && strings.Contains(body, `"message":"too many requests`)
}
