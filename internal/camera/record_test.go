package camera

// Recording tests run the real parts: SQLite (or PostgreSQL with
// NAGARE_TEST_POSTGRES), a file:// blob store in a temp dir, a camsim RTSP
// server on loopback looping the "testsrc" fixture (testsrc2, 10 fps, IDR
// every second, B-frames, every frame different), the rtsp session and the
// ffmpeg CLI.
//
// How "the export at T shows the frame at T" is checked: the test
// subscribes to the same session as the recorder, so it sees the very IDR
// that started the recording (same Frame, same arrival time). It finds that
// IDR in the fixture file by the hash of its slice NAL units (camsim sends
// the file's access units unchanged), which gives the fixture frame d0 shown
// at the recording's start. camsim keeps the stream's timestamps continuous
// across loops at 100 ms a frame, so at T the picture must be fixture frame
// (d0 + (T - start)/100 ms) mod 100. FrameAt(T)'s JPEG is compared with every
// decoded fixture frame (camtest.MatchFrame, mean absolute luma difference):
// the closest one must be that frame, with a difference of JPEG noise (< 10;
// neighbouring frames differ by > 20). Ts are taken 50 ms into a frame's
// 100 ms, so arrival jitter cannot flip the answer.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
	"github.com/nagare-iot/nagare/internal/store/storetest"
)

const testOp = "OPREC0000001"

func recService(t testing.TB, segDur time.Duration, spool string) *Service {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t)
	bl, err := blob.Open(ctx, "file://"+filepath.Join(t.TempDir(), "blobs"), "", []byte("test-key"), "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bl.Close() })
	s := New(db, bl, nil, nil, nil, Options{RTSP: rtsp.Options{ReconnectMin: 100 * time.Millisecond, ReconnectMax: 300 * time.Millisecond, ReadTimeout: 3 * time.Second}})
	if spool == "" {
		spool = t.TempDir()
	}
	s.SetRecordOptions(RecordOptions{SpoolDir: spool, SegmentDuration: segDur, PartDuration: 500 * time.Millisecond})
	return s
}

