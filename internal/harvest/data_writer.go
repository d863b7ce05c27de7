package harvest

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// maxBatch bounds the entries committed in one transaction.
	maxBatch = 256
	// maxShifts bounds how often an entry moves to a later millisecond
	// because its resource already has an entry there.
	maxShifts = 8
	// busAckWait bounds the wait for the HARVEST stream's acknowledgements.
	busAckWait = 5 * time.Second

	// relayBatch bounds the outbox rows published per relay round.
	relayBatch = 256
	// relayTick is how often the relay looks at the outbox without a wake-up.
	relayTick = time.Second
	// A failed relay round is retried after a back-off that doubles from
	// relayMinBackoff up to relayMaxBackoff.
	relayMinBackoff = 100 * time.Millisecond
	relayMaxBackoff = 5 * time.Second
	// finalDrainWait bounds the relay's last try when Data closes.
	finalDrainWait = 3 * time.Second
)

// pending is one entry on its way through the writer.
type pending struct {
	op, rtype, rid, ctype string
	content               []byte
	req                   int64    // requested time (ms)
	attrs                 []string // top-level keys of a JSON object payload
	points                []point  // its numeric values

	t    int64 // stored time, set by the writer
	err  error
	done chan struct{} // closed when t or err is final
}

// writeLoop is the single writer: it takes whatever is queued (up to
// maxBatch), commits it in one transaction, answers the callers and wakes
// the relay.
func (d *Data) writeLoop() {
	defer close(d.written)
	for p := range d.queue {
		batch := []*pending{p}
	fill:
		for len(batch) < maxBatch {
			select {
			case p, ok := <-d.queue:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		d.m.batchSize.Observe(float64(len(batch)))
		d.commit(batch)
		stored := 0
		for _, p := range batch {
			if p.err != nil {
				d.m.writeErrors.Inc()
			} else {
				stored++
			}
		}
		if stored > 0 {
			d.m.stored.Add(float64(stored))
			d.m.outbox.Add(float64(stored))
			d.backlog.Add(int64(stored))
			select {
			case d.wake <- struct{}{}:
			default: // the relay is already due to look
			}
		}
		for _, p := range batch {
			close(p.done)
		}
	}
}

// commit stores a batch in one transaction. Should the transaction fail,
// each entry is tried on its own, so one bad entry cannot fail the rest.
func (d *Data) commit(batch []*pending) {
	ctx := context.Background()
	err := d.db.Tx(ctx, func(tx *sql.Tx) error { return d.insert(ctx, tx, batch) })
	if err == nil {
		return
	}
	if len(batch) == 1 {
		slog.Error("storing a Harvest Data entry", "resource", batch[0].rtype+"/"+batch[0].rid, "err", err)
		batch[0].err = err
		return
	}
	slog.Warn("Harvest Data batch failed; storing its entries one by one", "entries", len(batch), "err", err)
	for _, p := range batch {
		d.commit([]*pending{p})
	}
}

type entryID struct {
	rtype, rid string
	t          int64
}

type resourceID struct{ rtype, rid string }

const (
	insertEntry = `INSERT INTO data_entries (operator_id, resource_type, resource_id, time, content_type, content)
	VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (resource_type, resource_id, time) DO NOTHING`
	// insertEntries is insertEntry for many rows; it returns the rows
	// stored, so the writer learns which times were taken.
	insertEntries     = `INSERT INTO data_entries (operator_id, resource_type, resource_id, time, content_type, content) VALUES `
	insertEntriesTail = ` ON CONFLICT (resource_type, resource_id, time) DO NOTHING RETURNING resource_type, resource_id, time`
	insertOutbox      = `INSERT INTO harvest_outbox (node, seq, resource_type, resource_id, time) VALUES `
)

// A batch is written with a handful of multi-row statements, whatever its
// size: on PostgreSQL each statement is a round trip to another process,
// and one per entry (and per numeric value) made the writer, not the
// database, the limit.

// valuesList returns "($1, $2), ($3, $4)" for rows of cols placeholders.
func valuesList(rows, cols int) string {
	var b strings.Builder
	n := 0
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// insert writes a batch's entries, their outbox rows and rollups, and
// updates data_resources. An entry whose (resource, time) is taken moves
// to the first free millisecond after it; nothing accepted is overwritten
// or dropped.
func (d *Data) insert(ctx context.Context, tx *sql.Tx, batch []*pending) error {
	// Entries of the batch first take distinct times among themselves, and
	// are all tried in one statement.
	used := make(map[entryID]bool, len(batch))
	args := make([]any, 0, 6*len(batch))
	for _, p := range batch {
		p.t, p.err = p.req, nil
		for used[entryID{p.rtype, p.rid, p.t}] {
			p.t++
		}
		used[entryID{p.rtype, p.rid, p.t}] = true
		args = append(args, p.op, p.rtype, p.rid, p.t, p.ctype, p.content)
	}
	stored := make(map[entryID]bool, len(batch))
	rows, err := tx.QueryContext(ctx, insertEntries+valuesList(len(batch), 6)+insertEntriesTail, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id entryID
		if err := rows.Scan(&id.rtype, &id.rid, &id.t); err != nil {
			rows.Close()
			return err
		}
		stored[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// Those whose time an earlier entry holds move on, one by one.
	var stmt *sql.Stmt
	for _, p := range batch {
		if stored[entryID{p.rtype, p.rid, p.t}] {
			continue
		}
		if stmt == nil {
			stmt = tx.StmtContext(ctx, d.stmts.insert)
			defer stmt.Close()
		}
		for shift := 1; ; shift++ {
			if shift > maxShifts {
				p.err = unavailable("%s %s already has entries at every millisecond near %d; retry later", p.rtype, p.rid, p.req)
				break
			}
			if p.t, err = nextFree(ctx, tx, p.rtype, p.rid, p.t); err != nil {
				return err
			}
			for used[entryID{p.rtype, p.rid, p.t}] {
				p.t++
			}
			res, err := stmt.ExecContext(ctx, p.op, p.rtype, p.rid, p.t, p.ctype, p.content)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				used[entryID{p.rtype, p.rid, p.t}] = true
				break
			}
		}
	}
	// Outbox rows in batch order, rollups and resources for what is stored.
	args = args[:0]
	acc := rollups{}
	latest := map[resourceID]*pending{}
	for _, p := range batch {
		if p.err != nil {
			continue
		}
		// Seqs of a rolled-back transaction are not reused: gaps are harmless.
		d.seq++
		args = append(args, d.opts.Node, d.seq, p.rtype, p.rid, p.t)
		acc.add(p.rtype, p.rid, p.t, p.points)
		k := resourceID{p.rtype, p.rid}
		if l := latest[k]; l == nil || p.t > l.t {
			latest[k] = p
		}
	}
	if len(args) > 0 {
		if _, err := tx.ExecContext(ctx, insertOutbox+valuesList(len(args)/5, 5), args...); err != nil {
			return err
		}
	}
	if err := acc.flush(ctx, tx); err != nil {
		return err
	}
	return upsertResources(ctx, tx, latest)
}

// nextFree returns the first millisecond after t (within the next 1000
// entries) at which the resource has no entry.
func nextFree(ctx context.Context, tx *sql.Tx, rtype, rid string, t int64) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT time FROM data_entries WHERE resource_type = $1 AND resource_id = $2 AND time > $3 ORDER BY time LIMIT 1000`, rtype, rid, t)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	free := t + 1
	for rows.Next() {
		var taken int64
		if err := rows.Scan(&taken); err != nil {
			return 0, err
		}
		if taken != free {
			break
		}
		free++
	}
	return free, rows.Err()
}

// upsertResourcesHead… record that resources have data up to
// last_modified; with attributes, also set the attribute names (those of
// the newest entry, when it is a JSON object).
const (
	upsertResourcesHead = `INSERT INTO data_resources (operator_id, resource_type, resource_id, last_modified, attribute_names) VALUES `
	upsertResourcesSet  = ` ON CONFLICT (resource_type, resource_id) DO UPDATE SET `
	upsertResourcesTail = `last_modified = CASE WHEN excluded.last_modified > data_resources.last_modified
			THEN excluded.last_modified ELSE data_resources.last_modified END
		WHERE data_resources.operator_id = excluded.operator_id`
	upsertResourcesAttrs = `attribute_names = CASE WHEN excluded.last_modified >= data_resources.last_modified
			THEN excluded.attribute_names ELSE data_resources.attribute_names END, `
)

// upsertResources updates data_resources from each resource's newest
// entry of a batch: one statement for entries with attributes, one for
// those without. Rows go in key order, so nodes writing the same
// resources lock them in the same order.
func upsertResources(ctx context.Context, tx *sql.Tx, latest map[resourceID]*pending) error {
	ps := make([]*pending, 0, len(latest))
	for _, p := range latest {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *pending) int { return cmp.Or(cmp.Compare(a.rtype, b.rtype), cmp.Compare(a.rid, b.rid)) })
	for _, withAttrs := range []bool{true, false} {
		var args []any
		for _, p := range ps {
			if (p.attrs != nil) != withAttrs {
				continue
			}
			attrs := p.attrs
			if attrs == nil {
				attrs = []string{}
			}
			b, _ := json.Marshal(attrs)
			args = append(args, p.op, p.rtype, p.rid, p.t, string(b))
		}
		if len(args) == 0 {
			continue
		}
		q := upsertResourcesHead + valuesList(len(args)/5, 5) + upsertResourcesSet
		if withAttrs {
			q += upsertResourcesAttrs
		}
		if _, err := tx.ExecContext(ctx, q+upsertResourcesTail, args...); err != nil {
			return err
		}
	}
	return nil
}

// Subject is the bus subject of a resource's entries:
// harvest.data.<resourceType>.<resourceId>, where bytes of the ID that
// cannot appear in a subject token (anything but A-Z a-z 0-9 - _) are
// written %XX.
func Subject(resourceType, resourceID string) string {
	var b strings.Builder
	b.WriteString(SubjectPrefix + resourceType + ".")
	for i := 0; i < len(resourceID); i++ {
		c := resourceID[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// relayLoop publishes this node's outbox to the HARVEST stream in seq
// order: at start (rows left by a previous run), when the writer has
// committed, and every relayTick. Rows are deleted only once JetStream has
// acknowledged their entry, so an entry is never lost to a bus failure;
// one re-sent after a lost ack or a crash carries the same Nats-Msg-Id and
// is dropped by JetStream as a duplicate. A failed round is retried with
// back-off. When the writer has stopped, it makes a last bounded try and
// stops.
func (d *Data) relayLoop() {
	defer close(d.stopped)
	tick := time.NewTicker(relayTick)
	defer tick.Stop()
	var backoff time.Duration
	for {
		full, err := d.relay(context.Background())
		wake, tickC, retry := d.wake, tick.C, (<-chan time.Time)(nil)
		switch {
		case err != nil:
			backoff = min(max(2*backoff, relayMinBackoff), relayMaxBackoff)
			slog.Warn("Harvest Data entries stay in the outbox; retrying", "stream", Stream, "in", backoff, "err", err)
			// Wait out the back-off: commits must not turn it into a busy loop.
			wake, tickC, retry = nil, nil, time.After(backoff)
		case full:
			backoff = 0
			select {
			case <-d.written: // the final drain takes over below
			default:
				continue // more rows wait
			}
		default:
			backoff = 0
		}
		select {
		case <-d.written:
			d.finalDrain()
			return
		case <-wake:
		case <-tickC:
		case <-retry:
		}
	}
}

// finalDrain is the relay's last try, bounded by finalDrainWait; rows it
// leaves are published after the next start.
func (d *Data) finalDrain() {
	ctx, cancel := context.WithTimeout(context.Background(), finalDrainWait)
	defer cancel()
	for {
		full, err := d.relay(ctx)
		if err != nil {
			slog.Warn("Harvest Data entries left in the outbox until the next start", "stream", Stream, "err", err)
			return
		}
		if !full {
			return
		}
	}
}

// selectOutbox reads this node's oldest outbox rows with their entries; an
// entry deleted since has NULL columns.
const selectOutbox = `SELECT o.seq, o.resource_type, o.resource_id, o.time, e.operator_id, e.content_type, e.content, e.category
	FROM harvest_outbox o LEFT JOIN data_entries e
		ON e.resource_type = o.resource_type AND e.resource_id = o.resource_id AND e.time = o.time
	WHERE o.node = $1 ORDER BY o.seq LIMIT $2`

// relay runs one round: it publishes up to relayBatch outbox rows, waits
// for the acknowledgements, and deletes the rows that are done with (and
// those whose entry was deleted) in one statement. full reports a full
// round: more rows may be waiting. An error means some rows stay.
func (d *Data) relay(ctx context.Context) (full bool, err error) {
	if !d.bus.Ready() {
		return false, errors.New("NATS is disconnected")
	}
	type row struct {
		seq                 int64
		rtype, rid          string
		t                   int64
		op, ctype, category sql.NullString
		content             []byte
	}
	rows, err := d.db.QueryContext(ctx, selectOutbox, d.opts.Node, relayBatch)
	if err != nil {
		return false, fmt.Errorf("reading the outbox: %w", err)
	}
	var batch []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.rtype, &r.rid, &r.t, &r.op, &r.ctype, &r.content, &r.category); err != nil {
			rows.Close()
			return false, fmt.Errorf("reading the outbox: %w", err)
		}
		batch = append(batch, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("reading the outbox: %w", err)
	}
	if len(batch) == 0 {
		return false, nil
	}

	// Publish all, then wait: one round trip for the batch, not one each.
	done := make([]any, 1, len(batch)+1)
	done[0] = d.opts.Node
	type sent struct {
		seq int64
		f   jetstream.PubAckFuture
	}
	var inflight []sent
	var acked, failed int
	var firstErr error
	for _, r := range batch {
		if !r.op.Valid { // the entry was deleted: nothing to publish
			done = append(done, r.seq)
			continue
		}
		body, _ := json.Marshal(newEntry(r.rtype, r.rid, r.t, r.ctype.String, r.content, r.category.String))
		msg := nats.NewMsg(Subject(r.rtype, r.rid))
		msg.Data = body
		msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s/%s/%d", r.rtype, r.rid, r.t))
		msg.Header.Set(OperatorHeader, r.op.String)
		f, err := d.bus.JS.PublishMsgAsync(msg)
		if err != nil {
			failed++
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		inflight = append(inflight, sent{r.seq, f})
	}
	actx, cancel := context.WithTimeout(ctx, busAckWait)
	defer cancel()
	for _, s := range inflight {
		select {
		case <-s.f.Ok():
			acked++
			done = append(done, s.seq)
		case err := <-s.f.Err():
			failed++
			firstErr = cmp.Or(firstErr, err)
		case <-actx.Done():
			failed++
			firstErr = cmp.Or(firstErr, fmt.Errorf("no acknowledgement: %w", actx.Err()))
		}
	}
	d.m.busPublished.Add(float64(acked))
	d.m.busFailures.Add(float64(failed))

	if n := len(done) - 1; n > 0 {
		var q strings.Builder
		q.WriteString("DELETE FROM harvest_outbox WHERE node = $1 AND seq IN (")
		for i := range n {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("$" + strconv.Itoa(i+2))
		}
		q.WriteString(")")
		if _, err := d.db.ExecContext(ctx, q.String(), done...); err != nil {
			// The entries are on the stream; re-sending them is harmless.
			return false, fmt.Errorf("deleting published rows from the outbox: %w", err)
		}
		d.m.outbox.Sub(float64(n))
		d.backlog.Add(-int64(n))
	}
	if failed > 0 {
		return false, fmt.Errorf("%d of %d entries not acknowledged: %w", failed, len(batch), firstErr)
	}
	return len(batch) == relayBatch, nil
}
