package camera

// Continuous recording: every recording camera's session feeds a writer
// goroutine that cuts the H.264 stream into fragmented-MP4 segments (an
// init block, then a moof+mdat "part" about every second, fsynced), rotated
// at the first IDR after SegmentDuration. A segment grows in a local spool
// file; when it closes it is uploaded to the blob store under
// _cameras/<op>/<device>/<start-ms>.mp4 and indexed in camera_segments.
// Spool files left by a crash are uploaded and indexed by the next run
// (sweepSpool). The time base is the receive wall clock: a segment starts at
// the wall time of its first IDR and the media timestamps run from there;
// segments cut by rotation continue the same timeline, so the next one
// starts exactly where the previous one ends and Periods joins them, while a
// disconnect or dropped frames (Frame.Gap) close the segment at its last
// frame and the next one starts later: a gap.
//
// FrameAt seeks into the one segment holding the moment with the ffmpeg CLI.

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	amp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	gcblob "gocloud.dev/blob"

	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
	"github.com/nagare-iot/nagare/internal/camera/snapshot"
)

// Recording errors.
var (
	// ErrNoRecording: nothing was recorded at that moment (a gap, or
	// recording was off).
	ErrNoRecording = errors.New("no recording at that moment")
	// ErrNotYetRecorded: the moment is in the segment being written and
	// has not reached storage yet; try again shortly.
	ErrNotYetRecorded = errors.New("that moment is not stored yet")
)

// Period is a recorded stretch of time (SoraCam's records entry).
type Period struct {
	StartTime int64  `json:"startTime"`
	EndTime   *int64 `json:"endTime,omitempty"` // absent while recording
}

// RecordOptions tune recording. Zero values take the defaults.
type RecordOptions struct {
	// SpoolDir holds the segments being written (default
	// os.TempDir()/nagare-spool; servers use <data dir>/spool).
	SpoolDir string
	// SegmentDuration is the minimum segment length: a new segment starts
	// at the first IDR after it (default 5 min).
	SegmentDuration time.Duration
	// PartDuration is how often the growing segment is flushed (and
	// fsynced) to the spool (default 1 s).
	PartDuration time.Duration
	// RetentionEvery is how often old segments are deleted (default 5 min).
	RetentionEvery time.Duration
	// SweepEvery is how often spool files nobody writes (left by a crash
	// or a failed upload) are uploaded (default 1 min).
	SweepEvery time.Duration
	// Buffer is how many frames may queue between a session and its
	// writer before the session drops frames (default 256).
	Buffer int
	// MaxSegmentBytes caps a segment; a bigger one is cut at the next IDR
	// (default 1 GiB).
	MaxSegmentBytes int64
}

func (o RecordOptions) withDefaults() RecordOptions {
	if o.SpoolDir == "" {
		o.SpoolDir = filepath.Join(os.TempDir(), "nagare-spool")
	}
	if o.SegmentDuration <= 0 {
		o.SegmentDuration = 5 * time.Minute
	}
	if o.PartDuration <= 0 {
		o.PartDuration = time.Second
	}
	if o.RetentionEvery <= 0 {
		o.RetentionEvery = 5 * time.Minute
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Minute
	}
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.MaxSegmentBytes <= 0 {
		o.MaxSegmentBytes = 1 << 30
	}
	return o
}

// SetSpoolDir sets the directory for segments being written (call before
// Start; e.g. <data dir>/spool).
func (s *Service) SetSpoolDir(dir string) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.rec.opts.SpoolDir = dir
}

// SetRecordOptions replaces the recording options (call before Start); an
// empty SpoolDir keeps the one set before.
func (s *Service) SetRecordOptions(o RecordOptions) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if o.SpoolDir == "" {
		o.SpoolDir = s.rec.opts.SpoolDir
	}
	s.rec.opts = o
}

const (
	timescale      = 90000
	maxPartBytes   = 32 << 20         // flush a part early beyond this
	maxDrift       = time.Second      // re-anchor the timeline at rotation beyond this
	idleClose      = 15 * time.Second // close the segment after this without frames
	maxJump        = 10 * time.Second // rotate at once beyond this (clock step)
	maxExportBytes = 20 << 20         // cap on ffmpeg's JPEG output
	uploadTimeout  = 5 * time.Minute
	pruneBatch     = 200
)

// Recorder writes cameras' streams as fMP4 segments into the blob store.
type Recorder struct {
	s *Service

	mu   sync.Mutex
	opts RecordOptions
	cams map[string]*camRec // operator/device → local state
	busy map[string]bool    // spool files a writer or an upload owns

	ffOnce sync.Once
	ffsem  chan struct{}
	ffpath string
}

// camRec is what a camera has in the spool: the segment being written and
// closed segments not indexed yet. Guarded by Recorder.mu.
type camRec struct {
	cur    *segment
	closed []*segment
	lastMs int64 // end of the latest segment written by this process
}

