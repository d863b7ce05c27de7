package rtsp

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Session is a long-lived connection to one camera. Run keeps it connected
// (reconnecting with exponential back-off and jitter), Latest serves the
// current GOP for warm snapshots and Subscribe feeds access units to a
// recorder. All methods are safe for concurrent use.
type Session struct {
	rawURL string
	opt    Options

	running atomic.Bool
	lastAU  atomic.Int64 // unix nanos of the last AU on the current connection
	dropped atomic.Int64

	mu      sync.Mutex
	gop     gopCache
	firstKF chan struct{} // closed when the first keyframe is cached
	subs    map[*subscriber]struct{}
	ended   bool // Run returned: subscriptions are closed
	status  Status
}

// Frame is one access unit as delivered to subscribers.
type Frame struct {
	// AU is the access unit: NAL units without start codes, as received.
	AU [][]byte
	// IDR reports a random-access (IDR) access unit.
	IDR bool
	// PTS and DTS are relative to the start of the current connection (they
	// restart after a reconnect, which is always signalled by Gap).
	PTS, DTS time.Duration
	// Time is the wall clock when the access unit arrived.
	Time time.Time
	// SPS and PPS are the parameter sets currently in force.
	SPS, PPS []byte
	// Gap reports that frames are missing before this one: the subscriber's
	// buffer was full, the session reconnected, or the stream was damaged.
	// Delivery resumes only at an IDR, so a Gap frame is always an IDR and
	// PTS/DTS may jump.
	Gap bool
}

// Status is a snapshot of a Session's health.
type Status struct {
	// Connected is true while the stream is playing.
	Connected bool
	// LastError is the last connection error (credentials stripped), "" if
	// none yet; it is kept after a successful reconnect (see LastErrorAt).
	LastError string
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time
	// Since is when Connected last changed.
	Since time.Time
	// Reconnects counts connection attempts after the first one.
	Reconnects int
	// Dropped counts frames not delivered to subscribers (full buffers and
	// frames skipped while waiting for the next IDR after a gap), summed over
	// subscribers.
	Dropped int64
}

type gopCache struct {
	params paramSets
	aus    [][][]byte
	bytes  int
	frozen bool // stop appending until the next IDR (cap reached or chain broken)
	t      time.Time
	w, h   int
}

type subscriber struct {
	ch      chan Frame
	gap     bool
	waitIDR bool
}

// NewSession returns a Session for rawURL; nothing happens until Run.
func NewSession(rawURL string, opt Options) *Session {
	return &Session{
		rawURL:  rawURL,
		opt:     opt.withDefaults(),
		firstKF: make(chan struct{}),
		subs:    map[*subscriber]struct{}{},
	}
}

// Run connects and keeps the session connected until ctx is done, then
// disconnects, closes every subscription channel and returns. Run must be
// called at most once; further calls return immediately.
func (s *Session) Run(ctx context.Context) {
	if !s.running.CompareAndSwap(false, true) {
		return
	}
	defer s.end()
	log := s.opt.Logger
	u, err := parseURL(s.rawURL)
	if err != nil {
		s.setError(err)
		<-ctx.Done()
		return
	}
	redacted := redactURL(u)
	attempt := 0
	for first := true; ; first = false {
		if !first {
			s.mu.Lock()
			s.status.Reconnects++
			s.mu.Unlock()
		}
		playedFor, err := s.runOnce(ctx, u)
		if ctx.Err() != nil {
			return
		}
		s.setError(err)
		if playedFor >= max(30*time.Second, s.opt.ReconnectMax) {
			attempt = 0
		}
		delay := backoff(s.opt.ReconnectMin, s.opt.ReconnectMax, attempt)
		if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbiddenAddress) || errors.Is(err, ErrUnsupportedCodec) {
			delay = backoff(s.opt.ReconnectMax, s.opt.ReconnectMax, 0) // will not heal quickly; spare the camera's lockout
		}
		attempt++
		log.Warn("rtsp session disconnected", "url", redacted, "err", err, "retry_in", delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff returns lo*2^attempt with ±25 % jitter, capped at hi.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(time.Duration(float64(d)*(0.75+0.5*rand.Float64())), hi)
}

// runOnce runs one connection; it returns how long the stream played and
// the error that ended it.
func (s *Session) runOnce(ctx context.Context, u *url.URL) (time.Duration, error) {
	connectCtx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	p, err := connect(connectCtx, u, s.opt, s.handler, s.onDecodeError)
	cancel()
	if err != nil {
		return 0, err
	}
	defer p.c.Close()
	start := time.Now()
	s.lastAU.Store(start.UnixNano())
	s.mu.Lock()
	s.status.Connected = true
	s.status.Since = start
	s.mu.Unlock()
	s.opt.Logger.Info("rtsp session connected", "url", redactURL(p.url))

	ended := make(chan error, 1)
	go func() { ended <- p.c.Wait() }()
	tick := max(s.opt.ReadTimeout/4, 50*time.Millisecond)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case err := <-ended:
			return time.Since(start), classify(ctx, p.url, err, "stream")
		case <-ticker.C:
			if idle := time.Since(time.Unix(0, s.lastAU.Load())); idle > s.opt.ReadTimeout {
				return time.Since(start), newErr(p.url, ErrUnreachable, errStalled, nil, "")
			}
		}
	}
}

