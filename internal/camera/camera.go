// Package camera owns nagare's cameras: the SoraCam-style registry, live
// snapshots (cold grabs and warm per-camera sessions), image exports, the
// remote-command RTSP snapshot of a SIM, and (in record.go) continuous
// recording. The RTSP client lives in camera/rtsp, JPEG decoding in
// camera/snapshot.
package camera

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
	"github.com/nagare-iot/nagare/internal/camera/snapshot"
	"github.com/nagare-iot/nagare/internal/credentials"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/inventory"
	"github.com/nagare-iot/nagare/internal/store"
)

// Options configure the camera service.
type Options struct {
	RTSP       rtsp.Options
	Decoder    snapshot.Decoder
	ExportTTL  time.Duration // how long an export's URL works (10 min, like SoraCam)
	LiveWindow time.Duration // an export at T within this of now may use a live snapshot (30s)
	Node       string
}

// Service implements the camera API.
type Service struct {
	db    *store.DB
	blobs *blob.Store
	files *harvest.Files
	creds *credentials.Service
	inv   *inventory.Service
	opts  Options
	now   func() time.Time

	mu       sync.Mutex
	sessions map[string]*liveSession // operator/device

	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	rec    *Recorder
	leaser Leaser // nil: this node runs every session
}

type liveSession struct {
	s      *rtsp.Session
	cancel context.CancelFunc
	done   chan struct{}
	url    string
	rec    func() // stops the recorder feed, if recording
}

// New creates the service; Start begins sessions and export processing.
func New(db *store.DB, blobs *blob.Store, files *harvest.Files, creds *credentials.Service, inv *inventory.Service, opts Options) *Service {
	if opts.Decoder == nil {
		opts.Decoder = snapshot.Default()
	}
	if opts.ExportTTL <= 0 {
		opts.ExportTTL = 10 * time.Minute
	}
	if opts.LiveWindow <= 0 {
		opts.LiveWindow = 30 * time.Second
	}
	s := &Service{db: db, blobs: blobs, files: files, creds: creds, inv: inv, opts: opts, now: time.Now,
		sessions: map[string]*liveSession{}, wake: make(chan struct{}, 1)}
	s.rec = newRecorder(s)
	return s
}

// Camera is a registered camera.
type Camera struct {
	OperatorID    string
	DeviceID      string
	Name          string
	Driver        string // rtsp or soracom
	RTSPURL       string // without credentials
	CredentialsID string // username-password credential for the camera
	Recording     bool
	RetentionDays int
	SnapshotCache bool
	Upstream      *Upstream
	Created       int64
	Updated       int64
	LastConnected int64
}

// Upstream is the soracom driver's target: a SORACOM-compatible API.
type Upstream struct {
	Endpoint             string `json:"endpoint"`
	AuthKeyID            string `json:"authKeyId"`
	AuthKeyCredentialsID string `json:"authKeyCredentialsId"` // api-token credential holding the auth key secret
	DeviceID             string `json:"deviceId,omitempty"`   // upstream device id (default: the same)
}

var deviceIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

const cameraColumns = `operator_id, device_id, name, driver, rtsp_url, credentials_id, recording, retention_days, snapshot_cache, upstream, created_at, updated_at, last_connected`

func scanCamera(sc interface{ Scan(...any) error }) (*Camera, error) {
	var c Camera
	var rec, snap int
	var up string
	if err := sc.Scan(&c.OperatorID, &c.DeviceID, &c.Name, &c.Driver, &c.RTSPURL, &c.CredentialsID, &rec, &c.RetentionDays, &snap, &up, &c.Created, &c.Updated, &c.LastConnected); err != nil {
		return nil, err
	}
	c.Recording, c.SnapshotCache = rec == 1, snap == 1
	if up != "" {
		c.Upstream = &Upstream{}
		_ = json.Unmarshal([]byte(up), c.Upstream)
	}
	return &c, nil
}