// segment is a spool file's bookkeeping. Fields after path are guarded by
// Recorder.mu.
type segment struct {
	op, dev string
	startMs int64
	path    string

	storedMs int64 // moments before this are in the spool file
	endMs    int64 // set when closed
	bytes    int64
	frames   int64
}

func newRecorder(s *Service) *Recorder {
	return &Recorder{s: s, cams: map[string]*camRec{}, busy: map[string]bool{}}
}

func (r *Recorder) options() RecordOptions {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts.withDefaults()
}

func (r *Recorder) camLocked(op, dev string) *camRec {
	k := op + "/" + dev
	cr := r.cams[k]
	if cr == nil {
		cr = &camRec{}
		r.cams[k] = cr
	}
	return cr
}

// spoolPath is <spool>/<op>/<device>/<start-ms>.mp4 (names path-escaped).
func spoolPath(dir, op, dev string, startMs int64) string {
	return filepath.Join(dir, url.PathEscape(op), url.PathEscape(dev), strconv.FormatInt(startMs, 10)+".mp4")
}

func segmentKey(op, dev string, startMs int64) string {
	return "_cameras/" + op + "/" + dev + "/" + strconv.FormatInt(startMs, 10) + ".mp4"
}

// start records the session's frames until stop is called. stop waits
// until the last segment is closed and uploaded.
func (r *Recorder) start(ctx context.Context, c *Camera, sess *rtsp.Session) (stop func()) {
	o := r.options()
	ch, unsubscribe := sess.Subscribe(o.Buffer)
	w := &segWriter{r: r, o: o, op: c.OperatorID, dev: c.DeviceID, sess: sess}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx, ch)
	}()
	return func() {
		unsubscribe()
		<-done
	}
}

// ---------------------------------------------------------------------------
// Writing.

// segWriter turns one camera's frames into segments. Only its goroutine
// touches it.
type segWriter struct {
	r       *Recorder
	o       RecordOptions
	op, dev string
	sess    *rtsp.Session
	uploads sync.WaitGroup
	lastIn  time.Time // arrival of the last frame

	seg  *segment
	f    *os.File
	size int64 // bytes written and synced

	// Timeline: a frame of PTS p is shown at anchorWall + (p - anchorPTS).
	anchorWall time.Time
	anchorPTS  int64
	startWall  time.Time // wall time of the segment's first picture
	firstDTS   int64
	firstOff   int64 // PTS - DTS of the first sample (where the file's presentation starts)
	minDrift   time.Duration
	sps, pps   []byte

	decode    int64 // file decode time after the samples handed to parts
	part      []*fmp4.Sample
	partBase  int64
	partBytes int
	seq       uint32
	prev      *heldSample // one sample of look-ahead: its duration comes from the next
	lastDur   int64
	lastFlush time.Time

	errLogged time.Time
}

type heldSample struct {
	dts, pts int64
	idr      bool
	payload  []byte
}

func (w *segWriter) run(ctx context.Context, ch <-chan rtsp.Frame) {
	tick := time.NewTicker(w.o.PartDuration / 2)
	defer tick.Stop()
	defer w.uploads.Wait()
	for {
		select {
		case f, ok := <-ch:
			if !ok {
				w.finish()
				return
			}
			w.frame(f)
		case <-tick.C:
			switch {
			case w.seg == nil:
			case w.sess != nil && !w.sess.Status().Connected || time.Since(w.lastIn) > idleClose:
				// The camera is gone (the session reconnects and flags the
				// next frame as a gap): the segment ends at its last frame,
				// so Periods and exports see the gap now.
				w.finish()
			case len(w.part) > 0 && time.Since(w.lastFlush) >= w.o.PartDuration:
				w.flush()
			}
		case <-ctx.Done():
			// Keep what is queued, then close the segment.
		drain:
			for {
				select {
				case f, ok := <-ch:
					if !ok {
						break drain
					}
					w.frame(f)
				default:
					break drain
				}
			}
			w.finish()
			return
		}
	}
}

// durTicks converts a Duration made from 90 kHz ticks back to ticks.
func durTicks(d time.Duration) int64 {
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	t := rem * 9
	if t >= 0 {
		t = (t + 50000) / 100000
	} else {
		t = (t - 50000) / 100000
	}
	return sec*timescale + t
}

func ticksDur(t int64) time.Duration {
	return time.Duration(t/timescale)*time.Second + time.Duration(t%timescale)*time.Second/timescale
}

func (w *segWriter) wallOf(pts int64) time.Time { return w.anchorWall.Add(ticksDur(pts - w.anchorPTS)) }