func (s *Session) setError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Connected || s.status.Since.IsZero() {
		s.status.Since = time.Now()
	}
	s.status.Connected = false
	if err != nil {
		s.status.LastError = err.Error()
		s.status.LastErrorAt = time.Now()
	}
	s.markGapLocked()
}

func (s *Session) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	if s.status.Connected {
		s.status.Connected = false
		s.status.Since = time.Now()
	}
	for sub := range s.subs {
		close(sub.ch)
		delete(s.subs, sub)
	}
}

func (s *Session) onDecodeError(err error) {
	s.opt.Logger.Debug("rtsp stream damaged", "url", Redact(s.rawURL), "err", err)
	s.mu.Lock()
	s.gop.frozen = true
	s.markGapLocked()
	s.mu.Unlock()
}

// markGapLocked makes every subscriber skip to the next IDR and flag it as a gap.
func (s *Session) markGapLocked() {
	for sub := range s.subs {
		sub.gap = true
		sub.waitIDR = true
	}
}

// handler builds the per-connection access-unit callback.
func (s *Session) handler(t track) auFunc {
	params := paramSets{sps: t.SPS, pps: t.PPS}
	var dts *h264.DTSExtractor
	return func(au [][]byte, pts int64, now time.Time) {
		s.lastAU.Store(now.UnixNano())
		if auSize(au) > s.opt.MaxAUBytes {
			dts = nil
			s.onDecodeError(errors.New("access unit larger than MaxAUBytes dropped"))
			return
		}
		params.update(au)
		idr := h264.IsRandomAccess(au)
		if dts == nil {
			if !idr || !params.ok() {
				return // wait for a decodable start
			}
			dts = &h264.DTSExtractor{}
			dts.Initialize()
		}
		forDTS := au
		if idr {
			forDTS = params.withParams(au)
		}
		d, err := dts.Extract(forDTS, pts)
		if err != nil {
			dts = nil
			s.onDecodeError(err)
			return
		}
		s.push(Frame{
			AU: au, IDR: idr, Time: now,
			PTS: ticksToDuration(pts), DTS: ticksToDuration(d),
			SPS: params.sps, PPS: params.pps,
		}, params)
	}
}

// push caches f in the GOP and fans it out. It never blocks.
func (s *Session) push(f Frame, params paramSets) {
	size := auSize(f.AU)
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.gop
	if f.IDR {
		*g = gopCache{params: params, aus: [][][]byte{f.AU}, bytes: size, t: f.Time}
		g.w, g.h = spsSize(params.sps)
		if size > s.opt.MaxGOPBytes {
			g.frozen = true
		}
		select {
		case <-s.firstKF:
		default:
			close(s.firstKF)
		}
	} else if len(g.aus) > 0 && !g.frozen {
		if g.bytes+size > s.opt.MaxGOPBytes {
			g.frozen = true
		} else {
			g.aus = append(g.aus, f.AU)
			g.bytes += size
		}
	}
	for sub := range s.subs {
		if sub.waitIDR && !f.IDR {
			s.dropped.Add(1)
			continue
		}
		ff := f
		ff.Gap = sub.gap
		select {
		case sub.ch <- ff:
			sub.gap, sub.waitIDR = false, false
		default:
			s.dropped.Add(1)
			sub.gap, sub.waitIDR = true, true
		}
	}
}

// Latest returns the keyframe of the current GOP with the access units
// received since (bounded by Options.MaxGOPBytes), or nil if no keyframe has
// arrived yet. After a disconnect it keeps returning the last GOP; check
// Keyframe.Time or Status for staleness. The result is shared: do not modify.
func (s *Session) Latest() *Keyframe {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.gop
	n := len(g.aus)
	if n == 0 {
		return nil
	}
	return &Keyframe{
		Codec: "H264", SPS: g.params.sps, PPS: g.params.pps,
		AUs:  g.aus[:n:n],
		Time: g.t, Width: g.w, Height: g.h,
	}
}

// WaitKeyframe returns Latest, waiting for the first keyframe if there is
// none yet. It fails with an error wrapping ErrNoKeyframe and ctx.Err() when
// ctx ends first.
func (s *Session) WaitKeyframe(ctx context.Context) (*Keyframe, error) {
	if k := s.Latest(); k != nil {
		return k, nil
	}
	select {
	case <-s.firstKF:
		return s.Latest(), nil
	case <-ctx.Done():
		s.mu.Lock()
		last := s.status.LastError
		s.mu.Unlock()
		detail := "waiting for the first keyframe"
		if last != "" {
			detail += " (last error: " + last + ")"
		}
		return nil, newErr(nil, ErrNoKeyframe, nil, ctx.Err(), scrub(detail, nil))
	}
}

// Subscribe returns a channel of frames with room for buf frames, and a
// function that cancels the subscription (and closes the channel). The
// reader never blocks on a subscriber: when the channel is full the frame is
// dropped, counted in Status.Dropped, and delivery resumes at the next IDR
// with Frame.Gap set. Delivery starts at the next IDR. The channel is closed
// when Run returns.
func (s *Session) Subscribe(buf int) (<-chan Frame, func()) {
	sub := &subscriber{ch: make(chan Frame, max(buf, 1)), waitIDR: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		close(sub.ch)
		return sub.ch, func() {}
	}
	s.subs[sub] = struct{}{}
	return sub.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
}

// Status returns a snapshot of the session's health.
func (s *Session) Status() Status {
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	st.Dropped = s.dropped.Load()
	return st
}

// URL returns the session's URL without credentials.
func (s *Session) URL() string { return Redact(s.rawURL) }
