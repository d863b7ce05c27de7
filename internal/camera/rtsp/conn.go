package rtsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/rtp"
)

// camError is the error type returned by this package: a sanitized message
// (no userinfo) wrapping the sentinel kind, the context error if a deadline
// or cancellation was involved, and the underlying cause.
type camError struct {
	msg   string
	kinds []error
}

func (e *camError) Error() string   { return e.msg }
func (e *camError) Unwrap() []error { return e.kinds }

func newErr(u *url.URL, kind error, cause error, ctxErr error, detail string) error {
	var b strings.Builder
	b.WriteString("rtsp ")
	if u != nil {
		b.WriteString(redactURL(u))
	}
	b.WriteString(": ")
	if kind != nil {
		b.WriteString(strings.TrimPrefix(kind.Error(), "rtsp: "))
	}
	if detail != "" {
		if kind != nil {
			b.WriteString(": ")
		}
		b.WriteString(detail)
	}
	if cause != nil {
		if kind != nil || detail != "" {
			b.WriteString(": ")
		}
		b.WriteString(cause.Error())
	}
	e := &camError{msg: scrub(b.String(), u)}
	for _, k := range []error{kind, ctxErr, cause} {
		if k != nil {
			e.kinds = append(e.kinds, k)
		}
	}
	return e
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// errRedirect is returned by our DialContext for every dial after the first
// one of a gortsplib client: gortsplib only re-dials to follow a DESCRIBE
// redirect (we force TCP, so there is no UDP→TCP switch), and it would
// re-attach the original credentials to any host without a hop limit. We stop
// it there and follow the redirect ourselves.
var errRedirect = errors.New("redirect")

type forbiddenError struct{ addr string }

func (e *forbiddenError) Error() string { return "address " + e.addr + " forbidden by policy" }
func (e *forbiddenError) Is(target error) bool {
	return target == ErrForbiddenAddress
}

// dialer returns a DialContext that refuses addresses the policy forbids.
// The check runs in net.Dialer.Control, i.e. on the resolved IP actually
// being connected to (no DNS-rebinding window).
func (p Policy) dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{
		KeepAlive: 15 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !p.Permits(ap.Addr()) {
				return &forbiddenError{addr: address}
			}
			return nil
		},
	}
	return d.DialContext
}

// hopState is shared between a gortsplib client's callbacks and connect.
type hopState struct {
	mu       sync.Mutex
	dials    int
	location string
}

// track is what connect hands to the caller's packet handler factory.
type track struct {
	SPS, PPS []byte
}

// auFunc receives each complete access unit with its PTS (90 kHz ticks from
// the start of the connection) and the receive time. It runs on the client's
// reader goroutine and must not block.
type auFunc func(au [][]byte, pts int64, now time.Time)

// playing is a connected, playing client.
type playing struct {
	c   *gortsplib.Client
	url *url.URL // final URL (after redirects), with credentials
}

// connect dials u (following redirects within the policy), picks the H.264
// video track, sets it up over TCP and plays it. The whole connect phase is
// bounded by ctx: a watchdog closes the client when ctx is done. newHandler is
// called once the track is known and returns the access-unit callback.
func connect(ctx context.Context, orig *url.URL, opt Options, newHandler func(track) auFunc, onDecodeError func(error)) (*playing, error) {
	cur := orig
	redirects := 0
	for {
		p, loc, err := connectOnce(ctx, orig, cur, opt, newHandler, onDecodeError)
		if err == nil {
			return p, nil
		}
		if loc == "" {
			return nil, err
		}
		redirects++
		if redirects > opt.Policy.MaxRedirects {
			return nil, newErr(orig, ErrTooManyRedirects, nil, nil,
				fmt.Sprintf("more than %d redirects (last to %s)", opt.Policy.MaxRedirects, Redact(loc)))
		}
		next, err := nextHop(orig, cur, loc)
		if err != nil {
			return nil, newErr(orig, nil, err, nil, "bad redirect to "+Redact(loc))
		}
		opt.Logger.Debug("rtsp redirect", "from", redactURL(cur), "to", redactURL(next))
		cur = next
	}
}

// nextHop resolves a redirect Location. Credentials of the original URL are
// attached only when the target has the same host and port as the original;
// credentials offered by the Location itself are dropped.
func nextHop(orig, cur *url.URL, loc string) (*url.URL, error) {
	ref, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	next := cur.ResolveReference(ref)
	if next.Scheme != "rtsp" && next.Scheme != "rtsps" {
		return nil, fmt.Errorf("unsupported scheme %q", next.Scheme)
	}
	if cur.Scheme == "rtsps" && next.Scheme != "rtsps" {
		return nil, errors.New("refusing to downgrade from rtsps to rtsp")
	}
	next.User = nil
	if sameHost(orig, next) {
		next.User = orig.User
	}
	next.Fragment = ""
	return next, nil
}

func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b) && a.Scheme == b.Scheme
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "rtsps" {
		return "322"
	}
	return "554"
}