func (w *segWriter) frame(f rtsp.Frame) {
	w.lastIn = time.Now()
	dts, pts := durTicks(f.DTS), durTicks(f.PTS)
	if f.Gap && w.seg != nil {
		w.finish() // the stream broke: the segment ends at its last frame
	}
	if w.seg != nil && f.IDR {
		drift := f.Time.Sub(w.wallOf(pts))
		w.minDrift = min(w.minDrift, drift)
		jump := drift > maxJump || drift < -maxJump
		rotate := ticksDur(dts-w.firstDTS) >= w.o.SegmentDuration || jump ||
			!bytes.Equal(f.SPS, w.sps) || !bytes.Equal(f.PPS, w.pps) || w.size >= w.o.MaxSegmentBytes
		if rotate {
			w.release(dts, true)
			w.flush()
			if jump || w.minDrift > maxDrift || w.minDrift < -maxDrift {
				// The wall clock and the camera's clock parted: start a new
				// timeline from this IDR's arrival.
				w.closeSeg(w.startWall.Add(ticksDur(w.decode)))
				w.open(f, dts, pts, reanchor)
			} else {
				w.closeSeg(w.wallOf(pts))
				w.open(f, dts, pts, continued)
			}
		}
	}
	if w.seg == nil {
		if !f.IDR {
			return // wait for a decodable start
		}
		if w.open(f, dts, pts, fresh); w.seg == nil {
			return
		}
	}
	w.release(dts, true)
	payload, err := h264.AVCC(stripParams(f.AU)).Marshal()
	if err != nil || len(payload) == 0 {
		return
	}
	w.prev = &heldSample{dts: dts, pts: pts, idr: f.IDR, payload: payload}
	if w.decode-w.partBase >= durTicks(w.o.PartDuration) || w.partBytes >= maxPartBytes {
		w.flush()
	}
}

// stripParams drops access unit delimiters and parameter sets (they are in
// the init block; a change of them starts a new segment).
func stripParams(au [][]byte) [][]byte {
	out := make([][]byte, 0, len(au))
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSPS, h264.NALUTypePPS:
			continue
		}
		out = append(out, n)
	}
	return out
}

// release moves the held sample into the part, its duration ending at
// nextDTS (or, without a next sample, lasting as long as the one before).
func (w *segWriter) release(nextDTS int64, hasNext bool) {
	p := w.prev
	if p == nil {
		return
	}
	w.prev = nil
	var dur int64
	switch {
	case hasNext:
		dur = nextDTS - p.dts
	case w.lastDur > 0:
		dur = w.lastDur
	default:
		dur = timescale / 25
	}
	dur = min(max(dur, 1), 10*timescale)
	w.lastDur = dur
	if len(w.part) == 0 {
		w.partBase = w.decode
	}
	w.part = append(w.part, &fmp4.Sample{
		Duration:        uint32(dur),
		PTSOffset:       int32(max(p.pts-p.dts, 0)),
		IsNonSyncSample: !p.idr,
		Payload:         p.payload,
	})
	w.partBytes += len(p.payload)
	w.decode += dur
}

// How a segment's timeline relates to the previous segment's.
const (
	continued = iota // cut by rotation: same timeline, starts where the last one ended
	reanchor         // cut by rotation, timeline re-anchored to this IDR's arrival
	fresh            // after a gap (or the first): new timeline
)

// open starts a segment at IDR f.
func (w *segWriter) open(f rtsp.Frame, dts, pts int64, mode int) {
	r := w.r
	if mode != continued {
		w.anchorWall, w.anchorPTS = f.Time, pts
	}
	start := w.wallOf(pts)
	r.mu.Lock()
	cr := r.camLocked(w.op, w.dev)
	if ms := start.UnixMilli(); mode == reanchor && ms < cr.lastMs || mode == fresh && ms <= cr.lastMs {
		// A new timeline must not reach back into the previous segment:
		// after a rotation it touches it, after a gap the gap stays visible.
		to := cr.lastMs
		if mode == fresh {
			to++
		}
		w.anchorWall = w.anchorWall.Add(time.UnixMilli(to).Sub(start.Truncate(time.Millisecond)))
		start = w.wallOf(pts)
	}
	startMs := start.UnixMilli()
	path := spoolPath(w.o.SpoolDir, w.op, w.dev, startMs)
	for r.busy[path] || fileExists(path) {
		startMs++
		path = spoolPath(w.o.SpoolDir, w.op, w.dev, startMs)
	}
	r.busy[path] = true
	r.mu.Unlock()

	fail := func(err error) {
		w.logErr("opening a segment", err)
		r.mu.Lock()
		delete(r.busy, path)
		r.mu.Unlock()
	}
	var file *os.File
	var err error
	for range 2 { // a sweep may remove the empty directory in between
		if err = os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
			if file, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); !errors.Is(err, fs.ErrNotExist) {
				break
			}
		}
	}
	if err != nil {
		fail(err)
		return
	}
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{
		ID: 1, TimeScale: timescale,
		Codec: &fmp4.CodecH264{SPS: f.SPS, PPS: f.PPS},
	}}}
	var buf seekablebuffer.Buffer
	if err = init.Marshal(&buf); err == nil {
		_, err = file.Write(buf.Bytes())
	}
	if err == nil {
		err = file.Sync()
	}
	if err != nil {
		file.Close()
		os.Remove(path)
		fail(err)
		return
	}
	w.f, w.size = file, int64(buf.Len())
	w.seg = &segment{op: w.op, dev: w.dev, startMs: startMs, path: path, storedMs: startMs, bytes: w.size}
	w.startWall = start
	w.firstDTS, w.firstOff = dts, max(pts-dts, 0)
	w.minDrift = f.Time.Sub(start)
	w.sps, w.pps = f.SPS, f.PPS
	w.decode, w.part, w.partBase, w.partBytes, w.seq, w.lastFlush = 0, nil, 0, 0, 1, time.Now()
	r.mu.Lock()
	cr.cur = w.seg
	r.mu.Unlock()
}

