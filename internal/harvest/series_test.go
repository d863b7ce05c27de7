package harvest_test

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/servertest"
)

func TestSeries(t *testing.T) {
	ts := servertest.Start(t)
	root := ts.Root
	put := func(at int64, body string) {
		t.Helper()
		if _, err := ts.Data.Put(t.Context(), ts.OperatorID, "Device", "d-1", "application/json", []byte(body), time.UnixMilli(at)); err != nil {
			t.Fatal(err)
		}
	}
	base := int64(1_700_000_000_000)
	// Bucket 0 (2 entries), nothing in bucket 1, bucket 2 (1 entry); text
	// and nested values are not points.
	put(base+100, `{"people": 2, "level": 0.5, "busy": true, "note": "x", "nested": {"a": 1}}`)
	put(base+900, `{"people": 4, "level": 1.5, "busy": false}`)
	put(base+2500, `{"people": 10}`)
	put(base+2600, `not json`)

	var res harvest.SeriesResult
	r := root.Do("GET", fmt.Sprintf("/v1/data/Device/d-1/series?keys=people,busy,note&from=%d&to=%d&buckets=3", base, base+3000), nil)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	r.JSON(&res)
	if res.BucketMS != 1000 || len(res.Series) != 3 {
		t.Fatalf("%+v", res)
	}
	people := res.Series[0].Buckets
	if len(people) != 2 || people[0].Time != base || people[0].Avg != 3 || people[0].Min != 2 || people[0].Max != 4 || people[0].Count != 2 ||
		people[1].Time != base+2000 || people[1].Avg != 10 {
		t.Errorf("people buckets (the empty middle bucket must be absent): %+v", people)
	}
	if busy := res.Series[1].Buckets; len(busy) != 1 || busy[0].Avg != 0.5 {
		t.Errorf("busy: %+v", busy)
	}
	if note := res.Series[2].Buckets; len(note) != 0 {
		t.Errorf("text is not a series: %+v", note)
	}

	// Deleting an entry removes its points.
	if r := root.Do("DELETE", fmt.Sprintf("/v1/data/Device/d-1/%d", base+2500), nil); r.Status != 204 {
		t.Fatalf("delete: %d", r.Status)
	}
	root.Do("GET", fmt.Sprintf("/v1/data/Device/d-1/series?keys=people&from=%d&to=%d&buckets=3", base, base+3000), nil).JSON(&res)
	if len(res.Series[0].Buckets) != 1 {
		t.Errorf("after delete: %+v", res.Series[0].Buckets)
	}

	for _, q := range []string{"", "?keys=people&from=10&to=5", "?keys=people&buckets=0", "?keys=people&buckets=99999"} {
		if r := root.Do("GET", "/v1/data/Device/d-1/series"+q, nil); r.Status != 400 {
			t.Errorf("%q: %d", q, r.Status)
		}
	}

	// Entries stored before the index existed are indexed once, at start.
	if _, err := ts.DB.ExecContext(t.Context(), `DELETE FROM data_rollups`); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.DB.ExecContext(t.Context(), `DELETE FROM meta WHERE key = 'data_rollups_backfilled'`); err != nil {
		t.Fatal(err)
	}
	ts.Restart()
	root = ts.Root
	root.Do("GET", fmt.Sprintf("/v1/data/Device/d-1/series?keys=people&from=%d&to=%d&buckets=1", base, base+60_000), nil).JSON(&res)
	if b := res.Series[0].Buckets; len(b) != 1 || b[0].Count != 2 || res.BucketMS != 60_000 {
		t.Errorf("after backfill (rollups): %+v", res)
	}
}