func connectOnce(ctx context.Context, orig, u *url.URL, opt Options, newHandler func(track) auFunc, onDecodeError func(error)) (_ *playing, location string, _ error) {
	hs := &hopState{}
	policyDial := opt.Policy.dialer()
	tcp := gortsplib.ProtocolTCP
	log := opt.Logger
	redacted := redactURL(u)
	c := &gortsplib.Client{
		Scheme:       u.Scheme,
		Host:         u.Host,
		Protocol:     &tcp,
		ReadTimeout:  opt.ReadTimeout,
		WriteTimeout: opt.ReadTimeout,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			hs.mu.Lock()
			hs.dials++
			n := hs.dials
			hs.mu.Unlock()
			if n > 1 {
				return nil, errRedirect
			}
			return policyDial(ctx, network, address)
		},
		OnResponse: func(res *base.Response) {
			if res.StatusCode >= base.StatusMovedPermanently && res.StatusCode <= base.StatusUseProxy {
				if loc := res.Header["Location"]; len(loc) == 1 {
					hs.mu.Lock()
					hs.location = loc[0]
					hs.mu.Unlock()
				}
			}
		},
		OnTransportSwitch: func(err error) { log.Debug("rtsp transport switch", "url", redacted, "err", scrub(err.Error(), u)) },
		OnPacketsLost: func(lost uint64) {
			if onDecodeError != nil {
				onDecodeError(fmt.Errorf("%d RTP packets lost", lost))
			}
		},
		OnDecodeError: func(err error) {
			if onDecodeError != nil {
				onDecodeError(err)
			}
		},
	}
	if err := c.Start(); err != nil {
		return nil, "", newErr(u, nil, err, nil, "")
	}
	stop := context.AfterFunc(ctx, c.Close)
	fail := func(err error, phase string) (*playing, string, error) {
		stop()
		c.Close()
		if errors.Is(err, errRedirect) {
			hs.mu.Lock()
			loc := hs.location
			hs.mu.Unlock()
			if loc != "" {
				return nil, loc, err
			}
		}
		return nil, "", classify(ctx, u, err, phase)
	}

	bu := (*base.URL)(u)
	desc, _, err := c.Describe(bu)
	if err != nil {
		return fail(err, "describe")
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		var codecs []string
		for _, m := range desc.Medias {
			for _, f := range m.Formats {
				codecs = append(codecs, f.Codec())
			}
		}
		stop()
		c.Close()
		return nil, "", newErr(u, ErrUnsupportedCodec, nil, nil,
			fmt.Sprintf("no H.264 video track (offered: %s)", strings.Join(codecs, ", ")))
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		stop()
		c.Close()
		return nil, "", newErr(u, ErrUnsupportedCodec, err, nil, "")
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return fail(err, "setup")
	}
	sps, pps := forma.SafeParams()
	onAU := newHandler(track{SPS: sps, PPS: pps})

	// AU/PTS pairing: rtph264.Decoder returns an AU either on the marker bit
	// (the AU is the current packet's) or, for cameras without marker bits,
	// when the timestamp changes (the AU is the previous packet's).
	var pending bool
	var pendingTS uint32
	var pendingPTS int64
	var pendingOK bool
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		pts, ok := c.PacketPTS(medi, pkt)
		au, err := dec.Decode(pkt)
		switch {
		case err == nil:
			auPTS, auOK := pts, ok
			if pending && pkt.Timestamp != pendingTS {
				// returned because the timestamp changed; this packet is buffered
				auPTS, auOK = pendingPTS, pendingOK
				pending, pendingTS, pendingPTS, pendingOK = true, pkt.Timestamp, pts, ok
			} else {
				pending = false
			}
			if auOK && len(au) > 0 {
				onAU(au, auPTS, time.Now())
			}
		case errors.Is(err, rtph264.ErrMorePacketsNeeded):
			pending, pendingTS, pendingPTS, pendingOK = true, pkt.Timestamp, pts, ok
		case errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious):
		default:
			pending = false
			if onDecodeError != nil {
				onDecodeError(err)
			}
		}
	})
	if _, err := c.Play(nil); err != nil {
		return fail(err, "play")
	}
	if !stop() {
		// the watchdog fired while PLAY was answered: the client is closing.
		c.Close()
		return nil, "", classify(ctx, u, liberrors.ErrClientTerminated{}, "play")
	}
	return &playing{c: c, url: u}, "", nil
}

// classify maps a gortsplib / network error to one of the package sentinels.
func classify(ctx context.Context, u *url.URL, err error, phase string) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return newErr(u, ErrUnreachable, nil, ctxErr, "no answer to "+strings.ToUpper(phase)+" before the deadline")
		}
		return newErr(u, nil, nil, ctxErr, "canceled during "+phase)
	}
	if errors.Is(err, ErrForbiddenAddress) {
		return newErr(u, nil, err, nil, "")
	}
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		if bad.Code == base.StatusUnauthorized || bad.Code == base.StatusForbidden {
			return newErr(u, ErrUnauthorized, err, nil, phase)
		}
		return newErr(u, nil, err, nil, phase)
	}
	var authSetup liberrors.ErrClientAuthSetup
	if errors.As(err, &authSetup) {
		return newErr(u, ErrUnauthorized, err, nil, phase)
	}
	var tcpTO liberrors.ErrClientTCPTimeout
	if errors.As(err, &tcpTO) {
		return newErr(u, ErrUnreachable, err, nil, "stalled")
	}
	if isUnreachable(err) {
		return newErr(u, ErrUnreachable, err, nil, phase)
	}
	return newErr(u, nil, err, nil, phase)
}

func isUnreachable(err error) bool {
	var netErr net.Error
	var reqTO liberrors.ErrClientRequestTimedOut
	var term liberrors.ErrClientTerminated
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &reqTO) || errors.As(err, &term) || errors.Is(err, errStalled)
}

// errStalled is reported when a playing connection delivers no video for ReadTimeout.
var errStalled = errors.New("no video data (stalled)")

// parseURL validates rawURL.
func parseURL(rawURL string) (*url.URL, error) {
	bu, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, newErr(nil, nil, nil, nil, "invalid URL "+Redact(rawURL)+": "+scrub(err.Error(), nil))
	}
	u := (*url.URL)(bu)
	if u.Host == "" {
		return nil, newErr(nil, nil, nil, nil, "invalid URL "+Redact(rawURL)+": no host")
	}
	return u, nil
}