// flush writes the collected samples as one part and syncs it.
func (w *segWriter) flush() {
	if w.seg == nil || len(w.part) == 0 {
		return
	}
	part := fmp4.Part{SequenceNumber: w.seq, Tracks: []*fmp4.PartTrack{{
		ID: 1, BaseTime: uint64(w.partBase), Samples: w.part,
	}}}
	var buf seekablebuffer.Buffer
	err := part.Marshal(&buf)
	if err == nil {
		_, err = w.f.Write(buf.Bytes())
	}
	if err == nil {
		err = w.f.Sync()
	}
	n := len(w.part)
	w.part, w.partBytes, w.lastFlush = nil, 0, time.Now()
	if err != nil {
		w.logErr("writing a segment", err)
		w.decode = w.partBase // what is in the file
		_ = w.f.Truncate(w.size)
		w.prev = nil
		w.closeSeg(w.startWall.Add(ticksDur(w.decode)))
		return
	}
	w.seq++
	w.size += int64(buf.Len())
	// Every picture shown before the decode time of the first sample not
	// yet written is in the file (a frame is decoded no later than shown).
	stored := w.startWall.Add(ticksDur(w.decode - w.firstOff)).UnixMilli()
	w.r.mu.Lock()
	w.seg.storedMs = max(stored, w.seg.startMs)
	w.seg.bytes = w.size
	w.seg.frames += int64(n)
	w.r.mu.Unlock()
}

// finish closes the segment at its last frame (a gap, or the end).
func (w *segWriter) finish() {
	if w.seg == nil {
		return
	}
	w.release(0, false)
	w.flush()
	if w.seg != nil {
		w.closeSeg(w.startWall.Add(ticksDur(w.decode)))
	}
}

// closeSeg closes the spool file and hands it to an upload.
func (w *segWriter) closeSeg(end time.Time) {
	seg := w.seg
	if seg == nil {
		return
	}
	w.seg = nil
	w.prev, w.part = nil, nil
	err := w.f.Close()
	w.f = nil
	r := w.r
	r.mu.Lock()
	cr := r.camLocked(w.op, w.dev)
	cr.cur = nil
	seg.endMs = max(end.UnixMilli(), seg.startMs+1)
	empty := seg.frames == 0
	if !empty {
		cr.closed = append(cr.closed, seg)
		cr.lastMs = seg.endMs
	}
	r.mu.Unlock()
	if err != nil {
		w.logErr("closing a segment", err) // its parts were synced: upload them anyway
	}
	if empty {
		os.Remove(seg.path)
		r.mu.Lock()
		delete(r.busy, seg.path)
		r.mu.Unlock()
		return
	}
	w.uploads.Add(1)
	go func() {
		defer w.uploads.Done()
		ctx, cancel := context.WithTimeout(context.Background(), uploadTimeout)
		defer cancel()
		if err := r.upload(ctx, seg); err != nil {
			slog.Warn("camera: uploading a recorded segment (will retry)", "camera", seg.dev, "segment", seg.startMs, "err", err)
		}
	}()
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func (w *segWriter) logErr(what string, err error) {
	if time.Since(w.errLogged) < time.Minute {
		return
	}
	w.errLogged = time.Now()
	slog.Warn("camera: recording: "+what, "camera", w.dev, "err", err)
}

// upload stores a closed spool file in the blob store, indexes it and
// removes it. On failure the file stays for the next sweep.
func (r *Recorder) upload(ctx context.Context, seg *segment) error {
	defer func() {
		r.mu.Lock()
		delete(r.busy, seg.path)
		r.mu.Unlock()
	}()
	f, err := os.Open(seg.path)
	if err != nil {
		return err
	}
	key := segmentKey(seg.op, seg.dev, seg.startMs)
	err = r.s.blobs.Bucket.Upload(ctx, key, f, &gcblob.WriterOptions{ContentType: "video/mp4"})
	f.Close()
	if err != nil {
		return err
	}
	if _, err := r.s.db.ExecContext(ctx, `INSERT INTO camera_segments (operator_id, device_id, start_ms, end_ms, blob_key, bytes, frames)
		VALUES ($1,$2,$3,$4,$5,$6,$7)
		ON CONFLICT (operator_id, device_id, start_ms) DO UPDATE SET end_ms = excluded.end_ms, blob_key = excluded.blob_key,
			bytes = excluded.bytes, frames = excluded.frames`,
		seg.op, seg.dev, seg.startMs, seg.endMs, key, seg.bytes, seg.frames); err != nil {
		return err
	}
	r.mu.Lock()
	if cr := r.cams[seg.op+"/"+seg.dev]; cr != nil {
		cr.closed = slices.DeleteFunc(cr.closed, func(x *segment) bool { return x.path == seg.path })
	}
	r.mu.Unlock()
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ---------------------------------------------------------------------------
// Spool recovery.

// sweepSpool uploads and indexes the spool files nobody is writing: those
// left by a crash (cut back to their last complete part) or by a failed
// upload.
func (r *Recorder) sweepSpool(ctx context.Context) {
	dir := r.options().SpoolDir
	ops, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			slog.Warn("camera: reading the recording spool", "dir", dir, "err", err)
		}
		return
	}
	for _, opd := range ops {
		if !opd.IsDir() || strings.HasPrefix(opd.Name(), ".") {
			continue
		}
		op, err := url.PathUnescape(opd.Name())
		if err != nil {
			continue
		}
		devs, _ := os.ReadDir(filepath.Join(dir, opd.Name()))
		for _, devd := range devs {
			dev, err := url.PathUnescape(devd.Name())
			if err != nil || !devd.IsDir() {
				continue
			}
			files, _ := os.ReadDir(filepath.Join(dir, opd.Name(), devd.Name()))
			for _, fe := range files {
				if ctx.Err() != nil {
					return
				}
				start, err := strconv.ParseInt(strings.TrimSuffix(fe.Name(), ".mp4"), 10, 64)
				if err != nil || !strings.HasSuffix(fe.Name(), ".mp4") {
					continue
				}
				path := filepath.Join(dir, opd.Name(), devd.Name(), fe.Name())
				if err := r.recoverFile(ctx, op, dev, start, path); err != nil {
					slog.Warn("camera: recovering a spooled segment", "file", path, "err", err)
				}
			}
			_ = os.Remove(filepath.Join(dir, opd.Name(), devd.Name())) // if empty
		}
	}
}

