// Package camsim is nagare's test and demo camera: an in-process RTSP server
// (gortsplib) that serves a video file as a live, looping H.264 stream, in
// real time and with continuous RTP timestamps across loops. It is used by
// the camera tests (including hostile-camera modes: no keyframes, stalls,
// redirect loops, wrong codecs, Basic/Digest auth) and by
// `nagare camera simulate`.
//
// The input is an MPEG-TS file with an H.264 track (what Fixture and
// Transcode produce) or a raw Annex-B H.264 file. Raw files carry no
// timestamps: frames are paced at the SPS frame rate (25 fps if absent) in
// decode order, so use files without B-frames or, better, MPEG-TS.
package camsim

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Config describes a simulated camera.
type Config struct {
	// Addr is the listen address (default "127.0.0.1:0": a free port).
	Addr string
	// Path is the stream path (default "/cam"). Any path is served; Path
	// shapes URL() and is the path RedirectTo applies to.
	Path string
	// File is the video (MPEG-TS with H.264, or raw Annex-B H.264). Required
	// for Codec "H264".
	File string
	// User and Pass, if User is set, are required from readers.
	User, Pass string
	// Methods are the accepted auth methods: "basic", "digest" (MD5),
	// "digest-sha256". Default: basic and digest.
	Methods []string

	// Hostile modes for tests.

	// NoKeyframes drops every IDR access unit: clients never get a keyframe.
	NoKeyframes bool
	// StallAfter > 0 makes the stream go silent (connections stay open)
	// after StallAfter of playback, for StallFor (0: until Close),
	// then play StallAfter again, and so on.
	StallAfter time.Duration
	// StallFor is how long a stall lasts (see StallAfter).
	StallFor time.Duration
	// RedirectTo answers DESCRIBE of Path with 302 and this Location (other
	// paths are served normally). A value starting with "/" is a path on this
	// server: RedirectTo == Path makes a redirect loop.
	RedirectTo string
	// Codec is "H264" (default), or "MJPEG" / "H265" to offer a track a
	// client cannot use (no media is sent).
	Codec string
	// NoSDPParams leaves SPS/PPS out of the SDP (sprop-parameter-sets), so
	// clients must use the in-band parameter sets.
	NoSDPParams bool
}

// Request is one RTSP request the server received (for assertions).
type Request struct {
	Method string
	Path   string
	// Authorization is the request's Authorization header ("" if none).
	Authorization string
}

// Server is a running simulated camera.
type Server struct {
	cfg   Config
	forma format.Format
	enc   *rtph264.Encoder
	src   *source

	restartMu sync.Mutex   // serializes Restart
	mu        sync.RWMutex // guards srv, stream, medi, closed (short sections only)
	srv       *gortsplib.Server
	stream    *gortsplib.ServerStream
	medi      *description.Media
	closed    bool
	addr      string // resolved listen address

	reqMu sync.Mutex
	reqs  []Request

	done chan struct{}
	wg   sync.WaitGroup
}

const maxLoggedRequests = 1000

// Start starts the server and, for H.264, its real-time file player.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Path == "" {
		cfg.Path = "/cam"
	}
	if !strings.HasPrefix(cfg.Path, "/") {
		cfg.Path = "/" + cfg.Path
	}
	if cfg.Codec == "" {
		cfg.Codec = "H264"
	}
	s := &Server{cfg: cfg, done: make(chan struct{})}

	var forma format.Format
	switch strings.ToUpper(cfg.Codec) {
	case "H264":
		if cfg.File == "" {
			return nil, errors.New("camsim: Config.File is required for H264")
		}
		src, err := openSource(cfg.File)
		if err != nil {
			return nil, fmt.Errorf("camsim: %w", err)
		}
		s.src = src
		f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
		if !cfg.NoSDPParams {
			f.SPS, f.PPS = src.sps, src.pps
		}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, fmt.Errorf("camsim: %w", err)
		}
		s.enc = enc
		forma = f
	case "H265":
		forma = &format.H265{PayloadTyp: 96}
	case "MJPEG":
		forma = &format.MJPEG{}
	default:
		return nil, fmt.Errorf("camsim: unknown codec %q", cfg.Codec)
	}
	s.forma = forma
	methods, err := authMethods(cfg.Methods)
	if err != nil {
		return nil, err
	}

	if err := s.startServer(cfg.Addr, methods); err != nil {
		return nil, err
	}
	if s.src != nil {
		s.wg.Add(1)
		go s.play()
	}
	return s, nil
}

