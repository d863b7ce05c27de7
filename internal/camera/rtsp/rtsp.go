// Package rtsp is nagare's RTSP camera client. It owns everything between an
// rtsp:// URL and H.264 access units in memory:
//
//   - Grab: a one-off "connect, wait for the first IDR, hang up" under an
//     overall deadline enforced by a watchdog (gortsplib's Describe/Setup/Play
//     take no context);
//   - Session: a long-lived per-camera connection that reconnects with
//     exponential back-off and jitter, caches the current GOP (for warm
//     snapshots, see Session.Latest) and fans access units out to subscribers
//     (for the recorder, see Session.Subscribe).
//
// Only RTSP over TCP (interleaved) and H.264 are supported. Credentials come
// from the URL userinfo; Basic and Digest are answered by gortsplib after a
// challenge. Hostile cameras are contained: every dial is checked against a
// Policy (SSRF), DESCRIBE redirects are bounded and never carry credentials to
// another host, access units and cached GOPs are size-capped, and every error
// message and log line has the URL's userinfo stripped.
//
// Decoding pictures is not done here: see package snapshot.
package rtsp

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Errors returned by Grab, Session.WaitKeyframe and reported by Session.Status.
// Test with errors.Is; the returned errors also wrap the underlying cause and,
// for deadlines, context.DeadlineExceeded.
var (
	// ErrUnauthorized: the camera answered 401 or 403 (missing or wrong credentials).
	ErrUnauthorized = errors.New("rtsp: unauthorized")
	// ErrUnsupportedCodec: the camera offers no H.264 video track.
	ErrUnsupportedCodec = errors.New("rtsp: unsupported codec")
	// ErrNoKeyframe: the stream played but no IDR arrived before the deadline.
	ErrNoKeyframe = errors.New("rtsp: no keyframe before the deadline")
	// ErrUnreachable: dial failed or was refused, the connection was closed or
	// stalled, or the camera did not answer before the deadline.
	ErrUnreachable = errors.New("rtsp: camera unreachable")
	// ErrForbiddenAddress: the Policy forbids the address the URL (or a
	// redirect) resolves to.
	ErrForbiddenAddress = errors.New("rtsp: address forbidden by policy")
	// ErrTooManyRedirects: more DESCRIBE redirects than Policy.MaxRedirects.
	ErrTooManyRedirects = errors.New("rtsp: too many redirects")
)

// Policy restricts where RTSP connections may go (SSRF): a custom DialContext
// checks the resolved IP of every dial, including redirect targets.
type Policy struct {
	// Allow lists the permitted networks; empty means any address except Deny.
	Allow []netip.Prefix
	// Deny lists forbidden networks; it wins over Allow.
	Deny []netip.Prefix
	// MaxRedirects is the number of DESCRIBE redirects followed (default 2;
	// negative: none). Credentials are never sent to a different host (host
	// and port) than the original URL's.
	MaxRedirects int
}

// Permits reports whether the policy allows connecting to addr.
func (p Policy) Permits(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, d := range p.Deny {
		if d.Contains(addr) {
			return false
		}
	}
	if len(p.Allow) == 0 {
		return true
	}
	for _, a := range p.Allow {
		if a.Contains(addr) {
			return true
		}
	}
	return false
}