func (r *Recorder) recoverFile(ctx context.Context, op, dev string, startMs int64, path string) error {
	r.mu.Lock()
	if r.busy[path] {
		r.mu.Unlock()
		return nil
	}
	r.busy[path] = true
	r.mu.Unlock()
	valid, dur, frames, err := scanSegment(path)
	if err == nil && frames > 0 {
		if fi, serr := os.Stat(path); serr == nil && fi.Size() > valid {
			err = os.Truncate(path, valid) // a part torn by the crash
		}
	}
	if err != nil || frames == 0 {
		r.mu.Lock()
		delete(r.busy, path)
		r.mu.Unlock()
		if err != nil {
			return err
		}
		return os.Remove(path) // nothing playable
	}
	seg := &segment{op: op, dev: dev, startMs: startMs, path: path,
		endMs: startMs + max(ticksDur(dur).Milliseconds(), 1), bytes: valid, frames: frames}
	seg.storedMs = seg.endMs
	slog.Info("camera: uploading a spooled segment", "camera", dev, "segment", startMs, "frames", frames)
	return r.upload(ctx, seg)
}

// scanSegment reads a spool file's boxes: ftyp, moov, then moof+mdat
// pairs. It returns the length of its complete prefix, the decode time
// after its last sample (ticks) and the number of samples.
func scanSegment(path string) (valid, dur, frames int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	valid, err = walkParts(f, func(p partInfo) bool {
		end := p.base
		for _, d := range p.durs {
			end += int64(d)
		}
		dur = max(dur, end)
		frames += int64(len(p.durs))
		return true
	})
	return valid, dur, frames, err
}

// partInfo is the timing of one part's samples (file ticks).
type partInfo struct {
	base int64    // decode time of the first sample
	durs []uint32 // sample durations
	offs []int64  // composition offsets (PTS - DTS)
}

// walkParts calls fn with each complete moof+mdat pair after the init
// block, until fn returns false or the data ends (at a torn part too). It
// returns the length of the complete prefix walked.
func walkParts(f *os.File, fn func(partInfo) bool) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	var off int64
	header := func() (typ string, boxSize int64, ok bool) {
		var h [16]byte
		if off+8 > size {
			return "", 0, false
		}
		if _, err := f.ReadAt(h[:8], off); err != nil {
			return "", 0, false
		}
		boxSize = int64(binary.BigEndian.Uint32(h[:4]))
		typ = string(h[4:8])
		if boxSize == 1 {
			if _, err := f.ReadAt(h[8:16], off+8); err != nil {
				return "", 0, false
			}
			boxSize = int64(binary.BigEndian.Uint64(h[8:16]))
		}
		if boxSize < 8 || off+boxSize > size {
			return "", 0, false
		}
		return typ, boxSize, true
	}
	for _, want := range []string{"ftyp", "moov"} {
		typ, n, ok := header()
		if !ok || typ != want {
			return 0, fmt.Errorf("not a recorded segment (no complete %s)", want)
		}
		off += n
	}
	valid := off
	for {
		typ, n, ok := header()
		if !ok || typ != "moof" || n > 4<<20 {
			return valid, nil
		}
		moof := make([]byte, n)
		if _, err := f.ReadAt(moof, off); err != nil {
			return valid, nil
		}
		off += n
		if typ, m, ok := header(); !ok || typ != "mdat" {
			return valid, nil
		} else {
			off += m
		}
		p, err := parseMoof(moof)
		if err != nil {
			return valid, nil
		}
		valid = off
		if !fn(p) {
			return valid, nil
		}
	}
}

