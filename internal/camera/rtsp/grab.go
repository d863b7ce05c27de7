package rtsp

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Grab connects to the camera at rawURL, waits for the first IDR access unit
// and disconnects. The whole operation (dial, RTSP handshake with Basic or
// Digest auth, redirects, waiting for the keyframe) is bounded by
// opt.Timeout and ctx, whichever ends first; a watchdog closes the client at
// the deadline because gortsplib's requests take no context.
//
// The returned Keyframe holds only the IDR access unit (len(AUs) == 1).
// Errors wrap ErrUnauthorized, ErrUnsupportedCodec, ErrNoKeyframe,
// ErrUnreachable, ErrForbiddenAddress or ErrTooManyRedirects (errors.Is).
func Grab(ctx context.Context, rawURL string, opt Options) (*Keyframe, error) {
	opt = opt.withDefaults()
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()

	got := make(chan *Keyframe, 1)
	handler := func(t track) auFunc {
		params := paramSets{sps: t.SPS, pps: t.PPS}
		return func(au [][]byte, _ int64, now time.Time) {
			if auSize(au) > opt.MaxAUBytes {
				return
			}
			params.update(au)
			if !h264.IsRandomAccess(au) || !params.ok() {
				return
			}
			select {
			case got <- newKeyframe(params, [][][]byte{au}, now):
			default:
			}
		}
	}
	p, err := connect(ctx, u, opt, handler, nil)
	if err != nil {
		return nil, err
	}
	defer p.c.Close()
	stop := context.AfterFunc(ctx, p.c.Close)
	defer stop()
	ended := make(chan error, 1)
	go func() { ended <- p.c.Wait() }()

	select {
	case k := <-got:
		return k, nil
	case <-ctx.Done():
	case err := <-ended:
		select {
		case k := <-got:
			return k, nil
		default:
		}
		if ctx.Err() == nil {
			return nil, classify(ctx, p.url, err, "stream")
		}
	}
	select {
	case k := <-got:
		return k, nil
	default:
	}
	if ctx.Err() == context.DeadlineExceeded {
		return nil, newErr(p.url, ErrNoKeyframe, nil, ctx.Err(),
			"stream plays but no IDR arrived in time (is the camera's keyframe interval longer than the budget?)")
	}
	return nil, newErr(p.url, nil, nil, ctx.Err(), "canceled while waiting for a keyframe")
}

// paramSets tracks the SPS/PPS in force: from the SDP first, overwritten by
// in-band parameter sets.
type paramSets struct{ sps, pps []byte }

func (p *paramSets) ok() bool { return len(p.sps) > 0 && len(p.pps) > 0 }

// update records in-band SPS/PPS of au and reports whether they changed.
func (p *paramSets) update(au [][]byte) bool {
	changed := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			if !bytes.Equal(p.sps, n) {
				p.sps, changed = n, true
			}
		case h264.NALUTypePPS:
			if !bytes.Equal(p.pps, n) {
				p.pps, changed = n, true
			}
		}
	}
	return changed
}

// withParams returns au with SPS and PPS in front unless it already has them
// (needed by h264.DTSExtractor for IDRs of cameras that send them only in the SDP).
func (p *paramSets) withParams(au [][]byte) [][]byte {
	for _, n := range au {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			return au
		}
	}
	out := make([][]byte, 0, len(au)+2)
	return append(append(out, p.sps, p.pps), au...)
}

func auSize(au [][]byte) int {
	n := 0
	for _, b := range au {
		n += len(b)
	}
	return n
}

func newKeyframe(p paramSets, aus [][][]byte, t time.Time) *Keyframe {
	k := &Keyframe{Codec: "H264", SPS: p.sps, PPS: p.pps, AUs: aus, Time: t}
	k.Width, k.Height = spsSize(p.sps)
	return k
}

func spsSize(sps []byte) (int, int) {
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return 0, 0
	}
	return s.Width(), s.Height()
}

// ticksToDuration converts 90 kHz ticks to a Duration without overflow.
func ticksToDuration(t int64) time.Duration {
	return time.Duration(t/90000)*time.Second + time.Duration(t%90000)*time.Second/90000
}

func (k *Keyframe) String() string {
	if k == nil {
		return "<nil keyframe>"
	}
	return fmt.Sprintf("%s %dx%d, %d AUs, at %s", k.Codec, k.Width, k.Height, len(k.AUs), k.Time.Format(time.RFC3339Nano))
}