func authMethods(names []string) ([]auth.VerifyMethod, error) {
	var out []auth.VerifyMethod
	for _, m := range names {
		switch strings.ToLower(m) {
		case "basic":
			out = append(out, auth.VerifyMethodBasic)
		case "digest", "digest-md5":
			out = append(out, auth.VerifyMethodDigestMD5)
		case "digest-sha256":
			out = append(out, auth.VerifyMethodDigestSHA256)
		default:
			return nil, fmt.Errorf("camsim: unknown auth method %q", m)
		}
	}
	return out, nil
}

func (s *Server) startServer(addr string, methods []auth.VerifyMethod) error {
	srv := &gortsplib.Server{
		Handler:     &handler{s: s},
		RTSPAddress: addr,
		AuthMethods: methods,
		ReadTimeout: 10 * time.Second,
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("camsim: listen %s: %w", addr, err)
	}
	desc := &description.Session{Medias: []*description.Media{{
		Type:    description.MediaTypeVideo,
		Formats: []format.Format{s.forma},
	}}}
	stream := &gortsplib.ServerStream{Server: srv, Desc: desc}
	if err := stream.Initialize(); err != nil {
		srv.Close()
		return fmt.Errorf("camsim: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		stream.Close()
		srv.Close()
		return errors.New("camsim: server closed")
	}
	s.srv, s.stream, s.medi = srv, stream, desc.Medias[0]
	s.addr = srv.NetListener().Addr().String()
	s.mu.Unlock()
	return nil
}

// URL returns the stream URL, without credentials.
func (s *Server) URL() string {
	return "rtsp://" + s.Addr() + s.cfg.Path
}

// Addr returns the listen address (host:port).
func (s *Server) Addr() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.addr
}

// Requests returns the requests received so far (the last 1000).
func (s *Server) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Close stops the player and the server, dropping all clients.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	srv, stream := s.srv, s.stream
	s.mu.Unlock()
	s.wg.Wait()
	stream.Close()
	srv.Close()
	return nil
}

