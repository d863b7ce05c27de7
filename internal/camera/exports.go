package camera

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/harvest"
)

// Export statuses (SoraCam's enum).
const (
	ExportInitializing = "initializing"
	ExportProcessing   = "processing"
	ExportCompleted    = "completed"
	ExportRetrying     = "retrying"
	ExportFailed       = "failed"
	ExportExpired      = "expired"
)

// maxExportAttempts bounds retries of an export whose moment is still
// being recorded or whose camera hiccuped.
const maxExportAttempts = 8

// ExportInfo is SoraCam's SoraCamImageExportInfo (plus failureReason and
// filePath, which SoraCam lacks).
type ExportInfo struct {
	ExportID      string `json:"exportId"`
	DeviceID      string `json:"deviceId"`
	OperatorID    string `json:"operatorId"`
	RequestedTime int64  `json:"requestedTime"`
	Status        string `json:"status"`
	URL           string `json:"url,omitempty"`
	ExpiryTime    int64  `json:"expiryTime,omitempty"`
	FailureReason string `json:"failureReason,omitempty"`
	FilePath      string `json:"filePath,omitempty"`
}

type exportRow struct {
	ExportInfo
	capture  int64
	prefix   sql.NullString
	blobKey  string
	attempts int
}

const exportColumns = `export_id, device_id, operator_id, requested_time, capture_time, status, error, harvest_prefix, file_path, blob_key, url, expiry_time, attempts`

func scanExport(sc interface{ Scan(...any) error }) (*exportRow, error) {
	var r exportRow
	if err := sc.Scan(&r.ExportID, &r.DeviceID, &r.OperatorID, &r.RequestedTime, &r.capture, &r.Status, &r.FailureReason,
		&r.prefix, &r.FilePath, &r.blobKey, &r.URL, &r.ExpiryTime, &r.attempts); err != nil {
		return nil, err
	}
	return &r, nil
}

// info is the API view: a completed export past its URL expiry is shown
// as expired, without the URL.
func (r *exportRow) info(now time.Time) *ExportInfo {
	i := r.ExportInfo
	if i.Status != ExportCompleted {
		i.URL, i.ExpiryTime = "", 0
	} else if now.UnixMilli() >= i.ExpiryTime {
		i.Status, i.URL = ExportExpired, ""
	}
	return &i
}

func newExportID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// ExportRequest is SoraCamImageExportSpecification.
type ExportRequest struct {
	Time         *int64   `json:"time"`
	ImageFilters []string `json:"imageFilters"`
	HarvestFiles *struct {
		PathPrefix string `json:"pathPrefix"`
	} `json:"harvestFiles"`
}

// CreateExport accepts an image export of the camera's picture at time t.
func (s *Service) CreateExport(ctx context.Context, c *Camera, req *ExportRequest) (*ExportInfo, error) {
	if req.Time == nil || *req.Time <= 0 {
		return nil, api.Invalid("time is required: the moment to export, in milliseconds since the epoch")
	}
	for _, f := range req.ImageFilters {
		if f != "wide_angle_correction" {
			return nil, api.Invalid("imageFilters: %q is not supported (only wide_angle_correction)", f)
		}
	}
	now := s.now()
	r := &exportRow{ExportInfo: ExportInfo{ExportID: newExportID(), DeviceID: c.DeviceID, OperatorID: c.OperatorID,
		RequestedTime: now.UnixMilli(), Status: ExportInitializing}, capture: *req.Time}
	if req.HarvestFiles != nil {
		r.prefix = sql.NullString{String: req.HarvestFiles.PathPrefix, Valid: true}
		if _, err := harvest.CleanPath(s.exportPath(r, now), false); err != nil {
			return nil, api.Invalid("harvestFiles.pathPrefix: %v", err)
		}
	}
	r.blobKey = "_cameras/" + c.OperatorID + "/exports/" + r.ExportID + ".jpg"
	if _, err := s.db.ExecContext(ctx, `INSERT INTO camera_exports (`+exportColumns+`, not_before, updated_at)
		VALUES ($1,$2,$3,$4,$5,$6,'',$7,'',$8,'',0,0,0,$4)`,
		r.ExportID, r.DeviceID, r.OperatorID, r.RequestedTime, r.capture, r.Status, r.prefix, r.blobKey); err != nil {
		return nil, err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return r.info(now), nil
}

// exportPath is where an export goes in Harvest Files: the prefix with
// its placeholders filled, then the export id as the file name.
func (s *Service) exportPath(r *exportRow, reqTime time.Time) string {
	p := strings.NewReplacer(
		"{export_id}", r.ExportID,
		"{device_id}", r.DeviceID,
		"{date}", reqTime.UTC().Format("2006/01/02/15/04"),
		"{time}", strconv.FormatInt(r.capture, 10),
	).Replace(r.prefix.String)
	return strings.TrimRight("/"+strings.TrimLeft(p, "/"), "/") + "/" + r.ExportID + ".jpg"
}

// Export returns one export, or an api 404.
func (s *Service) Export(ctx context.Context, op, device, id string) (*ExportInfo, error) {
	r, err := scanExport(s.db.QueryRowContext(ctx, `SELECT `+exportColumns+` FROM camera_exports WHERE export_id = $1 AND operator_id = $2 AND device_id = $3`, id, op, device))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("no export %q of camera %s", id, device)
	}
	if err != nil {
		return nil, err
	}
	return r.info(s.now()), nil
}

