package harvest_test

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// BenchmarkPublish measures device publishes end to end: HTTP, device
// secret, group lookup, group commit on the real database (SQLite with
// synchronous=FULL, or PostgreSQL with NAGARE_TEST_POSTGRES); the relay
// publishes to the HARVEST stream meanwhile. 16 devices, 16 clients per
// CPU. Reports publishes/s, latency percentiles, entries per write
// transaction, and how long after the last 201 the outbox was empty.
func BenchmarkPublish(b *testing.B) {
	ts := servertest.Start(b)
	const devices = 16
	gid := newGroup(b, ts.Root, true)
	devs := make([]device, devices)
	for i := range devs {
		devs[i] = newDevice(b, ts.Root, gid)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	payload := []byte(`{"temperature":21.5,"humidity":48,"battery":3.1}`)

	var (
		mu       sync.Mutex
		lat      []time.Duration
		next     atomic.Int64
		failures atomic.Int64
	)
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		d := devs[next.Add(1)%devices]
		url := ts.URL + "/v1/devices/" + d.ID + "/publish"
		local := make([]time.Duration, 0, 256)
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(payload))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Device-Secret", d.Secret)
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				failures.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			local = append(local, time.Since(t0))
			if resp.StatusCode != http.StatusCreated {
				failures.Add(1)
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	end := time.Now()
	for outbox := -1; outbox != 0; time.Sleep(time.Millisecond) {
		if err := ts.DB.QueryRow(`SELECT COUNT(*) FROM harvest_outbox`).Scan(&outbox); err != nil {
			b.Fatal(err)
		}
		if time.Since(end) > time.Minute {
			b.Fatalf("the outbox still holds %d rows", outbox)
		}
	}
	b.ReportMetric(float64(time.Since(end))/float64(time.Millisecond), "relay-lag-ms")
	// Spare connections the transport dialled but never used would hold
	// up the server's graceful stop.
	client.CloseIdleConnections()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of %d publishes failed", n, b.N)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "publishes/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if mfs, err := ts.Registry.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "nagare_harvest_batch_entries" {
				h := mf.GetMetric()[0].GetHistogram()
				b.ReportMetric(h.GetSampleSum()/float64(max(1, h.GetSampleCount())), "entries/commit")
			}
		}
	}
}
