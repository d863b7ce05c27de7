package camsim

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrNoFFmpeg is returned when the ffmpeg binary is not on PATH.
var ErrNoFFmpeg = errors.New("camsim: ffmpeg not found on PATH")

// Fixture kinds.
const (
	// KindTestsrc: ffmpeg testsrc2, 320x240, 10 fps, 10 s, IDR every 1 s
	// (GOP of 10 frames, B-frames on), H.264 High profile in MPEG-TS. The
	// picture carries a burned-in running timestamp (HH:MM:SS.mmm) and frame
	// number, top left.
	KindTestsrc = "testsrc"
	// KindVtest: real footage, the first 10 s of OpenCV's vtest.avi (Debian
	// package opencv-doc) scaled to 640x480, 10 fps, IDR every 1 s, in MPEG-TS.
	KindVtest = "vtest"
)

var fixtureMu sync.Mutex // one producer per process; files are renamed into place for other processes

func tempName(dir, pattern string) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	return name, f.Close()
}

// FixtureDir is where fixtures are cached: os.TempDir()/nagare-fixtures.
func FixtureDir() string { return filepath.Join(os.TempDir(), "nagare-fixtures") }

// Fixture returns the path of a cached H.264 MPEG-TS fixture of the given
// kind (KindTestsrc or KindVtest), producing it with ffmpeg on first use.
// KindVtest needs vtest.avi: it is taken from $NAGARE_VTEST_AVI, an
// installed opencv-doc, or fetched with `apt-get download opencv-doc` into
// the cache. Concurrent callers (even in several processes) are safe:
// files are written to a temporary name and renamed.
func Fixture(ctx context.Context, kind string) (string, error) {
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return "", ErrNoFFmpeg
	}
	dir := FixtureDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, kind+"-v1.ts")
	if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
		return out, nil
	}
	var args []string
	switch kind {
	case KindTestsrc:
		args = []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "10",
			"-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast",
			"-g", "10", "-keyint_min", "10", "-sc_threshold", "0", "-bf", "2", "-pix_fmt", "yuv420p"}
	case KindVtest:
		avi, err := vtestAVI(ctx, dir)
		if err != nil {
			return "", err
		}
		args = []string{"-i", avi, "-t", "10", "-an", "-vf", "scale=640:480", "-r", "10",
			"-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast",
			"-g", "10", "-keyint_min", "10", "-sc_threshold", "0", "-pix_fmt", "yuv420p"}
	default:
		return "", fmt.Errorf("camsim: unknown fixture kind %q (want %q or %q)", kind, KindTestsrc, KindVtest)
	}
	tmp, err := tempName(dir, kind+"-*.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	args = append(append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...), "-f", "mpegts", tmp)
	if err := runFFmpeg(ctx, args...); err != nil {
		return "", fmt.Errorf("camsim: fixture %s: %w", kind, err)
	}
	_ = os.Chmod(tmp, 0o644)
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// Transcode converts any ffmpeg-readable video file into an H.264 MPEG-TS
// that Config.File accepts: yuv420p, IDR every second, no audio. maxDur > 0
// keeps only the beginning.
func Transcode(ctx context.Context, in, out string, maxDur time.Duration) error {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return ErrNoFFmpeg
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", in}
	if maxDur > 0 {
		args = append(args, "-t", fmt.Sprintf("%.3f", maxDur.Seconds()))
	}
	args = append(args, "-an", "-sn", "-dn", "-map", "0:v:0",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-force_key_frames", "expr:gte(t,n_forced*1)", "-sc_threshold", "0",
		"-f", "mpegts", out)
	return runFFmpeg(ctx, args...)
}

func runFFmpeg(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 64 << 10}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return fmt.Errorf("ffmpeg: %w: %s", err, msg)
	}
	return nil
}

type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.n -= k
		_, _ = l.w.Write(p[:k])
	}
	return len(p), nil
}

const vtestInDeb = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"

// vtestAVI finds vtest.avi, or downloads opencv-doc and extracts just that file.
func vtestAVI(ctx context.Context, cache string) (string, error) {
	candidates := []string{
		os.Getenv("NAGARE_VTEST_AVI"),
		"/usr/share/doc/opencv-doc/examples/data/vtest.avi",
		filepath.Join(cache, "vtest.avi"),
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && fi.Size() > 0 {
			return c, nil
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", errors.New("camsim: vtest.avi not found (set NAGARE_VTEST_AVI or install opencv-doc) and apt-get is unavailable")
	}
	dl, err := os.MkdirTemp(cache, "opencv-doc-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dl)
	cmd := exec.CommandContext(ctx, "apt-get", "download", "opencv-doc")
	cmd.Dir = dl
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{w: &out, n: 16 << 10}, &limited{w: &out, n: 16 << 10}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("camsim: apt-get download opencv-doc: %w: %s", err, strings.TrimSpace(out.String()))
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "opencv-doc_*.deb"))
	if len(debs) == 0 {
		return "", errors.New("camsim: apt-get download opencv-doc produced no .deb")
	}
	// dpkg-deb --fsys-tarfile streams the data archive; keep only vtest.avi.
	tarCmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", debs[0])
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := tarCmd.Start(); err != nil {
		return "", fmt.Errorf("camsim: dpkg-deb: %w", err)
	}
	dst := filepath.Join(cache, "vtest.avi")
	tmp, err := tempName(cache, "vtest-*.tmp")
	if err != nil {
		return "", err
	}
	found := false
	tr := tar.NewReader(pipe)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name != vtestInDeb {
			continue
		}
		f, err := os.Create(tmp)
		if err != nil {
			break
		}
		_, cerr := io.Copy(f, io.LimitReader(tr, 64<<20))
		if err := f.Close(); cerr == nil && err == nil {
			found = true
		}
		break
	}
	_, _ = io.Copy(io.Discard, pipe)
	_ = tarCmd.Wait()
	if !found {
		os.Remove(tmp)
		return "", errors.New("camsim: vtest.avi not found in opencv-doc")
	}
	_ = os.Chmod(tmp, 0o644)
	if err := os.Rename(tmp, dst); err != nil {
		return "", err
	}
	return dst, nil
}
