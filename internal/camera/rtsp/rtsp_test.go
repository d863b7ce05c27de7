package rtsp_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
)

// Tests run against camsim, a real gortsplib RTSP server on loopback,
// looping an ffmpeg-encoded fixture in real time (IDR every second).

const (
	user = "admin"
	pass = "s3cret-Pa55"
)

// opts are short timeouts so hostile cases end quickly.
func opts() rtsp.Options {
	return rtsp.Options{Timeout: 6 * time.Second, ReadTimeout: 2 * time.Second}
}

func withCreds(u, user, pass string) string {
	return strings.Replace(u, "rtsp://", "rtsp://"+user+":"+pass+"@", 1)
}

func grab(t *testing.T, url string, o rtsp.Options) (*rtsp.Keyframe, error) {
	t.Helper()
	k, err := rtsp.Grab(context.Background(), url, o)
	if err != nil && strings.Contains(err.Error(), pass) {
		t.Errorf("error message leaks the password: %v", err)
	}
	return k, err
}

func checkKeyframe(t *testing.T, k *rtsp.Keyframe, w, h int) {
	t.Helper()
	if k == nil {
		t.Fatal("nil keyframe")
	}
	if k.Codec != "H264" || k.Width != w || k.Height != h {
		t.Fatalf("keyframe %v, want H264 %dx%d", k, w, h)
	}
	if len(k.SPS) == 0 || len(k.PPS) == 0 || len(k.AUs) != 1 {
		t.Fatalf("keyframe: sps %d B, pps %d B, %d AUs", len(k.SPS), len(k.PPS), len(k.AUs))
	}
	idr := false
	for _, n := range k.AUs[0] {
		if n[0]&0x1f == 5 {
			idr = true
		}
	}
	if !idr {
		t.Fatal("AUs[0] has no IDR slice")
	}
	if k.Time.IsZero() || time.Since(k.Time) > time.Minute {
		t.Fatalf("keyframe time %v", k.Time)
	}
	ab := k.AnnexB(false)
	if !bytes.HasPrefix(ab, append([]byte{0, 0, 0, 1}, k.SPS...)) {
		t.Fatal("AnnexB does not start with the SPS")
	}
}

func TestGrabNoAuth(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{})
	k, err := grab(t, cam.URL(), opts())
	if err != nil {
		t.Fatal(err)
	}
	checkKeyframe(t, k, 320, 240)
}

func TestGrabRealFootage(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, camsim.KindVtest)})
	k, err := grab(t, cam.URL(), opts())
	if err != nil {
		t.Fatal(err)
	}
	checkKeyframe(t, k, 640, 480)
}

func TestGrabInBandParameterSetsOnly(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{NoSDPParams: true})
	k, err := grab(t, cam.URL(), opts())
	if err != nil {
		t.Fatal(err)
	}
	checkKeyframe(t, k, 320, 240)
}

func TestGrabAuth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, scheme string
	}{{"basic", "Basic "}, {"digest", "Digest "}} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			cam := camtest.Camera(t, camsim.Config{User: user, Pass: pass, Methods: []string{tc.method}})
			k, err := grab(t, withCreds(cam.URL(), user, pass), opts())
			if err != nil {
				t.Fatal(err)
			}
			checkKeyframe(t, k, 320, 240)
			sawScheme := false
			for _, r := range cam.Requests() {
				if strings.HasPrefix(r.Authorization, tc.scheme) {
					sawScheme = true
				}
			}
			if !sawScheme {
				t.Fatalf("server never saw %q credentials: %+v", tc.scheme, cam.Requests())
			}
		})
	}
}

