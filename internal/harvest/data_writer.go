package harvest

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nagare-iot/nagare/internal/api"
)

const (
	// maxBatch bounds the entries committed in one transaction.
	maxBatch = 256
	// maxShifts bounds how often an entry moves to a later millisecond
	// because its resource already has an entry there.
	maxShifts = 8
	// busAckWait bounds the wait for the HARVEST stream's acknowledgements.
	busAckWait = 5 * time.Second
)

// pending is one entry on its way through the writer and the publisher.
type pending struct {
	op, rtype, rid, ctype string
	content               []byte
	req                   int64    // requested time (ms)
	attrs                 []string // top-level keys of a JSON object payload

	t    int64 // stored time, set by the writer
	err  error
	done chan struct{} // closed when t or err is final
}

// writeLoop is the single writer: it takes whatever is queued (up to
// maxBatch), commits it in one transaction, answers failures and hands the
// stored entries to the publisher.
func (d *Data) writeLoop() {
	defer close(d.pubq)
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
		stored := batch[:0:0]
		for _, p := range batch {
			if p.err != nil {
				d.m.writeErrors.Inc()
				close(p.done)
				continue
			}
			stored = append(stored, p)
		}
		d.m.stored.Add(float64(len(stored)))
		if len(stored) > 0 {
			d.pubq <- stored
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

const insertEntry = `INSERT INTO data_entries (operator_id, resource_type, resource_id, time, content_type, content)
	VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (resource_type, resource_id, time) DO NOTHING`

// insert writes a batch's entries and updates data_resources. An entry
// whose (resource, time) is taken moves to the first free millisecond
// after it; nothing accepted is overwritten or dropped.
func (d *Data) insert(ctx context.Context, tx *sql.Tx, batch []*pending) error {
	stmt := tx.StmtContext(ctx, d.stmts.insert)
	defer stmt.Close()
	used := make(map[entryID]bool, len(batch))
	latest := map[resourceID]*pending{}
	for _, p := range batch {
		p.t, p.err = p.req, nil
		for shift := 0; ; shift++ {
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
				break
			}
			if shift == maxShifts {
				p.err = api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable,
					"%s %s already has entries at every millisecond near %d; retry later", p.rtype, p.rid, p.req)
				break
			}
			if p.t, err = nextFree(ctx, tx, p.rtype, p.rid, p.t); err != nil {
				return err
			}
		}
		if p.err != nil {
			continue
		}
		used[entryID{p.rtype, p.rid, p.t}] = true
		k := resourceID{p.rtype, p.rid}
		if l := latest[k]; l == nil || p.t > l.t {
			latest[k] = p
		}
	}
	for _, p := range latest {
		if err := d.upsertResource(ctx, tx, p); err != nil {
			return err
		}
	}
	return nil
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

// upsertResource* record that a resource has data up to $4; the first
// also sets the attribute names (those of the newest entry, when it is a
// JSON object).
const (
	upsertResourceHead = `INSERT INTO data_resources (operator_id, resource_type, resource_id, last_modified, attribute_names) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (resource_type, resource_id) DO UPDATE SET `
	upsertResourceTail = `last_modified = CASE WHEN excluded.last_modified > data_resources.last_modified
			THEN excluded.last_modified ELSE data_resources.last_modified END
		WHERE data_resources.operator_id = excluded.operator_id`
	upsertResourceAttrs = upsertResourceHead + `attribute_names = CASE WHEN excluded.last_modified >= data_resources.last_modified
			THEN excluded.attribute_names ELSE data_resources.attribute_names END, ` + upsertResourceTail
	upsertResource = upsertResourceHead + upsertResourceTail
)

func (d *Data) upsertResource(ctx context.Context, tx *sql.Tx, p *pending) error {
	st, attrs := d.stmts.upsert, p.attrs
	if attrs != nil {
		st = d.stmts.upsertAttrs
	} else {
		attrs = []string{}
	}
	b, _ := json.Marshal(attrs)
	_, err := tx.StmtContext(ctx, st).ExecContext(ctx, p.op, p.rtype, p.rid, p.t, string(b))
	return err
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

// publishLoop puts stored entries on the HARVEST stream, waits for the
// acknowledgements, then answers their callers. A bus failure is logged
// and counted; the caller still gets its 201 (the SQL row is the record).
func (d *Data) publishLoop() {
	defer close(d.stopped)
	for batch := range d.pubq {
		d.publish(batch)
		for _, p := range batch {
			close(p.done)
		}
	}
}

func (d *Data) publish(batch []*pending) {
	failed := 0
	defer func() {
		if failed > 0 {
			d.m.busFailures.Add(float64(failed))
		}
		d.m.busPublished.Add(float64(len(batch) - failed))
	}()
	if !d.bus.Ready() {
		failed = len(batch)
		slog.Warn("NATS is disconnected; stored Harvest Data entries were not published", "entries", failed)
		return
	}
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	var firstErr error
	for _, p := range batch {
		body, _ := json.Marshal(newEntry(p.rtype, p.rid, p.t, p.ctype, p.content, ""))
		msg := nats.NewMsg(Subject(p.rtype, p.rid))
		msg.Data = body
		msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s/%s/%d", p.rtype, p.rid, p.t))
		msg.Header.Set(OperatorHeader, p.op)
		f, err := d.bus.JS.PublishMsgAsync(msg)
		if err != nil {
			failed++
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(busAckWait)
	defer timeout.Stop()
	expired := false
	for _, f := range futures {
		if expired {
			select {
			case <-f.Ok():
			default:
				failed++
			}
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			failed++
			firstErr = cmp.Or(firstErr, err)
		case <-timeout.C:
			expired = true
			failed++
			firstErr = cmp.Or(firstErr, fmt.Errorf("no acknowledgement within %s", busAckWait))
		}
	}
	if failed > 0 {
		slog.Warn("stored Harvest Data entries were not published on the bus", "stream", Stream, "failed", failed, "of", len(batch), "err", firstErr)
	}
}