// Restart drops every client by closing the server and listening again on
// the same address, as a rebooting camera would. The stream keeps playing.
func (s *Server) Restart() error {
	s.restartMu.Lock()
	defer s.restartMu.Unlock()
	s.mu.RLock()
	closed, srv, stream := s.closed, s.srv, s.stream
	s.mu.RUnlock()
	if closed {
		return errors.New("camsim: server closed")
	}
	stream.Close()
	srv.Close()
	methods, _ := authMethods(s.cfg.Methods)
	var err error
	for i := 0; i < 50; i++ { // the port may take a moment to be released
		if err = s.startServer(s.Addr(), methods); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

func (s *Server) logRequest(req *base.Request) {
	r := Request{Method: string(req.Method)}
	if req.URL != nil {
		r.Path = req.URL.Path
	}
	if a := req.Header["Authorization"]; len(a) > 0 {
		r.Authorization = strings.Join(a, ", ")
	}
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	if len(s.reqs) >= maxLoggedRequests {
		s.reqs = append(s.reqs[:0], s.reqs[1:]...)
	}
	s.reqs = append(s.reqs, r)
}

type handler struct{ s *Server }

func (h *handler) OnRequest(_ *gortsplib.ServerConn, req *base.Request) { h.s.logRequest(req) }

func (h *handler) authorize(c *gortsplib.ServerConn, req *base.Request) bool {
	cfg := h.s.cfg
	return cfg.User == "" || c.VerifyCredentials(req, cfg.User, cfg.Pass)
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.authorize(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	if loc := h.s.cfg.RedirectTo; loc != "" && strings.TrimSuffix(ctx.Path, "/") == strings.TrimSuffix(h.s.cfg.Path, "/") {
		if strings.HasPrefix(loc, "/") {
			loc = (&url.URL{Scheme: "rtsp", Host: h.s.Addr(), Path: loc}).String()
		}
		return &base.Response{
			StatusCode: base.StatusFound,
			Header:     base.Header{"Location": base.HeaderValue{loc}},
		}, nil, nil
	}
	h.s.mu.RLock()
	defer h.s.mu.RUnlock()
	return &base.Response{StatusCode: base.StatusOK}, h.s.stream, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.authorize(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	if ctx.Transport != nil && ctx.Transport.Protocol != gortsplib.ProtocolTCP {
		return &base.Response{StatusCode: base.StatusUnsupportedTransport}, nil, nil
	}
	h.s.mu.RLock()
	defer h.s.mu.RUnlock()
	return &base.Response{StatusCode: base.StatusOK}, h.s.stream, nil
}

func (h *handler) OnPlay(_ *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// play loops the file in real time, forever, until Close.
//
// Timing follows a real camera: access unit n of a loop is sent at
// start + offset + (dts_n − dts_0) and stamped with RTP time
// offset + (pts_n − pts_0), where dts_0/pts_0 are the first (IDR) access
// unit's. So no picture is stamped later than it is sent, the first IDR of
// each loop is stamped exactly at the loop's start, and display times run on
// without a hole across the loop seam. A stall keeps the clock running: the
// RTP time jumps by the stall's length, as it would on a camera whose network
// froze.
func (s *Server) play() {
	defer s.wg.Done()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	rtpStart := binary.BigEndian.Uint32(rnd[:])

	start := time.Now() // wall clock of stream time 0
	var offset int64    // 90 kHz stream time at the start of the current loop
	playedSince := start
	for {
		var baseDTS, basePTS, lastDTS int64
		lastDelta := s.src.frameTicks
		first := true
		err := s.src.each(func(smp sample) error {
			if first {
				baseDTS, basePTS, lastDTS, first = smp.dts, smp.pts, smp.dts, false
			}
			if d := smp.dts - lastDTS; d > 0 {
				lastDelta = d
			}
			lastDTS = smp.dts
			if !s.wait(start.Add(ticks(offset + smp.dts - baseDTS))) {
				return errStop
			}
			if s.cfg.StallAfter > 0 && time.Since(playedSince) >= s.cfg.StallAfter {
				stallStart := time.Now()
				if !s.stall() {
					return errStop
				}
				offset += int64(time.Since(stallStart)) * 90000 / int64(time.Second)
				playedSince = time.Now()
			}
			if s.cfg.NoKeyframes && h264.IsRandomAccess(smp.au) {
				return nil
			}
			pkts, err := s.enc.Encode(smp.au)
			if err != nil {
				return nil // skip a malformed AU
			}
			ts := rtpStart + uint32(offset+smp.pts-basePTS)
			s.mu.RLock()
			stream, medi := s.stream, s.medi
			s.mu.RUnlock()
			for _, p := range pkts {
				p.Timestamp = ts
				_ = stream.WritePacketRTP(medi, p) // fails harmlessly while restarting
			}
			return nil
		})
		if errors.Is(err, errStop) {
			return
		}
		if first { // empty or unreadable file: avoid a hot loop
			if !s.wait(time.Now().Add(time.Second)) {
				return
			}
			continue
		}
		offset += lastDTS - baseDTS + lastDelta
	}
}

var errStop = errors.New("stop")

func ticks(t int64) time.Duration {
	return time.Duration(t/90000)*time.Second + time.Duration(t%90000)*time.Second/90000
}

// wait sleeps until t; false if the server is closing.
func (s *Server) wait(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-s.done:
			return false
		default:
			return true
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-s.done:
		return false
	case <-tm.C:
		return true
	}
}

// stall blocks for StallFor (or until Close if 0); false if closing.
func (s *Server) stall() bool {
	if s.cfg.StallFor <= 0 {
		<-s.done
		return false
	}
	return s.wait(time.Now().Add(s.cfg.StallFor))
}