// BenchmarkSeries1M: one key with 1 million stored points, aggregated into
// 1,000 buckets (the panel budget: well under a second).
func BenchmarkSeries1M(b *testing.B) {
	ts := servertest.Start(b)
	const n = 1_000_000
	base := int64(1_700_000_000_000)
	// One value per second for ~11.6 days, rolled up per minute as the
	// writer does, generated in SQL.
	if _, err := ts.DB.ExecContext(b.Context(), `INSERT INTO data_rollups (resource_type, resource_id, key, start, sum, count, min, max)
		WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < $1),
		v(t, val) AS (SELECT CAST($2 AS BIGINT) + x * 1000, x % 97 FROM c)
		SELECT 'Device', 'd-big', 'people', t - t % 60000, SUM(val), COUNT(*), MIN(val), MAX(val) FROM v GROUP BY t - t % 60000`, n-1, base); err != nil {
		b.Fatal(err)
	}
	if _, err := ts.DB.ExecContext(b.Context(), `INSERT INTO data_resources (operator_id, resource_type, resource_id, last_modified, attribute_names)
		VALUES ($1, 'Device', 'd-big', $2, '["people"]')`, ts.OperatorID, base+n*1000); err != nil {
		b.Fatal(err)
	}
	check := func(res *harvest.SeriesResult) {
		// 1,000,000 s in 1,000 buckets: 1,000 s each, rounded up to whole
		// minutes (1,020 s), so a few buckets fewer.
		if got := len(res.Series[0].Buckets); got < 900 || got > 1000 {
			b.Fatalf("%d buckets", got)
		}
		var sum int64
		for _, bk := range res.Series[0].Buckets {
			sum += bk.Count
		}
		if sum != n || math.IsNaN(res.Series[0].Buckets[0].Avg) {
			b.Fatalf("counted %d points", sum)
		}
	}
	// query: the store's work; http: what a dashboard panel waits for
	// (GET …/series over loopback, authenticated, JSON encoded and decoded).
	b.Run("query", func(b *testing.B) {
		for b.Loop() {
			res, err := ts.Data.QuerySeries(b.Context(), ts.OperatorID, "Device", "d-big", []string{"people"}, base, base+n*1000, 1000)
			if err != nil {
				b.Fatal(err)
			}
			check(res)
		}
	})
	b.Run("http", func(b *testing.B) {
		path := fmt.Sprintf("/v1/data/Device/d-big/series?keys=people&from=%d&to=%d&buckets=1000", base, base+n*1000)
		for b.Loop() {
			r := ts.Root.Do("GET", path, nil)
			if r.Status != 200 {
				b.Fatalf("%d %s", r.Status, r.Body)
			}
			var res harvest.SeriesResult
			r.JSON(&res)
			check(&res)
		}
	})
}

// Long ranges read per-minute rollups; deleting an entry corrects them.
func TestSeriesRollups(t *testing.T) {
	ts := servertest.Start(t)
	base := int64(1_700_000_040_000) // a whole minute
	for i := int64(0); i < 10; i++ { // one entry every 30 s for 5 minutes
		if _, err := ts.Data.Put(t.Context(), ts.OperatorID, "Device", "d-2", "application/json",
			[]byte(fmt.Sprintf(`{"v": %d}`, i)), time.UnixMilli(base+i*30_000)); err != nil {
			t.Fatal(err)
		}
	}
	query := func() []harvest.Bucket {
		var res harvest.SeriesResult
		r := ts.Root.Do("GET", fmt.Sprintf("/v1/data/Device/d-2/series?keys=v&from=%d&to=%d&buckets=2", base+5_000, base+300_000), nil)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		r.JSON(&res)
		if res.From != base || res.BucketMS != 180_000 {
			t.Fatalf("from %d bucket %d: rollup buckets start and end on whole minutes", res.From, res.BucketMS)
		}
		return res.Series[0].Buckets
	}
	// Minutes 0-2 (v 0..5) and 3-4 (v 6..9).
	b := query()
	if len(b) != 2 || b[0].Count != 6 || b[0].Avg != 2.5 || b[0].Max != 5 || b[1].Count != 4 || b[1].Min != 6 || b[1].Avg != 7.5 {
		t.Fatalf("buckets: %+v", b)
	}
	if r := ts.Root.Do("DELETE", fmt.Sprintf("/v1/data/Device/d-2/%d", base+5*30_000), nil); r.Status != 204 {
		t.Fatalf("delete: %d", r.Status)
	}
	if b := query(); b[0].Count != 5 || b[0].Max != 4 || b[0].Avg != 2 {
		t.Errorf("after deleting v=5: %+v", b[0])
	}
}

