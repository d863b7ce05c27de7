package flow_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// BenchmarkFlow3Actions: events injected into a channel pass through
// enrich (republish + transform) → filter (condition) → deliver (webhook
// to a local sink); ns/op is per event, from injection to delivery, with
// every step durably recorded.
func BenchmarkFlow3Actions(b *testing.B) {
	var got atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer sink.Close()
	ts := servertest.Start(b)
	res := ts.Root.Do("PUT", "/v1/flux/apps/bench", `
name: bench
channels:
  in:
    actions:
      - name: enrich
        republish: {}
        output: {channel: check, transform: {i: "${payload.i}", celsius: "${payload.t}", fahrenheit: "${payload.t * 9 / 5 + 32}"}}
  check:
    actions:
      - name: filter
        condition: payload.celsius > -100
        republish: {}
        output: {channel: out}
  out:
    actions:
      - name: deliver
        webhook: {url: "`+sink.URL+`/in"}
`, "Content-Type", "application/yaml")
	if res.Status != 201 {
		b.Fatalf("%d %s", res.Status, res.Body)
	}
	ctx := b.Context()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ts.Flow.Inject(ctx, ts.OperatorID, "bench", "in", "api", map[string]any{"i": i, "t": 21.5}, nil); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for got.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", got.Load(), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