// Get returns a camera, or an api 404.
func (s *Service) Get(ctx context.Context, op, id string) (*Camera, error) {
	c, err := scanCamera(s.db.QueryRowContext(ctx, `SELECT `+cameraColumns+` FROM cameras WHERE operator_id = $1 AND device_id = $2`, op, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("no camera %q", id)
	}
	return c, err
}

func (s *Service) list(ctx context.Context, op string) ([]*Camera, error) {
	q := `SELECT ` + cameraColumns + ` FROM cameras`
	args := []any{}
	if op != "" {
		q += ` WHERE operator_id = $1`
		args = append(args, op)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY operator_id, device_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Camera
	for rows.Next() {
		c, err := scanCamera(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CameraInput is the body of create and update.
type CameraInput struct {
	DeviceID      string    `json:"deviceId"`
	Name          *string   `json:"name"`
	Driver        *string   `json:"driver"`
	RTSPURL       *string   `json:"rtspUrl"`
	CredentialsID *string   `json:"credentialsId"`
	Recording     *bool     `json:"recording"`
	RetentionDays *int      `json:"retentionDays"`
	SnapshotCache *bool     `json:"snapshotCache"`
	Upstream      *Upstream `json:"upstream"`
}

// apply validates in and applies it onto c, collecting every problem.
func (s *Service) apply(ctx context.Context, c *Camera, in *CameraInput) error {
	var problems []string
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	if in.Name != nil {
		c.Name = strings.TrimSpace(*in.Name)
	}
	if in.Driver != nil {
		c.Driver = *in.Driver
	}
	if in.RTSPURL != nil {
		c.RTSPURL = *in.RTSPURL
	}
	if in.CredentialsID != nil {
		c.CredentialsID = *in.CredentialsID
	}
	if in.Recording != nil {
		c.Recording = *in.Recording
	}
	if in.RetentionDays != nil {
		c.RetentionDays = *in.RetentionDays
	}
	if in.SnapshotCache != nil {
		c.SnapshotCache = *in.SnapshotCache
	}
	if in.Upstream != nil {
		c.Upstream = in.Upstream
	}
	if len(c.Name) > 128 {
		bad("name: at most 128 characters")
	}
	switch c.Driver {
	case "rtsp":
		u, err := url.Parse(c.RTSPURL)
		switch {
		case c.RTSPURL == "":
			bad("rtspUrl is required for the rtsp driver")
		case err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "":
			bad("rtspUrl %q must be an rtsp:// URL with a host", redactURL(c.RTSPURL))
		case u.User != nil:
			bad("rtspUrl must not contain credentials; store them with POST /v1/credentials/{id} (type username-password-credentials) and set credentialsId")
		}
	case "soracom":
		if c.Upstream == nil || c.Upstream.Endpoint == "" || c.Upstream.AuthKeyID == "" || c.Upstream.AuthKeyCredentialsID == "" {
			bad("upstream needs endpoint, authKeyId and authKeyCredentialsId for the soracom driver")
		} else if u, err := url.Parse(c.Upstream.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			bad("upstream.endpoint %q must be an http(s) URL", c.Upstream.Endpoint)
		}
		if c.Recording {
			bad("recording: the soracom driver records in the upstream service, not here")
		}
	default:
		bad("driver %q must be rtsp or soracom", c.Driver)
	}
	if c.RetentionDays < 1 || c.RetentionDays > 3650 {
		bad("retentionDays %d must be between 1 and 3650", c.RetentionDays)
	}
	for _, id := range []string{c.CredentialsID, upstreamCred(c)} {
		if id == "" || s.creds == nil {
			continue
		}
		if _, err := s.creds.Describe(ctx, c.OperatorID, id); err != nil {
			bad("credentials %q not found in the credentials store", id)
		}
	}
	if len(problems) > 0 {
		return api.Invalid("%s", strings.Join(problems, "; "))
	}
	return nil
}

func upstreamCred(c *Camera) string {
	if c.Upstream == nil {
		return ""
	}
	return c.Upstream.AuthKeyCredentialsID
}

func (s *Service) create(ctx context.Context, op string, in *CameraInput) (*Camera, error) {
	if !deviceIDRE.MatchString(in.DeviceID) {
		return nil, api.Invalid("deviceId %q must be 1-64 letters, digits, _ . : or -", in.DeviceID)
	}
	now := s.now().UnixMilli()
	c := &Camera{OperatorID: op, DeviceID: in.DeviceID, Driver: "rtsp", RetentionDays: 7, SnapshotCache: true, Created: now, Updated: now}
	if err := s.apply(ctx, c, in); err != nil {
		return nil, err
	}
	if c.Name == "" {
		c.Name = c.DeviceID
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO cameras (`+cameraColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,0)`,
		c.OperatorID, c.DeviceID, c.Name, c.Driver, c.RTSPURL, c.CredentialsID, b2i(c.Recording), c.RetentionDays, b2i(c.SnapshotCache), upstreamJSON(c), now, now)
	if store.IsUniqueViolation(err) {
		return nil, api.Conflict("camera %s already exists", c.DeviceID)
	}
	if err != nil {
		return nil, err
	}
	s.syncSession(c)
	return c, nil
}

func (s *Service) update(ctx context.Context, op, id string, in *CameraInput) (*Camera, error) {
	c, err := s.Get(ctx, op, id)
	if err != nil {
		return nil, err
	}
	if in.DeviceID != "" && in.DeviceID != id {
		return nil, api.Invalid("deviceId cannot change (%s → %s)", id, in.DeviceID)
	}
	if err := s.apply(ctx, c, in); err != nil {
		return nil, err
	}
	c.Updated = s.now().UnixMilli()
	if _, err := s.db.ExecContext(ctx, `UPDATE cameras SET name = $1, driver = $2, rtsp_url = $3, credentials_id = $4, recording = $5,
		retention_days = $6, snapshot_cache = $7, upstream = $8, updated_at = $9 WHERE operator_id = $10 AND device_id = $11`,
		c.Name, c.Driver, c.RTSPURL, c.CredentialsID, b2i(c.Recording), c.RetentionDays, b2i(c.SnapshotCache), upstreamJSON(c), c.Updated, op, id); err != nil {
		return nil, err
	}
	s.syncSession(c)
	return c, nil
}

func (s *Service) delete(ctx context.Context, op, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM cameras WHERE operator_id = $1 AND device_id = $2`, op, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("no camera %q", id)
	}
	s.stopSession(op, id)
	s.release(op, id)
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func upstreamJSON(c *Camera) string {
	if c.Upstream == nil || c.Driver != "soracom" {
		return ""
	}
	b, _ := json.Marshal(c.Upstream)
	return string(b)
}

// redactURL drops userinfo from a URL for messages and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	return u.String()
}

// streamURL is the camera's RTSP URL with its stored credentials.
func (s *Service) streamURL(ctx context.Context, c *Camera) (string, error) {
	u, err := url.Parse(c.RTSPURL)
	if err != nil {
		return "", err
	}
	if c.CredentialsID != "" {
		cr, err := s.creds.Get(ctx, c.OperatorID, c.CredentialsID)
		if err != nil {
			return "", fmt.Errorf("camera credentials %s: %w", c.CredentialsID, err)
		}
		u.User = url.UserPassword(cr.Values["username"], cr.Values["password"])
	}
	return u.String(), nil
}

// Start opens the sessions of cameras that record or cache snapshots and
// starts the export worker.
func (s *Service) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	cams, err := s.list(ctx, "")
	if err != nil {
		return err
	}
	for _, c := range cams {
		s.syncSession(c)
	}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.exportLoop(ctx) }()
	go func() { defer s.wg.Done(); s.rec.retentionLoop(ctx) }()
	if s.leaser != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.ownLoop(ctx) }()
	}
	return nil
}

// Close stops sessions, recorders and workers.
func (s *Service) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.mu.Lock()
	keys := make([]string, 0, len(s.sessions))
	for k := range s.sessions {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		op, id, _ := strings.Cut(k, "/")
		s.stopSession(op, id)
		s.release(op, id) // a graceful stop hands the camera on at once
	}
	s.wg.Wait()
	s.cancel = nil
}

// syncSession starts, restarts or stops a camera's long-lived session to
// match its settings.
func (s *Service) syncSession(c *Camera) {
	if s.cancel == nil {
		return // not started (docs, tests of the registry only)
	}
	want := c.Driver == "rtsp" && (c.Recording || c.SnapshotCache)
	key := c.OperatorID + "/" + c.DeviceID
	ctx := context.Background()
	wanted := want
	if want && !s.owns(c.OperatorID, c.DeviceID) {
		want = false // another node runs it
	}
	// The URL (with its credentials) only where the session runs.
	var u string
	if want {
		var err error
		if u, err = s.streamURL(ctx, c); err != nil {
			slog.Warn("camera: no session", "camera", c.DeviceID, "err", err)
			want, wanted = false, false
			s.release(c.OperatorID, c.DeviceID)
		}
	}
	s.mu.Lock()
	cur := s.sessions[key]
	s.mu.Unlock()
	if cur != nil && (!want || cur.url != u || (cur.rec != nil) != c.Recording) {
		if wanted && !want {
			// Lost the lease (this node paused longer than the TTL):
			// the new holder records.
			slog.Warn("camera: lease lost; another node runs this camera now", "camera", c.DeviceID)
		}
		s.stopSession(c.OperatorID, c.DeviceID)
		if !wanted {
			s.release(c.OperatorID, c.DeviceID)
		}
		cur = nil
	}
	if !want || cur != nil {
		return
	}
	sctx, cancel := context.WithCancel(context.Background())
	ls := &liveSession{s: rtsp.NewSession(u, s.opts.RTSP), cancel: cancel, done: make(chan struct{}), url: u}
	if c.Recording {
		ls.rec = s.rec.start(sctx, c, ls.s)
	}
	go func() { defer close(ls.done); ls.s.Run(sctx) }()
	s.mu.Lock()
	s.sessions[key] = ls
	s.mu.Unlock()
}

func (s *Service) stopSession(op, id string) {
	key := op + "/" + id
	s.mu.Lock()
	ls := s.sessions[key]
	delete(s.sessions, key)
	s.mu.Unlock()
	if ls == nil {
		return
	}
	ls.cancel()
	<-ls.done
	if ls.rec != nil {
		ls.rec()
	}
}

func (s *Service) session(op, id string) *liveSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[op+"/"+id]
}

// Snapshot returns a JPEG of the camera's current picture: from the warm
// session's cached keyframe when there is one, else from a cold grab.
func (s *Service) Snapshot(ctx context.Context, c *Camera) ([]byte, time.Time, error) {
	if ls := s.session(c.OperatorID, c.DeviceID); ls != nil {
		if k := ls.s.Latest(); k != nil {
			img, err := s.opts.Decoder.JPEG(ctx, k)
			return img, k.Time, err
		}
	}
	u, err := s.streamURL(ctx, c)
	if err != nil {
		return nil, time.Time{}, err
	}
	return s.grab(ctx, u)
}

// grab is a cold snapshot: connect, wait for a keyframe, decode.
func (s *Service) grab(ctx context.Context, rawURL string) ([]byte, time.Time, error) {
	k, err := rtsp.Grab(ctx, rawURL, s.opts.RTSP)
	if err != nil {
		return nil, time.Time{}, err
	}
	img, err := s.opts.Decoder.JPEG(ctx, k)
	return img, k.Time, err
}

// snapshotError maps RTSP and decoding failures to API errors.
func snapshotError(err error) error {
	switch {
	case errors.Is(err, rtsp.ErrUnauthorized):
		return api.Forbidden("the camera refused the credentials (RTSP 401)")
	case errors.Is(err, rtsp.ErrUnsupportedCodec):
		return api.Errorf(422, api.CodeInvalid, "the stream is not H.264: %v", err)
	case errors.Is(err, rtsp.ErrNoKeyframe), errors.Is(err, context.DeadlineExceeded):
		return api.Errorf(504, "CAM0001", "no picture within the time limit: the camera sent no keyframe in time (its keyframe interval may be too long) or did not answer")
	case errors.Is(err, rtsp.ErrForbiddenAddress):
		return api.Forbidden("the camera's address is not allowed by this server's camera network policy")
	case errors.Is(err, rtsp.ErrTooManyRedirects):
		return api.Errorf(502, "CAM0002", "the camera redirected too many times")
	case errors.Is(err, rtsp.ErrUnreachable):
		return api.Errorf(502, "CAM0002", "the camera is unreachable: %v", err)
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	return api.Errorf(502, "CAM0003", "snapshot failed: %v", err)
}
