// Package harvest owns Harvest Data (time-series entries published by
// devices) and Harvest Files (a path-addressed file store).
package harvest

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/bus"
	"github.com/nagare-iot/nagare/internal/inventory"
	"github.com/nagare-iot/nagare/internal/store"
)

// DataOptions limit Harvest Data.
type DataOptions struct {
	MaxPublishBytes int64 // largest entry; DefaultMaxPublishBytes when 0
	// Node names this node's rows in the outbox; nodes sharing a database
	// need distinct names, and a node must keep its name to publish rows
	// left by its previous run.
	Node string
	// MaxBacklog bounds the entries waiting in this node's outbox for the
	// bus; beyond it publishes are refused with 503 and Retry-After, so a
	// sustained overload slows devices down instead of growing the outbox
	// without limit. DefaultMaxBacklog when 0.
	MaxBacklog int64
}

// DefaultMaxBacklog is the outbox bound when none is configured.
const DefaultMaxBacklog = 100_000

// DefaultMaxPublishBytes is the entry size limit when none is configured.
const DefaultMaxPublishBytes = 256 << 10

// Harvest Data resource types (SORACOM's enum).
const (
	ResourceSubscriber   = "Subscriber"
	ResourceLoraDevice   = "LoraDevice"
	ResourceSim          = "Sim"
	ResourceSigfoxDevice = "SigfoxDevice"
	ResourceDevice       = "Device"
	ResourceSoraCam      = "SoraCam"
	// ResourceApp is nagare's own: data a flow app writes that belongs to
	// no device, such as analysis results (resource ID: any name).
	ResourceApp = "App"
)

var resourceTypes = map[string]bool{
	ResourceSubscriber: true, ResourceLoraDevice: true, ResourceSim: true,
	ResourceSigfoxDevice: true, ResourceDevice: true, ResourceSoraCam: true, ResourceApp: true,
}

func checkResourceType(t string) error {
	if !resourceTypes[t] {
		return api.Invalid("resource_type %q must be one of Subscriber, LoraDevice, Sim, SigfoxDevice, Device, SoraCam, App", t)
	}
	return nil
}

// Stream is the JetStream stream every stored entry is published to, on
// subject harvest.data.<resourceType>.<resourceId> (see Subject).
const (
	Stream        = "HARVEST"
	SubjectPrefix = "harvest.data."
	// OperatorHeader carries the entry's operator on bus messages.
	OperatorHeader = "Nagare-Operator-Id"
)

// DataEntry is a SORACOM DataEntry. Content is the payload itself when it
// is valid UTF-8 (text, JSON); any other payload is base64 and then
// ContentEncoding is "base64" (a field SORACOM does not have).
type DataEntry struct {
	Time            int64  `json:"time"`
	ContentType     string `json:"contentType"`
	Content         string `json:"content"`
	ContentEncoding string `json:"contentEncoding,omitempty"`
	Category        string `json:"category"`
	ResourceID      string `json:"resourceId"`
	ResourceType    string `json:"resourceType"`
}

func newEntry(rtype, rid string, t int64, ctype string, content []byte, category string) DataEntry {
	e := DataEntry{Time: t, ContentType: ctype, Category: category, ResourceID: rid, ResourceType: rtype}
	if utf8.Valid(content) {
		e.Content = string(content)
	} else {
		e.Content, e.ContentEncoding = base64.StdEncoding.EncodeToString(content), "base64"
	}
	return e
}

// DataResource is SORACOM's DataResourceMetadata.
type DataResource struct {
	ResourceType     string   `json:"resourceType"`
	ResourceID       string   `json:"resourceId"`
	LastModifiedTime int64    `json:"lastModifiedTime"`
	AttributeNames   []string `json:"attributeNames"`
}

// Data implements Harvest Data. Writes go through one writer goroutine
// that commits whatever is waiting in a single transaction (group commit),
// together with an outbox row per entry; a relay goroutine publishes the
// outbox to the bus (see relayLoop), so an entry reaches the HARVEST
// stream even when NATS was down or the process stopped in between.
type Data struct {
	db   *store.DB
	bus  *bus.Bus
	inv  *inventory.Service
	opts DataOptions
	now  func() time.Time

	mu      sync.RWMutex // guards closed against sends on queue
	closed  bool
	queue   chan *pending
	seq     int64         // last outbox seq of this node; writer only
	backlog atomic.Int64  // entries in this node's outbox (mirrors the gauge)
	wake    chan struct{} // writer → relay: new outbox rows (never blocks)
	written chan struct{} // closed when the writer has committed everything
	stopped chan struct{} // closed when the relay has stopped

	m     dataMetrics
	stmts struct{ insert *sql.Stmt } // statements prepared once
}