// Exports lists exports newest first (or oldest with asc); device may be "".
func (s *Service) Exports(ctx context.Context, op, device string, limit int, asc bool, after string) ([]*ExportInfo, string, error) {
	order, cmp := "DESC", "<"
	if asc {
		order, cmp = "ASC", ">"
	}
	var afterTime int64
	var afterID string
	if after != "" {
		ts, id, ok := strings.Cut(after, "_")
		n, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil {
			return nil, "", api.BadRequest("last_evaluated_key %q is not one this API gave out", after)
		}
		afterTime, afterID = n, id
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+exportColumns+` FROM camera_exports WHERE operator_id = $1 AND ($2 = '' OR device_id = $2)
		AND ($3 = '' OR requested_time `+cmp+` $4 OR (requested_time = $4 AND export_id `+cmp+` $3))
		ORDER BY requested_time `+order+`, export_id `+order+` LIMIT $5`, op, device, afterID, afterTime, limit)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []*ExportInfo{}
	var last *exportRow
	for rows.Next() {
		r, err := scanExport(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, r.info(s.now()))
		last = r
	}
	next := ""
	if last != nil && len(out) == limit {
		next = strconv.FormatInt(last.RequestedTime, 10) + "_" + last.ExportID
	}
	return out, next, rows.Err()
}

// exportLoop processes pending exports: woken by new ones, and polling for
// retries and for exports left by a node that stopped.
func (s *Service) exportLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for s.processOne(ctx) {
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// processOne claims and runs one due export; it reports whether it found one.
func (s *Service) processOne(ctx context.Context) bool {
	now := s.now().UnixMilli()
	var r *exportRow
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		row, err := scanExport(tx.QueryRow(`SELECT `+exportColumns+` FROM camera_exports
			WHERE status IN ('initializing', 'retrying') AND not_before <= $1
			   OR status = 'processing' AND updated_at < $2
			ORDER BY requested_time LIMIT 1`, now, now-5*60_000))
		if err != nil {
			return err
		}
		// Claim it (compare-and-set on status and updated_at, so two
		// nodes never process the same export at once).
		res, err := tx.Exec(`UPDATE camera_exports SET status = 'processing', updated_at = $1, attempts = attempts + 1
			WHERE export_id = $2 AND status = $3`, now, row.ExportID, row.Status)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			row.attempts++
			r = row
		}
		return nil
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && r == nil) {
		return false
	}
	if err != nil {
		if ctx.Err() == nil {
			slog.Warn("camera: claiming an export", "err", err)
		}
		return false
	}
	s.runExport(ctx, r)
	return true
}

// errRetry marks export failures worth another try later.
type errRetry struct {
	err   error
	after time.Duration
}

func (e *errRetry) Error() string { return e.err.Error() }
func (e *errRetry) Unwrap() error { return e.err }

