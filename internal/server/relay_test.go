package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The relay scenario both multi-node tests run: devices publish to several
// nodes while a flow forwards every publish, and a timer's beats, to an
// idempotent sink.

// relayApp forwards the device's data as seq-<n> and beats every interval
// as tick-<timestamp>.
func relayApp(deviceID, sinkURL string, interval time.Duration) string {
	return fmt.Sprintf(`name: relay
channels:
  data:
    sources: [{device: {deviceId: %s}}]
    actions:
      - name: forward
        webhook: {url: "%s/data", method: POST, body: {key: "seq-${payload.seq}"}}
  tick:
    sources: [{timer: {interval: %s}}]
    actions:
      - name: beat
        webhook: {url: "%s/tick", method: POST, body: {key: "tick-${context.timestamp}"}}
`, deviceID, sinkURL, interval, sinkURL)
}

// relaySink counts each key it is sent, and every delivery.
type relaySink struct {
	*httptest.Server
	mu         sync.Mutex
	seen       map[string]int
	deliveries int
}

func newRelaySink(t *testing.T) *relaySink {
	s := &relaySink{seen: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Key string }
		_ = json.NewDecoder(r.Body).Decode(&b)
		s.mu.Lock()
		s.seen[b.Key]++
		s.deliveries++
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

// waitDelivered waits up to a minute for every accepted publish to reach
// the sink and returns how many never did.
func (s *relaySink) waitDelivered(accepted map[int64]bool) int {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(300 * time.Millisecond) {
		s.mu.Lock()
		missing := 0
		for seq := range accepted {
			if s.seen[fmt.Sprintf("seq-%d", seq)] == 0 {
				missing++
			}
		}
		s.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			return missing
		}
	}
}

// ticks returns the timer periods delivered, those delivered more than
// once, and the deliveries of any key beyond its first.
func (s *relaySink) ticks() (periods, twice, extra int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range s.seen {
		if strings.HasPrefix(k, "tick-") {
			periods++
			if n > 1 {
				twice++
			}
		}
	}
	return periods, twice, s.deliveries - len(s.seen)
}

// publisher publishes {"seq":n} as a device from several workers, each
// publish to the node url(n) names, until finish.
type publisher struct {
	accepted sync.Map
	next     atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startPublishing(workers int, pause time.Duration, url func(seq int64) string, deviceID, secret string) *publisher {
	p := &publisher{stop: make(chan struct{})}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			cl := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-p.stop:
					return
				default:
				}
				seq := p.next.Add(1)
				req, _ := http.NewRequest("POST", url(seq)+"/v1/devices/"+deviceID+"/publish", strings.NewReader(fmt.Sprintf(`{"seq":%d}`, seq)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Device-Secret", secret)
				if res, err := cl.Do(req); err == nil {
					if res.StatusCode == 201 {
						p.accepted.Store(seq, true)
					}
					res.Body.Close()
				}
				time.Sleep(pause)
			}
		}()
	}
	return p
}

// finish stops the workers and returns the publishes accepted and tried.
func (p *publisher) finish() (accepted map[int64]bool, tried int64) {
	close(p.stop)
	p.wg.Wait()
	accepted = map[int64]bool{}
	p.accepted.Range(func(k, _ any) bool { accepted[k.(int64)] = true; return true })
	return accepted, p.next.Load()
}

// storedSeqs reads a device's entries page by page through get (an API
// GET decoding into out) and counts each seq; it waits up to 30 s for at
// least want of them.
func storedSeqs(get func(path string, out any), deviceID string, want int) map[int64]int {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		got := map[int64]int{}
		for from := int64(0); ; {
			var page []struct {
				Time    int64
				Content string
			}
			get(fmt.Sprintf("/v1/data/Device/%s?limit=1000&sort=asc&from=%d", deviceID, from), &page)
			for _, e := range page {
				var v struct{ Seq int64 }
				_ = json.Unmarshal([]byte(e.Content), &v)
				got[v.Seq]++
				from = e.Time + 1
			}
			if len(page) < 1000 {
				break
			}
		}
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
	}
}