func recCamera(t testing.TB, s *Service, id, rtspURL string) *Camera {
	t.Helper()
	on := true
	c, err := s.create(context.Background(), testOp, &CameraInput{DeviceID: id, RTSPURL: &rtspURL, Recording: &on})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type segRow struct {
	start, end, bytes, frames int64
	key                       string
}

func segments(t testing.TB, s *Service, dev string) []segRow {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), `SELECT start_ms, end_ms, bytes, frames, blob_key FROM camera_segments
		WHERE operator_id = $1 AND device_id = $2 ORDER BY start_ms`, testOp, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []segRow
	for rows.Next() {
		var r segRow
		if err := rows.Scan(&r.start, &r.end, &r.bytes, &r.frames, &r.key); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// current returns the segment being written (a copy), or nil.
func current(s *Service, c *Camera) *segment {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if cr := s.rec.cams[c.OperatorID+"/"+c.DeviceID]; cr != nil && cr.cur != nil {
		cp := *cr.cur
		return &cp
	}
	return nil
}

// vclHash identifies an access unit by its slice NAL units.
func vclHash(au [][]byte) string {
	h := sha256.New()
	for _, n := range au {
		if len(n) > 0 {
			if typ := h264.NALUType(n[0] & 0x1f); typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
				h.Write(n)
			}
		}
	}
	return string(h.Sum(nil))
}

// fixtureIndex maps the slice hash of each access unit of an MPEG-TS file
// to its display index.
func fixtureIndex(t testing.TB, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: bufio.NewReader(f)}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	var td mpegts.TimeDecoder
	td.Initialize()
	type au struct {
		pts  int64
		hash string
	}
	var aus []au
	for _, tr := range r.Tracks() {
		if _, ok := tr.Codec.(*tscodecs.H264); ok {
			r.OnDataH264(tr, func(pts, _ int64, a [][]byte) error {
				aus = append(aus, au{td.Decode(pts), vclHash(a)})
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	slices.SortFunc(aus, func(a, b au) int { return int(a.pts - b.pts) })
	out := map[string]int{}
	for i, a := range aus {
		out[a.hash] = i
	}
	return out
}

func ffprobe(t testing.TB, file string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", append([]string{"-v", "error", "-select_streams", "v:0"}, append(args, file)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", file, err, out)
	}
	return strings.TrimSpace(string(out))
}

func download(t testing.TB, s *Service, key string) string {
	t.Helper()
	b, err := s.blobs.Bucket.ReadAll(context.Background(), key)
	if err != nil {
		t.Fatalf("segment %s: %v", key, err)
	}
	p := filepath.Join(t.TempDir(), "seg.mp4")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkFrame asserts that FrameAt(ms) shows fixture frame want.
func checkFrame(t *testing.T, s *Service, c *Camera, fixture string, ms int64, want int) {
	t.Helper()
	img, err := s.rec.FrameAt(context.Background(), c, time.UnixMilli(ms))
	if err != nil {
		t.Fatalf("FrameAt(%d): %v", ms, err)
	}
	got, diff := camtest.MatchFrame(t, fixture, img)
	if got != want || diff >= 10 {
		t.Errorf("FrameAt(%d) shows fixture frame %d (diff %.1f), want frame %d", ms, got, diff, want)
	}
}

// TestRecording records a few segments and checks their index, their
// files, rotation at the first IDR after the segment duration, and that an
// export at T shows the frame at T (in uploaded segments and in the one
// being written).
func TestRecording(t *testing.T) {
	t.Parallel()
	fixture := camtest.Fixture(t, camsim.KindTestsrc)
	cam := camtest.Camera(t, camsim.Config{File: fixture})
	const segDur = 2500 * time.Millisecond // IDR every 1 s: rotation at 3 s
	s := recService(t, segDur, "")
	c := recCamera(t, s, "cam-rec", cam.URL())

	ctx, cancel := context.WithCancel(context.Background())
	sess := rtsp.NewSession(cam.URL(), s.opts.RTSP)
	stop := s.rec.start(ctx, c, sess)
	probe, _ := sess.Subscribe(4096)
	var first rtsp.Frame
	var firstOnce sync.WaitGroup
	firstOnce.Add(1)
	go func() {
		got := false
		for f := range probe {
			if !got && f.IDR {
				first, got = f, true
				firstOnce.Done()
			}
		}
		if !got {
			firstOnce.Done()
		}
	}()
	runDone := make(chan struct{})
	go func() { defer close(runDone); sess.Run(ctx) }()
	defer func() { cancel(); <-runDone; stop() }()

	waitFor(t, 30*time.Second, "two uploaded segments", func() bool { return len(segments(t, s, c.DeviceID)) >= 2 })
	firstOnce.Wait()
	if first.AU == nil {
		t.Fatal("no IDR seen")
	}
	idx := fixtureIndex(t, fixture)
	d0, ok := idx[vclHash(first.AU)]
	if !ok {
		t.Fatal("the first IDR is not in the fixture")
	}
	segs := segments(t, s, c.DeviceID)
	anchor := segs[0].start
	if want := first.Time.UnixMilli(); anchor != want {
		t.Fatalf("first segment starts at %d, want the arrival of its IDR %d", anchor, want)
	}
	expect := func(ms int64) int { return (d0 + int((ms-anchor)/100)) % 100 }

	// The segment being written: stored parts are readable, later moments
	// are not yet.
	var cur *segment
	waitFor(t, 10*time.Second, "a stored part in the current segment", func() bool {
		cur = current(s, c)
		return cur != nil && cur.storedMs-cur.startMs >= 700
	})
	ms := cur.storedMs - 200
	ms -= (ms-anchor)%100 - 50
	checkFrame(t, s, c, fixture, ms, expect(ms))
	if _, err := s.rec.FrameAt(ctx, c, time.UnixMilli(cur.storedMs+5000)); !errors.Is(err, ErrNotYetRecorded) {
		t.Errorf("FrameAt after the stored parts: %v, want ErrNotYetRecorded", err)
	}
	periods, err := s.rec.Periods(ctx, c, anchor-1000, time.Now().UnixMilli())
	if err != nil || len(periods) != 1 || periods[0].StartTime != anchor || periods[0].EndTime != nil {
		t.Errorf("Periods while recording = %+v, %v; want one open period from %d", periods, err, anchor)
	}

	cancel()
	<-runDone
	stop()
	segs = segments(t, s, c.DeviceID)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want at least 3", len(segs))
	}
	for i, sg := range segs {
		last := i == len(segs)-1
		if i > 0 && sg.start != segs[i-1].end {
			t.Errorf("segment %d starts at %d, previous ends at %d: rotation must not leave a gap", i, sg.start, segs[i-1].end)
		}
		// Rotation at the first IDR after 2.5 s: 3 s = 30 frames.
		if !last && (sg.end-sg.start < 2999 || sg.end-sg.start > 3001 || sg.frames != 30) {
			t.Errorf("segment %d: %d ms, %d frames; want 3000 ms, 30 frames", i, sg.end-sg.start, sg.frames)
		}
		p := download(t, s, sg.key)
		if fi, _ := os.Stat(p); fi.Size() != sg.bytes {
			t.Errorf("segment %d: %d bytes stored, index says %d", i, fi.Size(), sg.bytes)
		}
		if got := ffprobe(t, p, "-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0"); got != fmt.Sprintf("h264,320,240,%d", sg.frames) {
			t.Errorf("segment %d: ffprobe %q, want h264,320,240,%d", i, got, sg.frames)
		}
		if got := ffprobe(t, p, "-show_entries", "frame=key_frame,pict_type", "-read_intervals", "%+#1", "-of", "csv=p=0"); got != "1,I" {
			t.Errorf("segment %d starts with %q, want a keyframe (1,I)", i, got)
		}
		if !last {
			for _, off := range []int64{50, 1450, 2950} {
				checkFrame(t, s, c, fixture, sg.start+off, expect(sg.start+off))
			}
		}
	}
	ctx = context.Background()
	periods, err = s.rec.Periods(ctx, c, 0, time.Now().UnixMilli())
	if err != nil || len(periods) != 1 || periods[0].EndTime == nil || *periods[0].EndTime != segs[len(segs)-1].end {
		t.Errorf("Periods after stop = %+v, %v; want one closed period", periods, err)
	}
	if _, err := s.rec.FrameAt(ctx, c, time.UnixMilli(anchor-5000)); !errors.Is(err, ErrNoRecording) || !strings.Contains(err.Error(), "before the oldest") {
		t.Errorf("FrameAt before the recording: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(s.rec.options().SpoolDir, "*", "*", "*.mp4")); len(files) != 0 {
		t.Errorf("spool not emptied: %v", files)
	}
}

// TestRecordingOverCameraRestart: a camera reboot ends a segment; the
// recording resumes after a gap; both stretches are readable.
func TestRecordingOverCameraRestart(t *testing.T) {
	t.Parallel()
	fixture := camtest.Fixture(t, camsim.KindTestsrc)
	cam := camtest.Camera(t, camsim.Config{File: fixture})
	s := recService(t, time.Minute, "")
	c := recCamera(t, s, "cam-restart", cam.URL())
	s.opts.LiveWindow = time.Millisecond // an export in a gap fails instead of taking a live picture
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	waitFor(t, 15*time.Second, "2 s recorded", func() bool {
		cur := current(s, c)
		return cur != nil && cur.storedMs-cur.startMs >= 2000
	})
	if err := cam.Restart(); err != nil {
		t.Fatal(err)
	}
	var periods []Period
	waitFor(t, 20*time.Second, "a second period with 2 s stored", func() bool {
		var err error
		if periods, err = s.rec.Periods(ctx, c, 0, time.Now().UnixMilli()); err != nil {
			t.Fatal(err)
		}
		cur := current(s, c)
		return len(periods) == 2 && cur != nil && cur.startMs == periods[1].StartTime && cur.storedMs-cur.startMs >= 2000
	})
	t.Logf("periods over the restart: %d–%d, gap %d ms, %d–", periods[0].StartTime, *periods[0].EndTime,
		periods[1].StartTime-*periods[0].EndTime, periods[1].StartTime)
	if periods[0].EndTime == nil || *periods[0].EndTime >= periods[1].StartTime || periods[1].EndTime != nil {
		t.Fatalf("periods %+v: want a closed one, a gap, and an open one", periods)
	}
	gapMid := (*periods[0].EndTime + periods[1].StartTime) / 2
	if _, err := s.rec.FrameAt(ctx, c, time.UnixMilli(gapMid)); !errors.Is(err, ErrNoRecording) || !strings.Contains(err.Error(), "gap") {
		t.Errorf("FrameAt in the gap: %v, want ErrNoRecording (gap)", err)
	}
	for _, ms := range []int64{periods[0].StartTime + 1000, periods[1].StartTime + 1000} {
		img, err := s.rec.FrameAt(ctx, c, time.UnixMilli(ms))
		if err != nil {
			t.Fatalf("FrameAt(%d): %v", ms, err)
		}
		if _, diff := camtest.MatchFrame(t, fixture, img); diff >= 10 {
			t.Errorf("FrameAt(%d): no fixture frame matches (diff %.1f)", ms, diff)
		}
	}
	// Through the export API: before the restart, and in the gap.
	export := func(ms int64) *ExportInfo {
		e, err := s.CreateExport(ctx, c, &ExportRequest{Time: &ms})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the export", func() bool {
			if e, err = s.Export(ctx, testOp, c.DeviceID, e.ExportID); err != nil {
				t.Fatal(err)
			}
			return e.Status == ExportCompleted || e.Status == ExportFailed
		})
		return e
	}
	ms := periods[0].StartTime + 1500
	if e := export(ms); e.Status != ExportCompleted {
		t.Errorf("export at %d: %+v", ms, e)
	} else {
		img, err := s.blobs.Bucket.ReadAll(ctx, "_cameras/"+testOp+"/exports/"+e.ExportID+".jpg")
		if err != nil {
			t.Fatal(err)
		}
		direct, _ := s.rec.FrameAt(ctx, c, time.UnixMilli(ms))
		want, _ := camtest.MatchFrame(t, fixture, direct)
		if got, diff := camtest.MatchFrame(t, fixture, img); got != want || diff >= 10 {
			t.Errorf("export at %d shows frame %d (diff %.1f), FrameAt shows %d", ms, got, diff, want)
		}
	}
	if e := export(gapMid); e.Status != ExportFailed || !strings.Contains(e.FailureReason, "gap") {
		t.Errorf("export in the gap: %+v", e)
	}
	s.Close()
	segs := segments(t, s, c.DeviceID)
	if len(segs) != 2 || segs[0].end != *periods[0].EndTime || segs[1].start != periods[1].StartTime {
		t.Fatalf("segments %+v for periods %+v", segs, periods)
	}
	for _, sg := range segs {
		p := download(t, s, sg.key)
		if got := ffprobe(t, p, "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"); got != strconv.FormatInt(sg.frames, 10) {
			t.Errorf("segment %d: ffprobe counts %s frames, index %d", sg.start, got, sg.frames)
		}
	}
}

// TestSpoolRecovery: the spool file of a segment being written, as a crash
// leaves it (parts synced so far, plus a torn part), is uploaded and
// indexed by the next run.
func TestSpoolRecovery(t *testing.T) {
	t.Parallel()
	fixture := camtest.Fixture(t, camsim.KindTestsrc)
	cam := camtest.Camera(t, camsim.Config{File: fixture})
	s := recService(t, time.Minute, "")
	c := recCamera(t, s, "cam-crash", cam.URL())
	ctx, cancel := context.WithCancel(context.Background())
	sess := rtsp.NewSession(cam.URL(), s.opts.RTSP)
	stop := s.rec.start(ctx, c, sess)
	runDone := make(chan struct{})
	go func() { defer close(runDone); sess.Run(ctx) }()
	defer func() { cancel(); <-runDone; stop() }()

	var cur *segment
	waitFor(t, 15*time.Second, "2 s recorded", func() bool {
		cur = current(s, c)
		return cur != nil && cur.storedMs-cur.startMs >= 2000
	})
	// "Crash": take the spool file as it is on disk now (under the lock, so
	// it matches the bookkeeping), and tear a part at its end.
	s.rec.mu.Lock()
	data, err := os.ReadFile(cur.path)
	frames, stored := s.rec.cams[testOp+"/"+c.DeviceID].cur.frames, s.rec.cams[testOp+"/"+c.DeviceID].cur.storedMs
	s.rec.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	torn := append(slices.Clone(data), 0, 0, 0x10, 0, 'm', 'o', 'o', 'f', 0, 0, 0, 0x10, 'm', 'f', 'h', 'd')
	spool2 := t.TempDir()
	p2 := filepath.Join(spool2, filepath.Base(filepath.Dir(filepath.Dir(cur.path))), filepath.Base(filepath.Dir(cur.path)), filepath.Base(cur.path))
	if err := os.MkdirAll(filepath.Dir(p2), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p2, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-runDone
	stop()

	// The next run: a new service on that spool.
	ctx = context.Background()
	s2 := recService(t, time.Minute, spool2)
	c2 := recCamera(t, s2, c.DeviceID, cam.URL())
	c2.Recording = false // only the recovery runs: no session
	if _, err := s2.db.ExecContext(ctx, `UPDATE cameras SET recording = 0, snapshot_cache = 0`); err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	waitFor(t, 15*time.Second, "the leftover indexed", func() bool { return len(segments(t, s2, c.DeviceID)) == 1 })
	sg := segments(t, s2, c.DeviceID)[0]
	if sg.start != cur.startMs || sg.frames != frames || sg.bytes != int64(len(data)) || sg.end < stored {
		t.Errorf("recovered %+v; want start %d, %d frames, %d bytes, end ≥ %d", sg, cur.startMs, frames, len(data), stored)
	}
	if _, err := os.Stat(p2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spool file still there: %v", err)
	}
	p := download(t, s2, sg.key)
	if got := ffprobe(t, p, "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"); got != strconv.FormatInt(frames, 10) {
		t.Errorf("recovered segment: ffprobe counts %s frames, want %d", got, frames)
	}
	img, err := s2.rec.FrameAt(ctx, c2, time.UnixMilli(sg.start+1500))
	if err != nil {
		t.Fatal(err)
	}
	if _, diff := camtest.MatchFrame(t, fixture, img); diff >= 10 {
		t.Errorf("recovered segment: picture matches no fixture frame (diff %.1f)", diff)
	}
}

// fixtureFrames reads a fixture's access units as a session delivers them
// (decode order, DTS from h264.DTSExtractor, times from the first PTS).
func fixtureFrames(t testing.TB, path string) []rtsp.Frame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: bufio.NewReader(f)}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	var td mpegts.TimeDecoder
	td.Initialize()
	var out []rtsp.Frame
	var sps, pps []byte
	base := int64(-1)
	var dx h264.DTSExtractor
	dx.Initialize()
	for _, tr := range r.Tracks() {
		if _, ok := tr.Codec.(*tscodecs.H264); ok {
			r.OnDataH264(tr, func(pts, _ int64, au [][]byte) error {
				pts = td.Decode(pts)
				if base < 0 {
					base = pts
				}
				pts -= base
				for _, n := range au {
					switch h264.NALUType(n[0] & 0x1f) {
					case h264.NALUTypeSPS:
						sps = n
					case h264.NALUTypePPS:
						pps = n
					}
				}
				idr := h264.IsRandomAccess(au)
				forDTS := au
				if idr {
					forDTS = append([][]byte{sps, pps}, au...)
				}
				dts, err := dx.Extract(forDTS, pts)
				if err != nil {
					return err
				}
				out = append(out, rtsp.Frame{AU: au, IDR: idr, SPS: sps, PPS: pps, PTS: ticksDur(pts), DTS: ticksDur(dts)})
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return out
		}
	}
}

// TestWriterTimeline feeds the writer synthetic arrivals (no real time):
// rotation keeps one timeline, a gap starts a new one, and arrivals that
// drift more than a second from the media clock re-anchor it at a rotation.
func TestWriterTimeline(t *testing.T) {
	t.Parallel()
	fixture := camtest.Fixture(t, camsim.KindTestsrc)
	frames := fixtureFrames(t, fixture) // 100 frames, 10 s, IDR every 1 s
	s := recService(t, 2500*time.Millisecond, "")
	c := recCamera(t, s, "cam-timeline", "rtsp://127.0.0.1:1/x")
	w := &segWriter{r: s.rec, o: s.rec.options(), op: c.OperatorID, dev: c.DeviceID}
	t0 := time.UnixMilli(1_800_000_000_000)
	const loop = 10 * time.Second
	feed := func(pass int, pts0 time.Duration, arrive time.Time, gap bool, late func(time.Duration) time.Duration) {
		for i, f := range frames {
			f.PTS += pts0
			f.DTS += pts0
			f.Time = arrive.Add(f.DTS - pts0 + late(f.DTS-pts0))
			f.Gap = gap && i == 0
			w.frame(f)
		}
	}
	none := func(time.Duration) time.Duration { return 0 }
	// Pass 1: 10 s. Pass 2: the stream continues, but after 1 s arrivals
	// are 1.5 s later than the media clock says. Pass 3: after a 2 s outage,
	// a new connection (timestamps from 0, first frame flagged).
	feed(1, 0, t0, false, none)
	feed(2, loop, t0.Add(loop), false, func(d time.Duration) time.Duration {
		if d >= time.Second {
			return 1500 * time.Millisecond
		}
		return 0
	})
	feed(3, 0, t0.Add(2*loop+3500*time.Millisecond), true, none)
	w.finish()
	w.uploads.Wait()

	segs := segments(t, s, c.DeviceID)
	var got []string
	for _, sg := range segs {
		got = append(got, fmt.Sprintf("%d+%d/%d", sg.start-t0.UnixMilli(), sg.end-sg.start, sg.frames))
	}
	// Pass 1 and the start of pass 2 rotate every 3 s on one timeline. The
	// segment starting at 12 s sees arrivals late from its first IDR on (an
	// IDR arrives at its decode time, 100 ms before it is shown: 1.4 s after
	// the timeline's time), so at its rotation (IDR shown at 15 s, arriving
	// at 16.4 s) the timeline is re-anchored there; the stream breaks at 20 s
	// media time (21.4 s), and pass 3 starts after the outage, at 23.5 s.
	want := []string{"0+3000/30", "3000+3000/30", "6000+3000/30", "9000+3000/30", "12000+3000/30",
		"16400+3000/30", "19400+2000/20", "23500+3000/30", "26500+3000/30", "29500+3000/30", "32500+1000/10"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("segments (start-t0 + duration / frames):\n got %s\nwant %s", strings.Join(got, " "), strings.Join(want, " "))
	}
	p, err := s.rec.Periods(context.Background(), c, 0, t0.UnixMilli()+time.Hour.Milliseconds())
	if err != nil {
		t.Fatal(err)
	}
	var ps []string
	for _, x := range p {
		ps = append(ps, fmt.Sprintf("%d-%d", x.StartTime-t0.UnixMilli(), *x.EndTime-t0.UnixMilli()))
	}
	if strings.Join(ps, " ") != "0-15000 16400-21400 23500-33500" {
		t.Errorf("periods %v", ps)
	}
	// The pictures: at wall time T (ms after t0) the fixture frame of media
	// time m is shown, frame m/100 ms mod 100.
	for _, x := range [][2]int64{{50, 0}, {2950, 29}, {3050, 30}, {14950, 49}, {16450, 50}, {18250, 68}, {21350, 99}, {23550, 0}, {33450, 99}} {
		checkFrame(t, s, c, fixture, t0.UnixMilli()+x[0], int(x[1]))
	}
	if _, err := s.rec.FrameAt(context.Background(), c, t0.Add(15500*time.Millisecond)); !errors.Is(err, ErrNoRecording) {
		t.Errorf("FrameAt in the re-anchoring seam: %v", err)
	}
}

// TestRetention deletes segments that ended before their camera's
// retention, and those of deleted cameras, blob and row, in batches.
func TestRetention(t *testing.T) {
	t.Parallel()
	s := recService(t, time.Minute, "")
	ctx := context.Background()
	c := recCamera(t, s, "cam-keep", "rtsp://127.0.0.1:1/x")
	days := 2
	if _, err := s.update(ctx, testOp, c.DeviceID, &CameraInput{RetentionDays: &days}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.now = func() time.Time { return now }
	day := int64(24 * time.Hour / time.Millisecond)
	put := func(dev string, start, end int64) string {
		key := segmentKey(testOp, dev, start)
		if err := s.blobs.Bucket.WriteAll(ctx, key, []byte("segment"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO camera_segments (operator_id, device_id, start_ms, end_ms, blob_key, bytes, frames)
			VALUES ($1,$2,$3,$4,$5,7,1)`, testOp, dev, start, end, key); err != nil {
			t.Fatal(err)
		}
		return key
	}
	n := now.UnixMilli()
	var old []string
	for i := range pruneBatch + 50 { // more than a batch
		st := n - 3*day - int64(i+1)*60_000
		old = append(old, put(c.DeviceID, st, st+60_000))
	}
	straddle := put(c.DeviceID, n-2*day-60_000, n-2*day+60_000) // ends inside the retention: kept
	fresh := put(c.DeviceID, n-3_600_000, n-3_000_000)
	orphan := put("cam-deleted", n-3_600_000, n-3_000_000) // its camera is gone

	if got := s.rec.prune(ctx); got != len(old)+1 {
		t.Errorf("prune deleted %d, want %d", got, len(old)+1)
	}
	exists := func(key string) bool { ok, _ := s.blobs.Bucket.Exists(ctx, key); return ok }
	for _, k := range append(old, orphan) {
		if exists(k) {
			t.Fatalf("%s not deleted", k)
		}
	}
	left := segments(t, s, c.DeviceID)
	if len(left) != 2 || !exists(straddle) || !exists(fresh) {
		t.Fatalf("kept %+v", left)
	}
	// Three days later everything has expired.
	s.now = func() time.Time { return now.Add(72 * time.Hour) }
	if got := s.rec.prune(ctx); got != 2 || len(segments(t, s, c.DeviceID)) != 0 || exists(fresh) {
		t.Errorf("second prune deleted %d", got)
	}
}

// TestPeriodsMerge joins touching segments and keeps gaps.
func TestPeriodsMerge(t *testing.T) {
	t.Parallel()
	s := recService(t, time.Minute, "")
	ctx := context.Background()
	c := recCamera(t, s, "cam-periods", "rtsp://127.0.0.1:1/x")
	for _, r := range [][2]int64{{1000, 2000}, {2000, 3000}, {3500, 4000}, {4000, 5000}, {9000, 9500}} {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO camera_segments (operator_id, device_id, start_ms, end_ms, blob_key, bytes, frames)
			VALUES ($1,$2,$3,$4,'k',1,1)`, testOp, c.DeviceID, r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.rec.Periods(ctx, c, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(len(p))
	for _, x := range p {
		got += fmt.Sprintf(" %d-%d", x.StartTime, *x.EndTime)
	}
	if got != "3 1000-3000 3500-5000 9000-9500" {
		t.Errorf("periods %s", got)
	}
	if p, _ := s.rec.Periods(ctx, c, 4500, 8000); len(p) != 1 || p[0].StartTime != 4500 || *p[0].EndTime != 5000 {
		t.Errorf("window 4500-8000: %+v", p)
	}
	_, err = s.rec.FrameAt(ctx, c, time.UnixMilli(3200))
	if !errors.Is(err, ErrNoRecording) || !strings.Contains(err.Error(), "gap") {
		t.Errorf("FrameAt in a gap: %v", err)
	}
	_, err = s.rec.FrameAt(ctx, c, time.UnixMilli(20_000))
	if !errors.Is(err, ErrNoRecording) || !strings.Contains(err.Error(), "after the last recording") {
		t.Errorf("FrameAt after the end: %v", err)
	}
}

// BenchmarkExportFrameAt measures an export's latency: FrameAt of a moment
// in an uploaded 3 s segment (download from the file:// blob store + ffmpeg
// seek and JPEG encode), in the segment being written (spool + ffmpeg),
// and in the middle of a full-size uploaded segment (5 min of 1280x720
// 25 fps, GOP 2 s, written from a synthetic feed).
func BenchmarkExportFrameAt(b *testing.B) {
	b.Run("uploaded-5min-1280x720", func(b *testing.B) {
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			b.Skip("no ffmpeg")
		}
		src := filepath.Join(b.TempDir(), "720p.ts")
		if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
			"-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
			"-pix_fmt", "yuv420p", "-f", "mpegts", src).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		frames := fixtureFrames(b, src)
		s := recService(b, 5*time.Minute, "")
		c := recCamera(b, s, "cam-bench-720p", "rtsp://127.0.0.1:1/x")
		w := &segWriter{r: s.rec, o: s.rec.options(), op: c.OperatorID, dev: c.DeviceID}
		t0 := time.UnixMilli(1_800_000_000_000)
		for loop := range 30 {
			off := time.Duration(loop) * 10 * time.Second
			for _, f := range frames {
				f.PTS += off
				f.DTS += off
				f.Time = t0.Add(f.DTS)
				w.frame(f)
			}
		}
		w.finish()
		w.uploads.Wait()
		sg := segments(b, s, c.DeviceID)
		if len(sg) != 1 {
			b.Fatalf("segments %+v", sg)
		}
		ctx := context.Background()
		for b.Loop() {
			if _, err := s.rec.FrameAt(ctx, c, t0.Add(151*time.Second+500*time.Millisecond)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(sg[0].bytes)/1e6, "MB/segment")
	})

	fixture := camtest.Fixture(b, camsim.KindTestsrc)
	cam := camtest.Camera(b, camsim.Config{File: fixture})
	s := recService(b, 2500*time.Millisecond, "")
	c := recCamera(b, s, "cam-bench", cam.URL())
	ctx, cancel := context.WithCancel(context.Background())
	sess := rtsp.NewSession(cam.URL(), s.opts.RTSP)
	stop := s.rec.start(ctx, c, sess)
	runDone := make(chan struct{})
	go func() { defer close(runDone); sess.Run(ctx) }()
	defer func() { cancel(); <-runDone; stop() }()
	waitFor(b, 30*time.Second, "an uploaded segment", func() bool { return len(segments(b, s, c.DeviceID)) >= 1 })
	sg := segments(b, s, c.DeviceID)[0]
	b.Run("uploaded-3s-320x240", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.rec.FrameAt(ctx, c, time.UnixMilli(sg.start+1550)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("spool-3s-320x240", func(b *testing.B) {
		var cur *segment
		waitFor(b, 10*time.Second, "a stored part", func() bool {
			cur = current(s, c)
			return cur != nil && cur.storedMs-cur.startMs >= 600
		})
		for b.Loop() {
			if _, err := s.rec.FrameAt(ctx, c, time.UnixMilli(cur.storedMs-100)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