// Options configures Grab and Session. The zero value is usable.
type Options struct {
	// Timeout is the overall deadline for a Grab and for the connect phase
	// (dial … PLAY) of each Session connection (default 10s). It is enforced
	// by a watchdog that closes the client.
	Timeout time.Duration
	// ReadTimeout bounds each RTSP request and, while playing, the time
	// without video packets before the connection counts as stalled (default 5s).
	ReadTimeout time.Duration
	// Policy restricts dialing and redirects.
	Policy Policy
	// MaxAUBytes caps one access unit (default 4 MiB); larger ones are dropped.
	MaxAUBytes int
	// MaxGOPBytes caps the GOP cached by a Session (default 16 MiB); once
	// reached, the cache keeps its keyframe and stops growing until the next IDR.
	MaxGOPBytes int

	// ReconnectMin and ReconnectMax bound a Session's reconnect back-off
	// (defaults 1s and 30s). The delay doubles per failed attempt, with
	// ±25 % jitter, and starts again from ReconnectMin after a connection
	// stayed healthy for max(30s, ReconnectMax).
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives connection events (default slog.Default()). URLs in log
	// lines never carry credentials.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Second
	}
	if o.Policy.MaxRedirects == 0 {
		o.Policy.MaxRedirects = 2
	} else if o.Policy.MaxRedirects < 0 {
		o.Policy.MaxRedirects = 0
	}
	if o.MaxAUBytes <= 0 {
		o.MaxAUBytes = 4 << 20
	}
	if o.MaxGOPBytes <= 0 {
		o.MaxGOPBytes = 16 << 20
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = time.Second
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 30 * time.Second
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Keyframe is a decodable H.264 picture: parameter sets + IDR access unit
// (+ optionally the following AUs of the GOP). A Keyframe and the byte slices
// it holds are shared and must not be modified.
type Keyframe struct {
	// Codec is "H264".
	Codec string
	// SPS and PPS are the parameter sets in force for AUs[0] (no start codes).
	SPS, PPS []byte
	// AUs holds access units in decode order, each a list of NAL units
	// without start codes; AUs[0] is the IDR access unit.
	AUs [][][]byte
	// Time is the wall clock when the IDR arrived.
	Time time.Time
	// Width and Height come from the SPS (0 if it could not be parsed).
	Width, Height int
}

// AnnexB returns the keyframe as an H.264 Annex-B byte stream ready for a
// decoder: SPS, PPS, the IDR access unit and, if allAUs, every following AU.
// In-band SPS/PPS of the IDR and access unit delimiters are left out.
func (k *Keyframe) AnnexB(allAUs bool) []byte {
	if k == nil || len(k.AUs) == 0 {
		return nil
	}
	n := len(k.AUs)
	if !allAUs {
		n = 1
	}
	size := len(k.SPS) + len(k.PPS) + 8
	for _, au := range k.AUs[:n] {
		for _, nalu := range au {
			size += 4 + len(nalu)
		}
	}
	var b bytes.Buffer
	b.Grow(size)
	startCode := []byte{0, 0, 0, 1}
	if len(k.SPS) > 0 && len(k.PPS) > 0 {
		b.Write(startCode)
		b.Write(k.SPS)
		b.Write(startCode)
		b.Write(k.PPS)
	}
	for i, au := range k.AUs[:n] {
		for _, nalu := range au {
			if len(nalu) == 0 {
				continue
			}
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeAccessUnitDelimiter:
				continue
			case h264.NALUTypeSPS, h264.NALUTypePPS:
				if i == 0 && len(k.SPS) > 0 && len(k.PPS) > 0 {
					continue
				}
			}
			b.Write(startCode)
			b.Write(nalu)
		}
	}
	return b.Bytes()
}

// Redact returns rawURL without its userinfo, for logs and error messages.
// Unparseable input is scrubbed of anything between "://" and "@".
func Redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		u.User = nil
		return u.String()
	}
	return userinfoRE.ReplaceAllString(rawURL, "://")
}

var userinfoRE = regexp.MustCompile(`://[^/@]*@`)

// scrub removes the userinfo of u (in raw and escaped forms) and the bare
// password from a message produced by a library.
func scrub(msg string, u *url.URL) string {
	msg = userinfoRE.ReplaceAllString(msg, "://")
	if u == nil || u.User == nil {
		return msg
	}
	if pass, ok := u.User.Password(); ok && len(pass) >= 3 {
		msg = strings.ReplaceAll(msg, pass, "***")
		if esc := url.PathEscape(pass); esc != pass {
			msg = strings.ReplaceAll(msg, esc, "***")
		}
	}
	return msg
}