// Entries written together (one transaction, many rows per statement)
// roll up as if written one by one: concurrent writers on two resources,
// colliding times that must move on, several keys per entry.
func TestBatchedWritesRollUp(t *testing.T) {
	ts := servertest.Start(t)
	base := int64(1_700_000_100_000) // a whole minute
	const each = 120
	type want struct {
		sum, min, max float64
		count         int
	}
	wants := map[string]map[string]*want{"d-a": {}, "d-b": {}}
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for _, dev := range []string{"d-a", "d-b"} {
		for i := range each {
			v, w := float64(i)*1.5, -float64(i)
			content := fmt.Sprintf(`{"v": %g}`, v)
			if i%2 == 0 {
				content = fmt.Sprintf(`{"v": %g, "w": %g}`, v, w)
			}
			for key, x := range map[string]float64{"v": v, "w": w} {
				if key == "w" && i%2 != 0 {
					continue
				}
				s := wants[dev][key]
				if s == nil {
					s = &want{min: x, max: x}
					wants[dev][key] = s
				}
				s.sum += x
				s.count++
				s.min, s.max = math.Min(s.min, x), math.Max(s.max, x)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Seven times for 120 entries: most collide and move on.
				if _, err := ts.Data.Put(t.Context(), ts.OperatorID, "Device", dev, "application/json",
					[]byte(content), time.UnixMilli(base+int64(i%7)*1000)); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for dev, keys := range wants {
		var res harvest.SeriesResult
		r := ts.Root.Do("GET", fmt.Sprintf("/v1/data/Device/%s/series?keys=v,w&from=%d&to=%d&buckets=1", dev, base, base+60_000), nil)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		r.JSON(&res)
		for _, s := range res.Series {
			w := keys[s.Key]
			if len(s.Buckets) != 1 {
				t.Fatalf("%s %s: %+v", dev, s.Key, s.Buckets)
			}
			b := s.Buckets[0]
			if b.Count != int64(w.count) || b.Min != w.min || b.Max != w.max || math.Abs(b.Avg-w.sum/float64(w.count)) > 1e-9 {
				t.Errorf("%s %s: got %+v, want count %d min %g max %g avg %g", dev, s.Key, b, w.count, w.min, w.max, w.sum/float64(w.count))
			}
		}
		if len(res.Series) != 2 {
			t.Errorf("%s: %d series", dev, len(res.Series))
		}
		// Each entry stored once, at distinct times.
		var times []int64
		rows, err := ts.DB.Query(`SELECT time FROM data_entries WHERE resource_type = 'Device' AND resource_id = $1`, dev)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var tm int64
			_ = rows.Scan(&tm)
			times = append(times, tm)
		}
		rows.Close()
		slices.Sort(times)
		if len(times) != each || len(slices.Compact(times)) != each {
			t.Errorf("%s: %d entries stored", dev, len(times))
		}
		var last int64
		if err := ts.DB.QueryRow(`SELECT last_modified FROM data_resources WHERE resource_type = 'Device' AND resource_id = $1`, dev).Scan(&last); err != nil || last != times[len(times)-1] {
			t.Errorf("%s: last_modified %d, newest entry %d (%v)", dev, last, times[len(times)-1], err)
		}
	}
	// The point of the test: transactions that held several entries.
	mfs, err := ts.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "nagare_harvest_batch_entries" {
			if h := mf.GetMetric()[0].GetHistogram(); h.GetSampleCount() >= 2*each {
				t.Errorf("%d transactions for %d entries: no batch had several entries", h.GetSampleCount(), 2*each)
			} else {
				t.Logf("%d entries in %d transactions", 2*each, h.GetSampleCount())
			}
		}
	}
}
