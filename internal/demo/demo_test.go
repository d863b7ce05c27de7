package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/demo"
	"github.com/nagare-iot/nagare/internal/servertest"
	"github.com/nagare-iot/nagare/internal/store/storetest"
	"github.com/nagare-iot/nagare/internal/testaddr"
)

// syncBuffer is a bytes.Buffer the demo writes while the test reads.
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

// A demo started again on the data directory of an earlier one (--data)
// on other ports: nothing is set up twice, and what names this run's
// ports (the camera's RTSP URL, the outbox's Slack URL) is current, so
// the camera answers and the call button reaches the outbox.
func TestDemoAgainOnItsDataDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	camtest.Fixture(t, camsim.KindVtest) // skips without ffmpeg; warms the cache
	data := t.TempDir()
	dsn := storetest.DSN(t)
	models := servertest.WithVisionModels(t)
	start := func() (stop func(), base, password string) {
		t.Helper()
		cfg := config.Defaults()
		cfg.DataDir, cfg.DB, cfg.Listen, cfg.MQTTListen = data, dsn, testaddr.Loopback(t), "off"
		cfg.SecretKey = "bmFnYXJlLWRlbW8tdGVzdC1rZXktMDEyMzQ1Njc4OWE="
		cfg.ShutdownTimeout = 5 * time.Second
		models(cfg)
		password = demo.Prepare(cfg)
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() { done <- demo.Run(ctx, cfg, demo.Options{Period: 5 * time.Second, Out: out}) }()
		deadline := time.After(2 * time.Minute)
		for !strings.Contains(out.String(), "Stop with Ctrl-C") {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("the demo stopped before it was set up: %v", err)
			case <-deadline:
				cancel()
				<-done
				t.Fatal("the demo was not set up within 2 minutes")
			case <-time.After(200 * time.Millisecond):
			}
		}
		return func() { cancel(); <-done }, "http://" + cfg.Listen, password
	}

	stop, _, _ := start()
	stop()
	again := time.Now()
	stop, base, password := start()
	defer stop()

	var session struct{ APIKey, Token string }
	res, err := http.Post(base+"/v1/auth", "application/json", strings.NewReader(`{"email":"root@nagare.local","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(res.Body).Decode(&session)
	res.Body.Close()
	get := func(path string, out any) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("X-Soracom-API-Key", session.APIKey)
		req.Header.Set("X-Soracom-Token", session.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if out != nil {
			_ = json.Unmarshal(b, out)
		}
		return res.StatusCode, b
	}

	for path, what := range map[string]string{
		"/v1/devices?tag_name=name&tag_value=booth-1":     "call buttons",
		"/v1/groups?tag_name=name&tag_value=call-buttons": "call-button groups",
	} {
		var list []any
		if st, b := get(path, &list); st != 200 || len(list) != 1 {
			t.Errorf("%d %s after the second start: %d %s", len(list), what, st, b)
		}
	}
	// The camera is registered with this run's simulator.
	var st int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if st, _ = get("/v1/sora_cam/devices/7CDDDEADBEEF/snapshot", nil); st == 200 {
			break
		}
	}
	if st != 200 {
		t.Errorf("camera snapshot after the second start: %d", st)
	}
	// The simulated button press of this run reaches the outbox as Slack.
	slack := false
	for deadline := time.Now().Add(45 * time.Second); !slack && time.Now().Before(deadline); time.Sleep(time.Second) {
		var entries []struct{ Content string }
		get(fmt.Sprintf("/v1/data/App/%s?from=%d&limit=100", demo.OutboxResource, again.UnixMilli()), &entries)
		for _, e := range entries {
			if strings.Contains(e.Content, `"service":"slack"`) {
				slack = true
			}
		}
	}
	if !slack {
		t.Error("no Slack message reached the outbox after the second start")
	}
}