// parseMoof reads the sample timing of a moof box (one track).
func parseMoof(b []byte) (partInfo, error) {
	var p partInfo
	var defDur uint32
	seen := false
	_, err := amp4.ReadBoxStructure(bytes.NewReader(b), func(h *amp4.ReadHandle) (any, error) {
		switch h.BoxInfo.Type {
		case amp4.BoxTypeMoof(), amp4.BoxTypeTraf():
			return h.Expand()
		case amp4.BoxTypeTfhd():
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			if t := box.(*amp4.Tfhd); t.GetFlags()&amp4.TfhdDefaultSampleDurationPresent != 0 {
				defDur = t.DefaultSampleDuration
			}
		case amp4.BoxTypeTfdt():
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			p.base = int64(box.(*amp4.Tfdt).GetBaseMediaDecodeTime())
		case amp4.BoxTypeTrun():
			if seen {
				return nil, nil
			}
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			t := box.(*amp4.Trun)
			seen = true
			for i, e := range t.Entries {
				d := e.SampleDuration
				if t.GetFlags()&0x100 == 0 {
					d = defDur
				}
				p.durs = append(p.durs, d)
				p.offs = append(p.offs, t.GetSampleCompositionTimeOffset(i))
			}
		}
		return nil, nil
	})
	if err == nil && !seen {
		err = errors.New("moof without trun")
	}
	return p, err
}

