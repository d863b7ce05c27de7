// Package snapshot turns an H.264 keyframe (rtsp.Keyframe) into a JPEG.
//
// The default decoder runs the ffmpeg CLI as a subprocess: the build stays
// pure Go (CGO_ENABLED=0 works) and a decoder crash or exploit through a
// hostile camera's bitstream only hits a short-lived child process. Builds
// with the "libav" tag (cgo, Debian's libavcodec-dev and libswscale-dev)
// also get LibAV, an in-process libavcodec decoder that is several times
// faster, and Default returns it.
package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/rtsp"
)

// Decoder decodes a keyframe into a JPEG image.
type Decoder interface {
	JPEG(ctx context.Context, k *rtsp.Keyframe) ([]byte, error)
}

// ErrNoPicture is returned for an empty or undecodable keyframe.
var ErrNoPicture = errors.New("snapshot: no picture decoded")

// Default returns the decoder to use: LibAV in builds with the "libav" tag,
// otherwise an FFmpeg subprocess decoder with default settings.
func Default() Decoder {
	if defaultDecoder != nil {
		return defaultDecoder()
	}
	return &FFmpeg{}
}

// defaultDecoder is set by snapshot_libav.go in libav builds.
var defaultDecoder func() Decoder

// maxJPEGBytes caps what is read from ffmpeg's stdout.
const maxJPEGBytes = 20 << 20

// FFmpeg decodes with the ffmpeg CLI:
//
//	ffmpeg -f h264 -i pipe:0 -frames:v 1 -c:v mjpeg -f image2pipe pipe:1
//
// fed with Keyframe.AnnexB. One process per picture, killed with ctx, at
// most MaxConcurrent at a time, single-threaded, stdout capped at 20 MiB and
// stderr at 64 KiB; failures carry ffmpeg's last stderr line. An FFmpeg must
// not be copied after first use.
type FFmpeg struct {
	// Path of the ffmpeg binary (default "ffmpeg", looked up in PATH).
	Path string
	// MaxConcurrent bounds concurrent ffmpeg processes (default 2); callers
	// beyond it wait (or give up with their ctx).
	MaxConcurrent int
	// Quality is ffmpeg's -q:v for the JPEG: 2 (best) … 31 (worst); default 3.
	Quality int
	// Timeout bounds one decode when ctx has no earlier deadline (default 5s).
	Timeout time.Duration
	// AllAUs decodes every access unit of the keyframe (an IDR plus the GOP
	// that followed, as Session.Latest returns) and returns the last picture:
	// fresher but slower. Default: the IDR picture only.
	AllAUs bool

	once sync.Once
	sem  chan struct{}
}

// JPEG implements Decoder.
func (f *FFmpeg) JPEG(ctx context.Context, k *rtsp.Keyframe) ([]byte, error) {
	if k == nil || len(k.AUs) == 0 {
		return nil, ErrNoPicture
	}
	if k.Codec != "" && k.Codec != "H264" {
		return nil, fmt.Errorf("snapshot: codec %s not supported", k.Codec)
	}
	f.once.Do(func() {
		n := f.MaxConcurrent
		if n <= 0 {
			n = 2
		}
		f.sem = make(chan struct{}, n)
	})
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("snapshot: waiting for a decoder slot: %w", ctx.Err())
	}

	path := f.Path
	if path == "" {
		path = "ffmpeg"
	}
	q := f.Quality
	if q < 2 || q > 31 {
		q = 3
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-threads", "1", "-f", "h264", "-i", "pipe:0"}
	if f.AllAUs && len(k.AUs) > 1 {
		// keep the last decoded picture only
		args = append(args, "-vf", "select=eq(n\\,"+strconv.Itoa(len(k.AUs)-1)+")", "-fps_mode", "passthrough")
	}
	args = append(args, "-frames:v", "1", "-an", "-threads", "1",
		"-c:v", "mjpeg", "-q:v", strconv.Itoa(q), "-f", "image2pipe", "pipe:1")
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = bytes.NewReader(k.AnnexB(f.AllAUs))
	var stdout bytes.Buffer
	out := &capWriter{w: &stdout, n: maxJPEGBytes}
	var stderr bytes.Buffer
	cmd.Stdout = out
	cmd.Stderr = &capWriter{w: &stderr, n: 64 << 10, silent: true}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if out.over {
		return nil, fmt.Errorf("snapshot: ffmpeg output exceeds %d bytes", maxJPEGBytes)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("snapshot: ffmpeg: %w", ctx.Err())
		}
		var ee *exec.Error
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		return nil, fmt.Errorf("snapshot: ffmpeg failed (%v): %s", err, lastLine(stderr.String()))
	}
	b := stdout.Bytes()
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		msg := lastLine(stderr.String())
		if msg == "" {
			msg = "empty output"
		}
		return nil, fmt.Errorf("%w: ffmpeg: %s", ErrNoPicture, msg)
	}
	return b, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// capWriter keeps at most n bytes; silent drops the rest, otherwise it
// fails the write (which makes ffmpeg stop).
type capWriter struct {
	w      io.Writer
	n      int
	over   bool
	silent bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	if len(p) > c.n {
		if !c.silent {
			c.over = true
			return 0, errors.New("output too large")
		}
		_, _ = c.w.Write(p[:c.n])
		c.n = 0
		return len(p), nil
	}
	c.n -= len(p)
	return c.w.Write(p)
}