func (s *Service) runExport(ctx context.Context, r *exportRow) {
	img, err := s.exportImage(ctx, r)
	if err == nil {
		err = s.storeExport(ctx, r, img)
	}
	now := s.now()
	var retry *errRetry
	switch {
	case err == nil:
		_, err = s.db.ExecContext(ctx, `UPDATE camera_exports SET status = 'completed', url = $1, expiry_time = $2, file_path = $3, error = '', updated_at = $4 WHERE export_id = $5`,
			r.URL, r.ExpiryTime, r.FilePath, now.UnixMilli(), r.ExportID)
	case errors.As(err, &retry) && r.attempts < maxExportAttempts:
		_, err = s.db.ExecContext(ctx, `UPDATE camera_exports SET status = 'retrying', error = $1, not_before = $2, updated_at = $3 WHERE export_id = $4`,
			retry.Error(), now.Add(retry.after).UnixMilli(), now.UnixMilli(), r.ExportID)
	default:
		_, err = s.db.ExecContext(ctx, `UPDATE camera_exports SET status = 'failed', error = $1, updated_at = $2 WHERE export_id = $3`,
			err.Error(), now.UnixMilli(), r.ExportID)
	}
	if err != nil && ctx.Err() == nil {
		slog.Warn("camera: recording an export's outcome", "export", r.ExportID, "err", err)
	}
}

// exportImage finds the picture at the export's moment: from the
// recording when it covers it, else from the live camera when the moment
// is now.
func (s *Service) exportImage(ctx context.Context, r *exportRow) ([]byte, error) {
	c, err := s.Get(ctx, r.OperatorID, r.DeviceID)
	if err != nil {
		return nil, fmt.Errorf("the camera was deleted")
	}
	if c.Driver == "soracom" {
		return s.upstreamExport(ctx, c, r)
	}
	now := s.now()
	t := time.UnixMilli(r.capture)
	if t.After(now.Add(2 * time.Second)) {
		return nil, fmt.Errorf("time %s is in the future", t.UTC().Format(time.RFC3339Nano))
	}
	if c.Recording {
		img, err := s.rec.FrameAt(ctx, c, t)
		switch {
		case err == nil:
			return img, nil
		case errors.Is(err, ErrNotYetRecorded):
			return nil, &errRetry{err, 2 * time.Second}
		case !errors.Is(err, ErrNoRecording):
			return nil, &errRetry{err, 5 * time.Second}
		}
		// In a gap: fall through to a live picture if the moment is now.
		if now.Sub(t) > s.opts.LiveWindow {
			return nil, fmt.Errorf("no recording at %s: %v", t.UTC().Format(time.RFC3339), err)
		}
	} else if now.Sub(t) > s.opts.LiveWindow {
		return nil, fmt.Errorf("no recording at %s: recording is off for this camera, so only moments within %s of the request can be exported (from the live picture)",
			t.UTC().Format(time.RFC3339), s.opts.LiveWindow)
	}
	gctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	img, _, err := s.Snapshot(gctx, c)
	if err != nil {
		return nil, &errRetry{fmt.Errorf("live picture: %w", err), 3 * time.Second}
	}
	return img, nil
}

// storeExport keeps the JPEG (in the blob store, and in Harvest Files when
// asked) and sets the signed URL, valid ExportTTL from now.
func (s *Service) storeExport(ctx context.Context, r *exportRow, img []byte) error {
	if err := s.blobs.Bucket.WriteAll(ctx, r.blobKey, img, nil); err != nil {
		return &errRetry{err, 2 * time.Second}
	}
	if r.prefix.Valid {
		p := s.exportPath(r, time.UnixMilli(r.RequestedTime))
		if _, _, err := s.files.Put(ctx, r.OperatorID, p, "image/jpeg", bytes.NewReader(img)); err != nil {
			return fmt.Errorf("storing in Harvest Files at %s: %w", p, err)
		}
		r.FilePath = p
	}
	u, err := s.blobs.SignedURL(ctx, r.blobKey, s.opts.ExportTTL)
	if err != nil {
		return &errRetry{err, 2 * time.Second}
	}
	r.URL, r.ExpiryTime = u, s.now().Add(s.opts.ExportTTL).UnixMilli()
	return nil
}
