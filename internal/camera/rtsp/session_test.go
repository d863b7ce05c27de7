package rtsp_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
)

func sessionOpts() rtsp.Options {
	return rtsp.Options{
		Timeout: 5 * time.Second, ReadTimeout: 1500 * time.Millisecond,
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
	}
}

// runSession starts s.Run and returns a stop function that waits for Run to return.
func runSession(t *testing.T, s *rtsp.Session) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("Session.Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSessionLatestAndSubscribe(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{User: user, Pass: pass})
	s := rtsp.NewSession(withCreds(cam.URL(), user, pass), sessionOpts())
	if s.Latest() != nil {
		t.Fatal("Latest before Run must be nil")
	}
	frames, cancelSub := s.Subscribe(64)
	defer cancelSub()
	runSession(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k, err := s.WaitKeyframe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k.Width != 320 || k.Height != 240 || len(k.AUs) == 0 {
		t.Fatalf("keyframe %v", k)
	}
	if st := s.Status(); !st.Connected || st.LastError != "" || st.Since.IsZero() {
		t.Fatalf("status %+v", st)
	}

	// 25 frames span at least two IDRs (10 fps, GOP 1 s)
	var prev rtsp.Frame
	idrs := 0
	for i := 0; i < 25; i++ {
		var f rtsp.Frame
		select {
		case f = <-frames:
		case <-time.After(5 * time.Second):
			t.Fatalf("no frame %d", i)
		}
		if i == 0 && !f.IDR {
			t.Fatal("delivery must start at an IDR")
		}
		if f.Gap {
			t.Fatalf("frame %d: unexpected gap", i)
		}
		if f.IDR {
			idrs++
		}
		// (DTS may pass PTS by a tick while mediacommon's DTS extractor
		// learns the reorder depth, hence the millisecond of slack)
		if f.PTS+time.Millisecond < f.DTS || len(f.AU) == 0 || len(f.SPS) == 0 || len(f.PPS) == 0 {
			t.Fatalf("frame %d: pts %v dts %v, %d NALUs", i, f.PTS, f.DTS, len(f.AU))
		}
		if i > 0 && f.DTS <= prev.DTS {
			t.Fatalf("frame %d: DTS %v not after %v", i, f.DTS, prev.DTS)
		}
		prev = f
	}
	if idrs < 2 {
		t.Fatalf("%d IDRs in 25 frames", idrs)
	}
	// the cached GOP grows with the stream, and a new IDR starts a new one
	eventually(t, 5*time.Second, "a GOP with several AUs", func() bool {
		l := s.Latest()
		return l != nil && len(l.AUs) >= 3
	})
	first := s.Latest()
	eventually(t, 5*time.Second, "the next GOP", func() bool { return s.Latest().Time.After(first.Time) })
}

func TestSessionSurvivesCameraRestart(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{})
	s := rtsp.NewSession(cam.URL(), sessionOpts())
	frames, cancelSub := s.Subscribe(256)
	defer cancelSub()
	runSession(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cam.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	eventually(t, 10*time.Second, "reconnect", func() bool {
		st := s.Status()
		return st.Reconnects >= 1 && st.Connected
	})
	eventually(t, 5*time.Second, "a keyframe after the restart", func() bool {
		return s.Latest().Time.After(restarted)
	})
	// the subscriber sees the restart as a gap that starts at an IDR
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-frames:
			if f.Gap {
				if !f.IDR {
					t.Fatal("a gap frame must be an IDR")
				}
				return
			}
		case <-deadline:
			t.Fatal("no gap frame after the restart")
		}
	}
}

func TestSessionReconnectsAfterStall(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{StallAfter: 3 * time.Second, StallFor: 2 * time.Second})
	o := sessionOpts()
	o.ReadTimeout = 700 * time.Millisecond
	s := rtsp.NewSession(cam.URL(), o)
	runSession(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	var stallErr string
	eventually(t, 10*time.Second, "a reconnect after the stall", func() bool {
		st := s.Status()
		if st.LastError != "" {
			stallErr = st.LastError
		}
		return st.Reconnects >= 1
	})
	if !strings.Contains(stallErr, "stalled") {
		t.Fatalf("last error %q, want a stall", stallErr)
	}
	stalled := time.Now()
	eventually(t, 15*time.Second, "video after the stall", func() bool {
		l := s.Latest()
		return s.Status().Connected && l.Time.After(stalled)
	})
}

func TestSessionSlowSubscriberSeesGap(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{})
	s := rtsp.NewSession(cam.URL(), sessionOpts())
	frames, cancelSub := s.Subscribe(2)
	runSession(t, s)

	// do not read: the buffer fills and frames are dropped
	eventually(t, 10*time.Second, "dropped frames", func() bool { return s.Status().Dropped > 0 })
	<-frames
	<-frames
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-frames:
			if f.Gap {
				if !f.IDR {
					t.Fatal("a gap frame must be an IDR")
				}
				cancelSub()
				cancelSub() // idempotent
				for range frames {
				} // closed by cancel
				return
			}
		case <-deadline:
			t.Fatal("no gap frame")
		}
	}
}

func TestSessionWaitKeyframeTimeout(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{NoKeyframes: true})
	s := rtsp.NewSession(cam.URL(), sessionOpts())
	runSession(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := s.WaitKeyframe(ctx)
	if !errors.Is(err, rtsp.ErrNoKeyframe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestSessionUnauthorizedStatus(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{User: user, Pass: pass})
	s := rtsp.NewSession(withCreds(cam.URL(), user, "bad-"+pass), sessionOpts())
	runSession(t, s)
	eventually(t, 5*time.Second, "an error status", func() bool { return s.Status().LastError != "" })
	st := s.Status()
	if st.Connected || !strings.Contains(st.LastError, "unauthorized") || strings.Contains(st.LastError, pass) {
		t.Fatalf("status %+v", st)
	}
}

// Not parallel: it counts goroutines.
func TestSessionStopsCleanly(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{})
	base := runtime.NumGoroutine()
	s := rtsp.NewSession(cam.URL(), sessionOpts())
	frames, _ := s.Subscribe(8)
	stop := runSession(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	for range frames {
	} // Run closed the subscription
	if s.Status().Connected {
		t.Fatal("still connected after Run returned")
	}
	if _, open := <-func() <-chan rtsp.Frame { c, _ := s.Subscribe(1); return c }(); open {
		t.Fatal("Subscribe after Run returned must give a closed channel")
	}
	if s.Latest() == nil {
		t.Fatal("Latest must keep the last GOP after Run returned")
	}
	waitGoroutines(t, base)
}