// seekPoint finds the picture shown at presentation offset x (ticks after
// the segment's first picture): it returns the offset of that picture's
// own timestamp, which is what ffmpeg's -ss needs (it outputs the first
// picture at or after the seek point, not the one on screen then).
func seekPoint(f *os.File, x int64) (int64, error) {
	var first, best, shownEnd int64
	have, found := false, false
	_, err := walkParts(f, func(p partInfo) bool {
		dts := p.base
		if have && dts > first+x {
			return false // later pictures are shown after x
		}
		for i, d := range p.durs {
			pts := dts + p.offs[i]
			if !have {
				first, have = pts, true
			}
			if pts <= first+x && (!found || pts > best) {
				best, found = pts, true
			}
			shownEnd = max(shownEnd, pts+int64(d))
			dts += int64(d)
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case !found || first+x >= shownEnd:
		return 0, fmt.Errorf("%w: the recorded segment has no picture %.3f s after its start", ErrNoRecording, float64(x)/timescale)
	}
	return best - first, nil
}

// ---------------------------------------------------------------------------
// Reading.

// FrameAt returns the recorded picture at t as a JPEG.
func (r *Recorder) FrameAt(ctx context.Context, c *Camera, t time.Time) ([]byte, error) {
	ms := t.UnixMilli()
	f, startMs, err := r.openLocal(c, ms)
	if err != nil {
		return nil, err
	}
	if f == nil {
		var key string
		var endMs int64
		err := r.s.db.QueryRowContext(ctx, `SELECT start_ms, end_ms, blob_key FROM camera_segments
			WHERE operator_id = $1 AND device_id = $2 AND start_ms <= $3 AND end_ms > $3
			ORDER BY start_ms DESC LIMIT 1`, c.OperatorID, c.DeviceID, ms).Scan(&startMs, &endMs, &key)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, r.noRecording(ctx, c, ms)
		}
		if err != nil {
			return nil, err
		}
		if f, err = r.download(ctx, key); err != nil {
			return nil, fmt.Errorf("reading recorded segment %s: %w", key, err)
		}
	}
	defer f.Close()
	at, err := seekPoint(f, (ms-startMs)*timescale/1000)
	if err != nil {
		return nil, err
	}
	return r.extract(ctx, f, at)
}

// openLocal opens the spool file holding ms, if any: the segment being
// written (ErrNotYetRecorded past its last stored part) or a closed one not
// indexed yet.
func (r *Recorder) openLocal(c *Camera, ms int64) (*os.File, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cr := r.cams[c.OperatorID+"/"+c.DeviceID]
	if cr == nil {
		return nil, 0, nil
	}
	var seg *segment
	if cur := cr.cur; cur != nil && ms >= cur.startMs {
		if ms >= cur.storedMs {
			return nil, 0, fmt.Errorf("%w: %s is being recorded; stored up to %s", ErrNotYetRecorded,
				fmtMs(ms), fmtMs(cur.storedMs))
		}
		seg = cur
	}
	for i := len(cr.closed) - 1; i >= 0 && seg == nil; i-- {
		if s := cr.closed[i]; s.startMs <= ms && ms < s.endMs {
			seg = s
		}
	}
	if seg == nil {
		return nil, 0, nil
	}
	// Opened under the lock: an upload removes the file only after taking
	// the segment off the lists, and an open file stays readable.
	f, err := os.Open(seg.path)
	if err != nil {
		return nil, 0, err
	}
	return f, seg.startMs, nil
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

// noRecording explains why nothing covers ms.
func (r *Recorder) noRecording(ctx context.Context, c *Camera, ms int64) error {
	var before, after sql.NullInt64
	_ = r.s.db.QueryRowContext(ctx, `SELECT MAX(end_ms) FROM camera_segments WHERE operator_id = $1 AND device_id = $2 AND end_ms <= $3`,
		c.OperatorID, c.DeviceID, ms).Scan(&before)
	_ = r.s.db.QueryRowContext(ctx, `SELECT MIN(start_ms) FROM camera_segments WHERE operator_id = $1 AND device_id = $2 AND start_ms > $3`,
		c.OperatorID, c.DeviceID, ms).Scan(&after)
	r.mu.Lock()
	if cr := r.cams[c.OperatorID+"/"+c.DeviceID]; cr != nil {
		for _, s := range append(slices.Clone(cr.closed), cr.cur) {
			if s == nil {
				continue
			}
			if s.startMs > ms && (!after.Valid || s.startMs < after.Int64) {
				after = sql.NullInt64{Int64: s.startMs, Valid: true}
			}
			if s != cr.cur && s.endMs <= ms && s.endMs > before.Int64 {
				before = sql.NullInt64{Int64: s.endMs, Valid: true}
			}
		}
	}
	r.mu.Unlock()
	at := fmtMs(ms)
	switch {
	case before.Valid && after.Valid:
		return fmt.Errorf("%w: %s is in a gap of the recording (from %s to %s: the camera was disconnected or frames were lost)",
			ErrNoRecording, at, fmtMs(before.Int64), fmtMs(after.Int64))
	case after.Valid:
		return fmt.Errorf("%w: %s is before the oldest kept recording (which starts at %s)", ErrNoRecording, at, fmtMs(after.Int64))
	case before.Valid:
		return fmt.Errorf("%w: %s is after the last recording (which ended at %s): the camera is not streaming", ErrNoRecording, at, fmtMs(before.Int64))
	}
	return fmt.Errorf("%w: %s: nothing is recorded for this camera", ErrNoRecording, at)
}

// download copies a segment from the blob store into an unlinked temporary
// file.
func (r *Recorder) download(ctx context.Context, key string) (*os.File, error) {
	dir := filepath.Join(r.options().SpoolDir, ".tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "seg-*.mp4")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name()) // unlinked: gone with the last descriptor
	rd, err := r.s.blobs.Bucket.NewReader(ctx, key, nil)
	if err == nil {
		_, err = io.Copy(f, rd)
		rd.Close()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// extract runs ffmpeg on the open segment file (handed over as fd 3) and
// returns the first picture at or after off (ticks after the first one).
func (r *Recorder) extract(ctx context.Context, f *os.File, off int64) ([]byte, error) {
	r.ffOnce.Do(func() {
		n, path := 2, "ffmpeg"
		if d, ok := r.s.opts.Decoder.(*snapshot.FFmpeg); ok {
			if d.MaxConcurrent > 0 {
				n = d.MaxConcurrent
			}
			if d.Path != "" {
				path = d.Path
			}
		}
		r.ffsem, r.ffpath = make(chan struct{}, n), path
	})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case r.ffsem <- struct{}{}:
		defer func() { <-r.ffsem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("export: waiting for a decoder slot: %w", ctx.Err())
	}
	us := max(off, 0) * 1_000_000 / timescale // rounded down: never past the picture
	cmd := exec.CommandContext(ctx, r.ffpath, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-ss", fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000), "-i", "/dev/fd/3",
		"-frames:v", "1", "-an", "-q:v", "3", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1")
	cmd.ExtraFiles = []*os.File{f}
	var stdout, stderr bytes.Buffer
	out := &limitWriter{w: &stdout, n: maxExportBytes}
	cmd.Stdout, cmd.Stderr = out, &limitWriter{w: &stderr, n: 16 << 10, silent: true}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case out.over:
		return nil, fmt.Errorf("export: ffmpeg output exceeds %d bytes", maxExportBytes)
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("export: ffmpeg: %w", ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("export: ffmpeg failed (%v): %s", err, strings.TrimSpace(stderr.String()))
	}
	b := stdout.Bytes()
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		return nil, fmt.Errorf("%w: ffmpeg found no picture %.3f s into the recorded segment: %s", ErrNoRecording,
			float64(off)/timescale, strings.TrimSpace(stderr.String()))
	}
	return b, nil
}

// limitWriter keeps at most n bytes; beyond that it fails the write (which
// stops ffmpeg) or, if silent, drops the rest.
type limitWriter struct {
	w      io.Writer
	n      int
	over   bool
	silent bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		if !l.silent {
			l.over = true
			return 0, errors.New("output too large")
		}
		_, _ = l.w.Write(p[:l.n])
		l.n = 0
		return len(p), nil
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// Periods lists the recorded stretches overlapping [from, to] (ms),
// clipped to that window; the one being recorded has no end.
func (r *Recorder) Periods(ctx context.Context, c *Camera, from, to int64) ([]Period, error) {
	type span struct{ start, end int64 } // end < 0: still recording
	var spans []span
	// Local state first: a segment indexed meanwhile is then in the table.
	r.mu.Lock()
	if cr := r.cams[c.OperatorID+"/"+c.DeviceID]; cr != nil {
		for _, s := range cr.closed {
			if s.startMs <= to && s.endMs >= from {
				spans = append(spans, span{s.startMs, s.endMs})
			}
		}
		if s := cr.cur; s != nil && s.startMs <= to {
			spans = append(spans, span{s.startMs, -1})
		}
	}
	r.mu.Unlock()
	rows, err := r.s.db.QueryContext(ctx, `SELECT start_ms, end_ms FROM camera_segments
		WHERE operator_id = $1 AND device_id = $2 AND start_ms <= $3 AND end_ms >= $4 ORDER BY start_ms`,
		c.OperatorID, c.DeviceID, to, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var s span
		if err := rows.Scan(&s.start, &s.end); err != nil {
			return nil, err
		}
		spans = append(spans, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	out := []Period{}
	var cur *span
	emit := func() {
		if cur == nil {
			return
		}
		p := Period{StartTime: max(cur.start, from)}
		if cur.end >= 0 {
			e := min(cur.end, to)
			p.EndTime = &e
		}
		out = append(out, p)
	}
	for i := range spans {
		s := spans[i]
		if cur != nil && (cur.end < 0 || s.start <= cur.end) { // touching or overlapping: one stretch
			if cur.end >= 0 && (s.end < 0 || s.end > cur.end) {
				cur.end = s.end
			}
			continue
		}
		emit()
		cur = &s
	}
	emit()
	return out, nil
}

// ---------------------------------------------------------------------------
// Retention.

// retentionLoop uploads leftover spool files, then deletes segments past
// their camera's retention (and those of deleted cameras), at start and
// periodically.
func (r *Recorder) retentionLoop(ctx context.Context) {
	o := r.options()
	_ = os.RemoveAll(filepath.Join(o.SpoolDir, ".tmp"))
	r.sweepSpool(ctx)
	r.prune(ctx)
	sweep := time.NewTicker(o.SweepEvery)
	defer sweep.Stop()
	prune := time.NewTicker(o.RetentionEvery)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			r.sweepSpool(ctx)
		case <-prune.C:
			r.prune(ctx)
		}
	}
}

// prune deletes expired segments in batches, each blob before its row (so a
// crash in between leaves a row to retry, never an orphan blob).
func (r *Recorder) prune(ctx context.Context) int {
	deleted := 0
	for ctx.Err() == nil {
		now := r.s.now().UnixMilli()
		rows, err := r.s.db.QueryContext(ctx, `SELECT s.operator_id, s.device_id, s.start_ms, s.blob_key
			FROM camera_segments s LEFT JOIN cameras c ON c.operator_id = s.operator_id AND c.device_id = s.device_id
			WHERE c.device_id IS NULL OR s.end_ms < $1 - CAST(c.retention_days AS BIGINT) * 86400000
			ORDER BY s.end_ms LIMIT `+strconv.Itoa(pruneBatch), now)
		if err != nil {
			if ctx.Err() == nil {
				slog.Warn("camera: finding expired recordings", "err", err)
			}
			return deleted
		}
		type seg struct {
			op, dev string
			start   int64
			key     string
		}
		var batch []seg
		for rows.Next() {
			var s seg
			if err := rows.Scan(&s.op, &s.dev, &s.start, &s.key); err != nil {
				rows.Close()
				slog.Warn("camera: finding expired recordings", "err", err)
				return deleted
			}
			batch = append(batch, s)
		}
		rows.Close()
		if len(batch) == 0 {
			return deleted
		}
		var gone []seg
		for _, s := range batch {
			if err := r.s.blobs.Bucket.Delete(ctx, s.key); err != nil && !blob.IsNotFound(err) {
				slog.Warn("camera: deleting an expired recording", "key", s.key, "err", err)
				continue
			}
			r.s.blobs.PruneDirs(s.key)
			gone = append(gone, s)
		}
		if len(gone) == 0 {
			return deleted
		}
		err = r.s.db.Tx(ctx, func(tx *sql.Tx) error {
			for _, s := range gone {
				if _, err := tx.ExecContext(ctx, `DELETE FROM camera_segments WHERE operator_id = $1 AND device_id = $2 AND start_ms = $3`,
					s.op, s.dev, s.start); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			if ctx.Err() == nil {
				slog.Warn("camera: unindexing expired recordings", "err", err)
			}
			return deleted
		}
		deleted += len(gone)
		if len(batch) < pruneBatch || len(gone) < len(batch) {
			return deleted
		}
	}
	return deleted
}