func TestGrabUnauthorized(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{User: user, Pass: pass})
	o := opts()
	o.Timeout = 30 * time.Second
	for name, url := range map[string]string{
		"wrong password": withCreds(cam.URL(), user, "wrong-"+pass),
		"no credentials": cam.URL(),
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := grab(t, url, o)
			if !errors.Is(err, rtsp.ErrUnauthorized) {
				t.Fatalf("err = %v, want ErrUnauthorized", err)
			}
			// fails on the 401, not at the deadline
			if errors.Is(err, context.DeadlineExceeded) || time.Since(start) > o.Timeout/2 {
				t.Fatalf("ErrUnauthorized came only at the deadline (%v): %v", time.Since(start), err)
			}
			if strings.Contains(err.Error(), "wrong-") || strings.Contains(err.Error(), "@") {
				t.Fatalf("error leaks credentials: %v", err)
			}
		})
	}
}

func TestGrabUnsupportedCodec(t *testing.T) {
	t.Parallel()
	for _, codec := range []string{"MJPEG", "H265"} {
		t.Run(codec, func(t *testing.T) {
			t.Parallel()
			cam := camtest.Camera(t, camsim.Config{Codec: codec})
			_, err := grab(t, cam.URL(), opts())
			if !errors.Is(err, rtsp.ErrUnsupportedCodec) {
				t.Fatalf("err = %v, want ErrUnsupportedCodec", err)
			}
		})
	}
}

// Not parallel: it counts goroutines.
func TestGrabNoKeyframeTimesOutWithoutLeaks(t *testing.T) {
	cam := camtest.Camera(t, camsim.Config{NoKeyframes: true})
	base := runtime.NumGoroutine()
	o := opts()
	o.Timeout = 1500 * time.Millisecond
	for i := 0; i < 3; i++ {
		_, err := grab(t, cam.URL(), o)
		if !errors.Is(err, rtsp.ErrNoKeyframe) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrNoKeyframe + DeadlineExceeded", err)
		}
	}
	waitGoroutines(t, base)
}

// Not parallel: it counts goroutines.
func TestGrabSilentServerHitsWatchdog(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // accept and never answer
		}
	}()
	base := runtime.NumGoroutine()
	o := rtsp.Options{Timeout: 1 * time.Second, ReadTimeout: 30 * time.Second}
	_, err = grab(t, "rtsp://"+user+":"+pass+"@"+l.Addr().String()+"/cam", o)
	if !errors.Is(err, rtsp.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnreachable + DeadlineExceeded", err)
	}
	waitGoroutines(t, base)
}

func TestGrabUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = grab(t, "rtsp://"+addr+"/cam", opts())
	if !errors.Is(err, rtsp.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

func TestGrabRedirectLoop(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{RedirectTo: "/cam"})
	o := opts()
	o.Policy.MaxRedirects = 3
	_, err := grab(t, cam.URL(), o)
	if !errors.Is(err, rtsp.ErrTooManyRedirects) {
		t.Fatalf("err = %v, want ErrTooManyRedirects", err)
	}
	describes := 0
	for _, r := range cam.Requests() {
		if r.Method == "DESCRIBE" {
			describes++
		}
	}
	if describes != 4 {
		t.Fatalf("server saw %d DESCRIBEs, want 1 + 3 redirects", describes)
	}
}

func TestGrabRedirectSameHostKeepsCredentials(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{User: user, Pass: pass, Methods: []string{"digest"}, RedirectTo: "/real"})
	k, err := grab(t, withCreds(cam.URL(), user, pass), opts())
	if err != nil {
		t.Fatal(err)
	}
	checkKeyframe(t, k, 320, 240)
}

// otherHost starts a camera on 127.0.0.2 (another host than 127.0.0.1 as far
// as URLs go), requiring credentials and offering Basic, so that a client
// leaking the password would send it in clear.
func otherHost(t *testing.T) *camsim.Server {
	t.Helper()
	return camtest.Camera(t, camsim.Config{Addr: "127.0.0.2:0", User: user, Pass: pass, Methods: []string{"basic"}})
}