type dataMetrics struct {
	stored, writeErrors, busPublished, busFailures prometheus.Counter
	outbox                                         prometheus.Gauge
	batchSize                                      prometheus.Histogram
}

// NewData creates the Harvest Data service, makes sure the HARVEST stream
// exists, and starts the writer and the relay. Metrics are registered with
// reg when it is not nil.
func NewData(ctx context.Context, db *store.DB, b *bus.Bus, inv *inventory.Service, opts DataOptions, reg prometheus.Registerer) (*Data, error) {
	if opts.MaxPublishBytes <= 0 {
		opts.MaxPublishBytes = DefaultMaxPublishBytes
	}
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "Harvest Data entries as they are stored",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		MaxAge:      7 * 24 * time.Hour,
	}); err != nil {
		return nil, fmt.Errorf("harvest stream: %w", err)
	}
	d := &Data{
		db: db, bus: b, inv: inv, opts: opts, now: time.Now,
		queue:   make(chan *pending, 4*maxBatch),
		wake:    make(chan struct{}, 1),
		written: make(chan struct{}),
		stopped: make(chan struct{}),
		m: dataMetrics{
			stored:       prometheus.NewCounter(prometheus.CounterOpts{Name: "nagare_harvest_entries_stored_total", Help: "Harvest Data entries committed."}),
			writeErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "nagare_harvest_write_errors_total", Help: "Harvest Data entries that could not be stored."}),
			busPublished: prometheus.NewCounter(prometheus.CounterOpts{Name: "nagare_harvest_bus_published_total", Help: "Harvest Data entries acknowledged by the HARVEST stream."}),
			busFailures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "nagare_harvest_bus_failures_total", Help: "Harvest Data entry publishes the HARVEST stream did not acknowledge (the entries stay in the outbox and are retried)."}),
			outbox:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "nagare_harvest_outbox_entries", Help: "Stored Harvest Data entries of this node not yet acknowledged by the HARVEST stream."}),
			batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "nagare_harvest_batch_entries", Help: "Entries per Harvest Data write transaction.",
				Buckets: prometheus.ExponentialBuckets(1, 2, 9)}),
		},
	}
	var err error
	if d.stmts.insert, err = db.PrepareContext(ctx, insertEntry); err != nil {
		return nil, fmt.Errorf("harvest: %w", err)
	}
	if err := d.backfillPoints(ctx); err != nil {
		d.closeStmts()
		return nil, fmt.Errorf("harvest: indexing numeric values: %w", err)
	}
	// Continue this node's outbox where the previous run left it.
	var backlog int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM harvest_outbox WHERE node = $1`,
		opts.Node).Scan(&backlog, &d.seq); err != nil {
		d.closeStmts()
		return nil, fmt.Errorf("harvest outbox: %w", err)
	}
	d.m.outbox.Set(float64(backlog))
	d.backlog.Store(backlog)
	if d.opts.MaxBacklog <= 0 {
		d.opts.MaxBacklog = DefaultMaxBacklog
	}
	if reg != nil {
		reg.MustRegister(d.m.stored, d.m.writeErrors, d.m.busPublished, d.m.busFailures, d.m.outbox, d.m.batchSize)
	}
	go d.writeLoop()
	go d.relayLoop()
	return d, nil
}

// Close stops accepting writes, commits what is queued, gives the relay a
// last bounded try at publishing the outbox (what is left is published
// after the next start), and returns when the writer and relay have
// stopped.
func (d *Data) Close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	<-d.stopped
	d.closeStmts()
}

func (d *Data) closeStmts() {
	if d.stmts.insert != nil {
		d.stmts.insert.Close()
	}
}

// Put stores one entry and returns the time it was stored at: t, or the
// first free millisecond after it when the resource already has an entry
// at t. A zero t means now. It returns once the entry is committed, with
// its outbox row: the relay puts it on the HARVEST stream afterwards.
// content is kept until then, even when ctx ends first: do not modify it.
func (d *Data) Put(ctx context.Context, operatorID, resourceType, resourceID, contentType string, content []byte, t time.Time) (time.Time, error) {
	if err := checkResourceType(resourceType); err != nil {
		return time.Time{}, err
	}
	if resourceID == "" || len(resourceID) > 255 {
		return time.Time{}, api.Invalid("resource ID must be 1 to 255 bytes")
	}
	if int64(len(content)) > d.opts.MaxPublishBytes {
		return time.Time{}, tooLarge(d.opts.MaxPublishBytes)
	}
	if t.IsZero() {
		t = d.now()
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	p := &pending{op: operatorID, rtype: resourceType, rid: resourceID, ctype: contentType, content: content,
		req: t.UnixMilli(), done: make(chan struct{})}
	p.attrs, p.points = parseObject(content)
	if err := d.enqueue(ctx, p); err != nil {
		return time.Time{}, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		// The entry is queued and will still be stored.
		return time.Time{}, ctx.Err()
	}
	if p.err != nil {
		return time.Time{}, p.err
	}
	return time.UnixMilli(p.t), nil
}

// SetMaxBacklog changes the outbox bound (see DataOptions.MaxBacklog).
func (d *Data) SetMaxBacklog(n int64) {
	d.mu.Lock()
	d.opts.MaxBacklog = n
	d.mu.Unlock()
}

// unavailable is a 503 that asks the client to retry in a second.
func unavailable(format string, args ...any) error {
	e := api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, format, args...)
	e.RetryAfter = time.Second
	return e
}

// errBacklog is the 503 a publish gets while the bus is behind.
func errBacklog(n int64) error {
	return unavailable("Harvest Data is %d entries behind publishing to the message bus; retry in a second", n)
}

func (d *Data) enqueue(ctx context.Context, p *pending) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return unavailable("Harvest Data is shutting down; retry")
	}
	if n := d.backlog.Load(); n >= d.opts.MaxBacklog {
		return errBacklog(n)
	}
	select {
	case d.queue <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func tooLarge(limit int64) error {
	return api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge,
		"payload exceeds the %d-byte limit for one Harvest Data entry (server setting max-publish-bytes); nothing was stored", limit)
}

// attributeNames returns the sorted top-level keys of a JSON object
// payload, or nil for anything else.
// Register mounts publish and the data query operations.
func (d *Data) Register(rt *api.Router) {
	rt.Handle(api.Op{Name: "Device:publishDeviceData", Method: "POST", Path: "/v1/devices/{device_id}/publish", Auth: api.AuthNone,
		Summary: "Device publish to Harvest Data, authenticated by the device secret (query device_secret or header X-Device-Secret); " +
			"any Content-Type (default application/octet-stream), optional X-Soracom-Timestamp (UNIX ms); 201 once stored. " +
			"Entries are read back with content = the payload when it is valid UTF-8, else base64 with contentEncoding \"base64\"",
		Handler: d.handlePublish})
	rt.Handle(api.Op{Name: "DataEntry:getDataEntries", Method: "GET", Path: "/v1/data/{resource_type}/{resource_id}",
		Summary: "List a resource's entries (from, to in UNIX ms; sort desc|asc; limit 1-1000, default 10; last_evaluated_key; next key in x-soracom-next-key). " +
			"content is the payload when it is valid UTF-8, else base64 with contentEncoding \"base64\"",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			d.serveEntries(w, r, r.PathValue("resource_type"), r.PathValue("resource_id"))
		}})
	rt.Handle(api.Op{Name: "Device:getDataFromDevice", Method: "GET", Path: "/v1/devices/{device_id}/data",
		Summary: "List a device's Harvest Data entries (same query as DataEntry:getDataEntries)",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			d.serveEntries(w, r, ResourceDevice, r.PathValue("device_id"))
		}})
	rt.Handle(api.Op{Name: "Sim:getDataFromSim", Method: "GET", Path: "/v1/sims/{sim_id}/data",
		Summary: "List a SIM's Harvest Data entries (same query as DataEntry:getDataEntries)",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			d.serveEntries(w, r, ResourceSim, r.PathValue("sim_id"))
		}})
	rt.Handle(api.Op{Name: "DataEntry:getDataSeries", Method: "GET", Path: "/v1/data/{resource_type}/{resource_id}/series",
		Summary: "Aggregate numeric keys of a resource's JSON entries into time buckets: keys=a,b (top-level numbers or booleans), " +
			"from/to (UNIX ms, default the last 6 h), buckets 1-5000 (default 500) → avg, min, max, count per bucket; empty buckets are left out",
		Handler: d.handleSeries})
	rt.Handle(api.Op{Name: "DataEntry:getDataEntry", Method: "GET", Path: "/v1/data/{resource_type}/{resource_id}/{time}",
		Summary: "Get one entry by its time (UNIX ms)",
		Handler: d.handleGetEntry})
	rt.Handle(api.Op{Name: "DataEntry:deleteDataEntry", Method: "DELETE", Path: "/v1/data/{resource_type}/{resource_id}/{time}",
		Summary: "Delete one entry by its time (UNIX ms); 404 if there is none",
		Handler: d.handleDeleteEntry})
	rt.Handle(api.Op{Name: "DataEntry:listDataSourceResources", Method: "GET", Path: "/v1/data/resources",
		Summary: "List resources that have data (resource_type, limit 1-1000 default 100, last_evaluated_key = resourceType/resourceId; next key in x-soracom-next-key)",
		Handler: d.handleListResources})
}

// maxTimestamp is 9999-12-31T23:59:59.999Z in UNIX ms.
const maxTimestamp = 253402300799999

func (d *Data) handlePublish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	secret := r.URL.Query().Get("device_secret")
	if secret == "" {
		secret = r.Header.Get("X-Device-Secret")
	}
	dev, err := d.inv.AuthenticateDevice(ctx, r.PathValue("device_id"), secret)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := d.CheckDevicePublish(ctx, dev, r.ContentLength); err != nil {
		api.WriteError(w, r, err)
		return
	}
	t := d.now()
	if ts := r.Header.Get("X-Soracom-Timestamp"); ts != "" {
		v, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || v < 0 || v > maxTimestamp {
			api.WriteError(w, r, api.BadRequest("X-Soracom-Timestamp %q must be a UNIX time in milliseconds", ts))
			return
		}
		t = time.UnixMilli(v)
	}
	limit := d.opts.MaxPublishBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = tooLarge(limit)
		} else {
			err = api.BadRequest("reading the payload: %v", err)
		}
		api.WriteError(w, r, err)
		return
	}
	if _, err := d.Put(ctx, dev.OperatorID, ResourceDevice, dev.DeviceID, strings.TrimSpace(r.Header.Get("Content-Type")), body, t); err != nil {
		if ctx.Err() != nil {
			return // the client is gone; the entry is still stored
		}
		api.WriteError(w, r, err) // a 503 carries Retry-After
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// CheckDevicePublish is what a device publish must pass before its
// payload is stored, over HTTP (Device:publishDeviceData) and MQTT alike:
// Harvest Data is enabled in the device's group, and the payload of size
// bytes (-1: not known yet) is within max-publish-bytes.
func (d *Data) CheckDevicePublish(ctx context.Context, dev *inventory.Device, size int64) error {
	on, err := d.inv.HarvestEnabled(ctx, dev)
	if err != nil {
		return err
	}
	if !on {
		return api.Errorf(http.StatusBadRequest, api.CodeHarvestDisabled,
			"Harvest Data is not enabled for device %s: put it in a group whose SoracomHarvest configuration has enabled=true", dev.DeviceID)
	}
	if size > d.opts.MaxPublishBytes {
		return tooLarge(d.opts.MaxPublishBytes)
	}
	return nil
}

const entryCols = "time, content_type, content, category"

func scanEntry(row interface{ Scan(...any) error }, rtype, rid string) (DataEntry, error) {
	var t int64
	var ctype, category string
	var content []byte
	if err := row.Scan(&t, &ctype, &content, &category); err != nil {
		return DataEntry{}, err
	}
	return newEntry(rtype, rid, t, ctype, content, category), nil
}

func (d *Data) serveEntries(w http.ResponseWriter, r *http.Request, rtype, rid string) {
	out, err := d.entries(w, r, rtype, rid)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (d *Data) entries(w http.ResponseWriter, r *http.Request, rtype, rid string) ([]DataEntry, error) {
	if err := checkResourceType(rtype); err != nil {
		return nil, err
	}
	from, err := api.QueryInt(r, "from", 0, 0, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	to, err := api.QueryInt(r, "to", math.MaxInt64, 0, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	limit, err := api.QueryInt(r, "limit", 10, 1, 1000)
	if err != nil {
		return nil, err
	}
	order := "DESC"
	switch s := r.URL.Query().Get("sort"); s {
	case "", "desc":
	case "asc":
		order = "ASC"
	default:
		return nil, api.BadRequest("sort must be desc or asc, not %q", s)
	}
	if r.URL.Query().Get("last_evaluated_key") != "" {
		key, err := api.QueryInt(r, "last_evaluated_key", 0, 0, math.MaxInt64)
		if err != nil {
			return nil, err
		}
		// The key is the time of the last entry of the previous page.
		if order == "DESC" {
			to = min(to, key-1)
		} else {
			from = max(from, key+1)
		}
	}
	out, err := d.Entries(r.Context(), api.PrincipalFrom(r.Context()).OperatorID, rtype, rid, from, to, int(limit)+1, order == "ASC")
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		out = out[:limit]
		w.Header().Set("x-soracom-next-key", strconv.FormatInt(out[len(out)-1].Time, 10))
	}
	return out, nil
}

// Entries returns up to limit entries of a resource with from <= time <=
// to (UNIX ms), newest first unless ascending.
func (d *Data) Entries(ctx context.Context, operatorID, rtype, rid string, from, to int64, limit int, ascending bool) ([]DataEntry, error) {
	if err := checkResourceType(rtype); err != nil {
		return nil, err
	}
	order := "DESC"
	if ascending {
		order = "ASC"
	}
	rows, err := d.db.QueryContext(ctx, `SELECT `+entryCols+` FROM data_entries
		WHERE operator_id = $1 AND resource_type = $2 AND resource_id = $3 AND time >= $4 AND time <= $5
		ORDER BY time `+order+` LIMIT $6`, operatorID, rtype, rid, from, to, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []DataEntry{}
	for rows.Next() {
		e, err := scanEntry(rows, rtype, rid)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// entryKey parses the {resource_type}/{resource_id}/{time} path.
func entryKey(r *http.Request) (rtype, rid string, t int64, err error) {
	rtype, rid = r.PathValue("resource_type"), r.PathValue("resource_id")
	if err := checkResourceType(rtype); err != nil {
		return "", "", 0, err
	}
	t, perr := strconv.ParseInt(r.PathValue("time"), 10, 64)
	if perr != nil {
		return "", "", 0, api.BadRequest("time %q must be a UNIX time in milliseconds", r.PathValue("time"))
	}
	return rtype, rid, t, nil
}

func entryNotFound(rtype, rid string, t int64) error {
	return api.NotFound("no entry for %s %s at %d", rtype, rid, t)
}

func (d *Data) handleGetEntry(w http.ResponseWriter, r *http.Request) {
	rtype, rid, t, err := entryKey(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	e, err := scanEntry(d.db.QueryRowContext(r.Context(), `SELECT `+entryCols+` FROM data_entries
		WHERE operator_id = $1 AND resource_type = $2 AND resource_id = $3 AND time = $4`,
		api.PrincipalFrom(r.Context()).OperatorID, rtype, rid, t), rtype, rid)
	if errors.Is(err, sql.ErrNoRows) {
		err = entryNotFound(rtype, rid, t)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, e)
}

func (d *Data) handleDeleteEntry(w http.ResponseWriter, r *http.Request) {
	rtype, rid, t, err := entryKey(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	op := api.PrincipalFrom(r.Context()).OperatorID
	err = d.db.Tx(r.Context(), func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM data_entries
			WHERE operator_id = $1 AND resource_type = $2 AND resource_id = $3 AND time = $4`, op, rtype, rid, t)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return entryNotFound(rtype, rid, t)
		}
		return d.recomputeRollup(tx, rtype, rid, t)
	})
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *Data) handleListResources(w http.ResponseWriter, r *http.Request) {
	out, err := d.listResources(w, r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (d *Data) listResources(w http.ResponseWriter, r *http.Request) ([]DataResource, error) {
	q := r.URL.Query()
	limit, err := api.QueryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return nil, err
	}
	where := "operator_id = $1"
	args := []any{api.PrincipalFrom(r.Context()).OperatorID}
	if rt := q.Get("resource_type"); rt != "" {
		if err := checkResourceType(rt); err != nil {
			return nil, err
		}
		args = append(args, rt)
		where += " AND resource_type = $2"
	}
	if key := q.Get("last_evaluated_key"); key != "" {
		kt, kid, ok := strings.Cut(key, "/")
		if !ok {
			return nil, api.BadRequest("last_evaluated_key must be resourceType/resourceId, as sent in x-soracom-next-key")
		}
		args = append(args, kt, kid)
		n := len(args)
		where += fmt.Sprintf(" AND (resource_type > $%d OR (resource_type = $%d AND resource_id > $%d))", n-1, n-1, n)
	}
	args = append(args, limit+1)
	rows, err := d.db.QueryContext(r.Context(), fmt.Sprintf(`SELECT resource_type, resource_id, last_modified, attribute_names
		FROM data_resources WHERE %s ORDER BY resource_type, resource_id LIMIT $%d`, where, len(args)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []DataResource{}
	for rows.Next() {
		var res DataResource
		var attrs string
		if err := rows.Scan(&res.ResourceType, &res.ResourceID, &res.LastModifiedTime, &attrs); err != nil {
			return nil, err
		}
		if int64(len(out)) == limit {
			last := out[len(out)-1]
			w.Header().Set("x-soracom-next-key", last.ResourceType+"/"+last.ResourceID)
			break
		}
		if json.Unmarshal([]byte(attrs), &res.AttributeNames) != nil || res.AttributeNames == nil {
			res.AttributeNames = []string{}
		}
		out = append(out, res)
	}
	return out, rows.Err()
}
