package harvest

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
)

// point is one numeric value of an entry.
type point struct {
	key   string
	value float64
}

// maxPointsPerEntry bounds the numeric keys indexed per entry.
const maxPointsPerEntry = 64

// parseObject returns the top-level keys of a JSON object payload (sorted)
// and its numeric values (booleans as 0/1), which the series query reads.
func parseObject(content []byte) (keys []string, points []point) {
	s := bytes.TrimSpace(content)
	if len(s) == 0 || s[0] != '{' {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(s, &m) != nil {
		return nil, nil
	}
	keys = make([]string, 0, len(m))
	for k, raw := range m {
		keys = append(keys, k)
		if len(points) >= maxPointsPerEntry || len(k) > 255 {
			continue
		}
		switch v := bytes.TrimSpace(raw); {
		case bytes.Equal(v, []byte("true")):
			points = append(points, point{k, 1})
		case bytes.Equal(v, []byte("false")):
			points = append(points, point{k, 0})
		case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')):
			if f, err := strconv.ParseFloat(string(v), 64); err == nil && !math.IsInf(f, 0) {
				points = append(points, point{k, f})
			}
		}
	}
	sort.Strings(keys)
	return keys, points
}

// rollupMS is the rollup period: one minute.
const rollupMS = 60_000

// rollupKey names one rollup row: a resource's key in one minute.
type rollupKey struct {
	rtype, rid, key string
	start           int64
}

type rollupAgg struct {
	sum, min, max float64
	count         int64
}

// rollups sums entries' numeric values per rollup row in memory, so a
// batch of entries updates each row once, all rows in a few statements.
type rollups map[rollupKey]*rollupAgg

// add adds an entry's numeric values.
func (r rollups) add(rtype, rid string, t int64, pts []point) {
	for _, pt := range pts {
		k := rollupKey{rtype, rid, pt.key, t - t%rollupMS}
		if a := r[k]; a != nil {
			a.sum += pt.value
			a.count++
			a.min, a.max = min(a.min, pt.value), max(a.max, pt.value)
		} else {
			r[k] = &rollupAgg{sum: pt.value, min: pt.value, max: pt.value, count: 1}
		}
	}
}

const (
	upsertRollups = `INSERT INTO data_rollups (resource_type, resource_id, key, start, sum, count, min, max) VALUES `
	// rollupsTail adds to rows that exist.
	upsertRollupsTail = ` ON CONFLICT (resource_type, resource_id, key, start) DO UPDATE SET sum = data_rollups.sum + excluded.sum,
		count = data_rollups.count + excluded.count,
		min = CASE WHEN excluded.min < data_rollups.min THEN excluded.min ELSE data_rollups.min END,
		max = CASE WHEN excluded.max > data_rollups.max THEN excluded.max ELSE data_rollups.max END`
	// rollupRowsPerStatement keeps a statement's parameters (8 a row)
	// well under SQLite's and PostgreSQL's limits.
	rollupRowsPerStatement = 1000
)

// flush adds what was summed to data_rollups and empties r. Rows go in key
// order, so nodes writing the same rows lock them in the same order.
func (r rollups) flush(ctx context.Context, tx *sql.Tx) error {
	keys := make([]rollupKey, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rollupKey) int {
		return cmp.Or(cmp.Compare(a.rtype, b.rtype), cmp.Compare(a.rid, b.rid), cmp.Compare(a.key, b.key), cmp.Compare(a.start, b.start))
	})
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), rollupRowsPerStatement)]
		keys = keys[len(chunk):]
		args := make([]any, 0, 8*len(chunk))
		for _, k := range chunk {
			a := r[k]
			args = append(args, k.rtype, k.rid, k.key, k.start, a.sum, a.count, a.min, a.max)
		}
		if _, err := tx.ExecContext(ctx, upsertRollups+valuesList(len(chunk), 8)+upsertRollupsTail, args...); err != nil {
			return err
		}
	}
	clear(r)
	return nil
}