func TestGrabRedirectToOtherHostDropsCredentials(t *testing.T) {
	t.Parallel()
	b := otherHost(t)
	a := camtest.Camera(t, camsim.Config{User: user, Pass: pass, RedirectTo: b.URL()})
	_, err := grab(t, withCreds(a.URL(), user, pass), opts())
	if !errors.Is(err, rtsp.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized from the other host", err)
	}
	sawA := false
	for _, r := range a.Requests() {
		sawA = sawA || r.Authorization != ""
	}
	if !sawA {
		t.Fatal("the original host never got credentials")
	}
	reqs := b.Requests()
	if len(reqs) == 0 {
		t.Fatal("the redirect was not followed")
	}
	for _, r := range reqs {
		if r.Authorization != "" {
			t.Fatalf("credentials sent to another host: %+v", r)
		}
	}
}

func TestGrabRedirectIntoForbiddenNetwork(t *testing.T) {
	t.Parallel()
	b := otherHost(t)
	a := camtest.Camera(t, camsim.Config{RedirectTo: b.URL()})
	o := opts()
	o.Policy.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	_, err := grab(t, a.URL(), o)
	if !errors.Is(err, rtsp.ErrForbiddenAddress) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
	if n := len(b.Requests()); n != 0 {
		t.Fatalf("forbidden host got %d requests", n)
	}
}

func TestGrabPolicyDeny(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{})
	o := opts()
	o.Policy.Deny = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, u := range []string{cam.URL(), strings.Replace(cam.URL(), "127.0.0.1", "localhost", 1)} {
		_, err := grab(t, u, o)
		if !errors.Is(err, rtsp.ErrForbiddenAddress) {
			t.Fatalf("%s: err = %v, want ErrForbiddenAddress", u, err)
		}
	}
	if n := len(cam.Requests()); n != 0 {
		t.Fatalf("camera got %d requests despite the policy", n)
	}
}

func TestGrabCanceled(t *testing.T) {
	t.Parallel()
	cam := camtest.Camera(t, camsim.Config{NoKeyframes: true})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err := rtsp.Grab(ctx, cam.URL(), opts())
	if !errors.Is(err, context.Canceled) || errors.Is(err, rtsp.ErrNoKeyframe) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestPolicyPermits(t *testing.T) {
	p := rtsp.Policy{
		Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
		Deny:  []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "10.9.1.1": false, "192.168.1.1": false,
		"::ffff:10.1.2.3": true, "fd12::1": true, "::1": false,
	} {
		if got := p.Permits(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Permits(%s) = %v, want %v", addr, got, want)
		}
	}
	if !(rtsp.Policy{}).Permits(netip.MustParseAddr("127.0.0.1")) {
		t.Error("empty policy must allow")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:pw@10.0.0.1:554/cam":   "rtsp://10.0.0.1:554/cam",
		"rtsp://10.0.0.1/cam":                "rtsp://10.0.0.1/cam",
		"rtsp://a:b%zz@host/x":               "rtsp://host/x",
		"rtsp://admin:p@ss@10.0.0.1:554/cam": "rtsp://10.0.0.1:554/cam",
	} {
		if got := rtsp.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeyframeAnnexB(t *testing.T) {
	k := &rtsp.Keyframe{
		SPS: []byte{0x67, 1}, PPS: []byte{0x68, 2},
		AUs: [][][]byte{
			{{0x09, 0xf0}, {0x67, 1}, {0x68, 2}, {0x65, 3}},
			{{0x41, 4}},
		},
	}
	sc := []byte{0, 0, 0, 1}
	join := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(append(b, sc...), p...)
		}
		return b
	}
	if got, want := k.AnnexB(false), join([]byte{0x67, 1}, []byte{0x68, 2}, []byte{0x65, 3}); !bytes.Equal(got, want) {
		t.Errorf("AnnexB(false) = %x, want %x", got, want)
	}
	if got, want := k.AnnexB(true), join([]byte{0x67, 1}, []byte{0x68, 2}, []byte{0x65, 3}, []byte{0x41, 4}); !bytes.Equal(got, want) {
		t.Errorf("AnnexB(true) = %x, want %x", got, want)
	}
}

// waitGoroutines polls until the goroutine count is back to base (with a
// small tolerance for runtime/test helpers), failing with a dump otherwise.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	const tolerance = 2
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+tolerance {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d, want <= %d\n%s", n, base+tolerance, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
