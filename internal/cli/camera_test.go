package cli

import (
	"bytes"
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCameraSimulate(t *testing.T) {
	// -f with a file ffmpeg reads (here: the MPEG-TS fixture, re-encoded once)
	file := camtest.Fixture(t, camsim.KindTestsrc)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int)
	go func() {
		done <- cameraSimulate(ctx, []string{"-f", file, "-listen", "127.0.0.1:0", "-path", "/door", "-user", "admin", "-pass", "pw-123"}, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`serving (rtsp://\S+)`)
	var url string
	deadline := time.Now().Add(60 * time.Second)
	for url == "" {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if regexp.MustCompile(`pw-123`).MatchString(stdout.String()) {
		t.Fatal("password printed")
	}
	k, err := rtsp.Grab(context.Background(), "rtsp://admin:pw-123@"+url[len("rtsp://"):], rtsp.Options{Timeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if k.Width != 320 || k.Height != 240 {
		t.Fatalf("keyframe %v", k)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func TestCameraUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cameraCmd(nil, &out, &errOut); code != 2 {
		t.Fatalf("no args: exit %d", code)
	}
	if code := cameraCmd([]string{"bogus"}, &out, &errOut); code != 2 {
		t.Fatalf("bogus: exit %d", code)
	}
	if code := cameraCmd([]string{"simulate", "-user", "x"}, &out, &errOut); code != 2 {
		t.Fatalf("-user without -pass: exit %d", code)
	}
}