// recomputeRollup rebuilds the rollups of the minute holding t from the
// entries (after a delete).
func (d *Data) recomputeRollup(tx *sql.Tx, rtype, rid string, t int64) error {
	start := t - t%rollupMS
	if _, err := tx.Exec(`DELETE FROM data_rollups WHERE resource_type = $1 AND resource_id = $2 AND start = $3`, rtype, rid, start); err != nil {
		return err
	}
	rows, err := tx.Query(`SELECT time, content FROM data_entries WHERE resource_type = $1 AND resource_id = $2 AND time >= $3 AND time < $4`,
		rtype, rid, start, start+rollupMS)
	if err != nil {
		return err
	}
	type entry struct {
		t   int64
		pts []point
	}
	var es []entry
	for rows.Next() {
		var e entry
		var content []byte
		if err := rows.Scan(&e.t, &content); err != nil {
			rows.Close()
			return err
		}
		_, e.pts = parseObject(content)
		es = append(es, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	acc := rollups{}
	for _, e := range es {
		acc.add(rtype, rid, e.t, e.pts)
	}
	return acc.flush(context.Background(), tx)
}

// Bucket is one time bucket of a series.
type Bucket struct {
	Time  int64   `json:"time"` // bucket start, UNIX ms
	Avg   float64 `json:"avg"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Count int64   `json:"count"`
}

// Series is a key's buckets; buckets without data are left out, so gaps
// stay gaps.
type Series struct {
	Key     string   `json:"key"`
	Buckets []Bucket `json:"buckets"`
}

// SeriesResult answers the series query.
type SeriesResult struct {
	ResourceType string   `json:"resourceType"`
	ResourceID   string   `json:"resourceId"`
	From         int64    `json:"from"`
	To           int64    `json:"to"`
	BucketMS     int64    `json:"bucketMs"`
	Series       []Series `json:"series"`
}

// Limits of the series query.
const (
	DefaultBuckets = 500
	MaxBuckets     = 5000
	maxSeriesKeys  = 16
)

// QuerySeries aggregates keys of a resource into equal time buckets over
// [from, to).
func (d *Data) QuerySeries(ctx context.Context, op, rtype, rid string, keys []string, from, to int64, buckets int) (*SeriesResult, error) {
	if to <= from {
		return nil, api.Invalid("to (%d) must be after from (%d)", to, from)
	}
	width := (to - from + int64(buckets) - 1) / int64(buckets)
	if width < 1 {
		width = 1
	}
	// Buckets of a minute or more read the rollups: the bucket width is
	// then a whole number of minutes and from starts one, so every bucket
	// is exact. Shorter buckets read the entries themselves.
	rolled := width >= rollupMS
	if rolled {
		width = (width + rollupMS - 1) / rollupMS * rollupMS
		from -= from % rollupMS
	}
	out := &SeriesResult{ResourceType: rtype, ResourceID: rid, From: from, To: to, BucketMS: width, Series: []Series{}}
	// Resources are unique across operators; check ownership once so the
	// aggregation reads only the covering index.
	var owner string
	switch err := d.db.QueryRowContext(ctx, `SELECT operator_id FROM data_resources WHERE resource_type = $1 AND resource_id = $2`, rtype, rid).Scan(&owner); {
	case err == sql.ErrNoRows || (err == nil && owner != op):
		for _, k := range keys {
			out.Series = append(out.Series, Series{Key: k, Buckets: []Bucket{}})
		}
		return out, nil
	case err != nil:
		return nil, err
	}
	if !rolled {
		return d.seriesFromEntries(ctx, out, keys, rtype, rid, from, to, width)
	}
	for _, k := range keys {
		rows, err := d.db.QueryContext(ctx, `SELECT (start - $1) / $2 AS b, SUM(sum) / SUM(count), MIN(min), MAX(max), SUM(count)
			FROM data_rollups WHERE resource_type = $3 AND resource_id = $4 AND key = $5 AND start >= $1 AND start < $6
			GROUP BY b ORDER BY b`, from, width, rtype, rid, k, to)
		if err != nil {
			return nil, err
		}
		s := Series{Key: k, Buckets: []Bucket{}}
		for rows.Next() {
			var b int64
			var bk Bucket
			if err := rows.Scan(&b, &bk.Avg, &bk.Min, &bk.Max, &bk.Count); err != nil {
				rows.Close()
				return nil, err
			}
			bk.Time = from + b*width
			s.Buckets = append(s.Buckets, bk)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out.Series = append(out.Series, s)
	}
	return out, nil
}

// maxRawEntries bounds the entries a short-bucket series reads.
const maxRawEntries = 500_000

// seriesFromEntries buckets the entries themselves (buckets under a
// minute: short ranges, so few entries).
func (d *Data) seriesFromEntries(ctx context.Context, out *SeriesResult, keys []string, rtype, rid string, from, to, width int64) (*SeriesResult, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT time, content FROM data_entries WHERE resource_type = $1 AND resource_id = $2 AND time >= $3 AND time < $4 ORDER BY time`,
		rtype, rid, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	idx := map[string]int{}
	for i, k := range keys {
		idx[k] = i
		out.Series = append(out.Series, Series{Key: k, Buckets: []Bucket{}})
	}
	n := 0
	for rows.Next() {
		if n++; n > maxRawEntries {
			return nil, api.Invalid("the range holds more than %d entries; ask for fewer buckets (a bucket of a minute or more reads the per-minute rollups)", maxRawEntries)
		}
		var t int64
		var content []byte
		if err := rows.Scan(&t, &content); err != nil {
			return nil, err
		}
		_, pts := parseObject(content)
		bt := from + (t-from)/width*width
		for _, p := range pts {
			i, ok := idx[p.key]
			if !ok {
				continue
			}
			s := &out.Series[i]
			if l := len(s.Buckets); l == 0 || s.Buckets[l-1].Time != bt {
				s.Buckets = append(s.Buckets, Bucket{Time: bt, Min: p.value, Max: p.value})
			}
			b := &s.Buckets[len(s.Buckets)-1]
			b.Avg += p.value // the sum until the end
			b.Count++
			b.Min, b.Max = math.Min(b.Min, p.value), math.Max(b.Max, p.value)
		}
	}
	for i := range out.Series {
		for j := range out.Series[i].Buckets {
			b := &out.Series[i].Buckets[j]
			b.Avg /= float64(b.Count)
		}
	}
	return out, rows.Err()
}

func (d *Data) handleSeries(w http.ResponseWriter, r *http.Request) {
	rtype, rid := r.PathValue("resource_type"), r.PathValue("resource_id")
	if err := checkResourceType(rtype); err != nil {
		api.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	var keys []string
	for _, k := range strings.Split(q.Get("keys"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 || len(keys) > maxSeriesKeys {
		api.WriteError(w, r, api.Invalid("keys must name 1 to %d numeric keys of the entries, comma-separated", maxSeriesKeys))
		return
	}
	now := d.now().UnixMilli()
	to, err := api.QueryInt(r, "to", now+1, 0, math.MaxInt64/2)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	from, err := api.QueryInt(r, "from", to-int64(6*time.Hour/time.Millisecond), 0, math.MaxInt64/2)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	n, err := api.QueryInt(r, "buckets", DefaultBuckets, 1, MaxBuckets)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	res, err := d.QuerySeries(r.Context(), api.PrincipalFrom(r.Context()).OperatorID, rtype, rid, keys, from, to, int(n))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, res)
}

// backfillPoints rolls up the numeric values of entries stored before the
// rollups existed, once, in batches.
func (d *Data) backfillPoints(ctx context.Context) error {
	// One transaction that first claims the job: nodes starting together
	// wait for each other, and a crash leaves nothing half done.
	total := 0
	err := d.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('data_rollups_backfilled', '1') ON CONFLICT (key) DO NOTHING`)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // done before
		}
		acc := rollups{}
		var after struct {
			rtype, rid string
			t          int64
		}
		for {
			rows, err := tx.QueryContext(ctx, `SELECT resource_type, resource_id, time, content FROM data_entries
				WHERE (resource_type, resource_id, time) > ($1, $2, $3) ORDER BY resource_type, resource_id, time LIMIT 1000`,
				after.rtype, after.rid, after.t)
			if err != nil {
				return err
			}
			type entry struct {
				rtype, rid string
				t          int64
				pts        []point
			}
			var batch []entry
			for rows.Next() {
				var e entry
				var content []byte
				if err := rows.Scan(&e.rtype, &e.rid, &e.t, &content); err != nil {
					rows.Close()
					return err
				}
				_, e.pts = parseObject(content)
				batch = append(batch, e)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(batch) == 0 {
				return nil
			}
			for _, e := range batch {
				acc.add(e.rtype, e.rid, e.t, e.pts)
			}
			if err := acc.flush(ctx, tx); err != nil {
				return err
			}
			last := batch[len(batch)-1]
			after.rtype, after.rid, after.t = last.rtype, last.rid, last.t
			total += len(batch)
		}
	})
	if err == nil && total > 0 {
		slog.Info("rolled up the numeric values of earlier Harvest Data entries", "entries", total)
	}
	return err
}
