package camera

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/coretest"
	"github.com/nagare-iot/nagare/internal/inventory"
)

// memLeases is a Leaser shared by the test's "nodes", with bus.Leases'
// rules (tested against NATS in internal/bus).
type memLeases struct {
	mu     sync.Mutex
	ttl    time.Duration
	holder map[string]string
	until  map[string]time.Time
}

type memLeaser struct {
	m    *memLeases
	node string
}

func (l memLeaser) Acquire(_ context.Context, key string) (bool, error) {
	m := l.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.holder[key]; h != "" && h != l.node && time.Now().Before(m.until[key]) {
		return false, nil
	}
	m.holder[key], m.until[key] = l.node, time.Now().Add(m.ttl)
	return true, nil
}

func (l memLeaser) Release(_ context.Context, key string) error {
	m := l.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holder[key] == l.node {
		delete(m.holder, key)
	}
	return nil
}

func (l memLeaser) TTL() time.Duration { return l.m.ttl }

func (l memLeaser) Holder(_ context.Context, key string) (string, error) {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	return l.m.holder[key], nil
}

// Two nodes serving the same cameras: exactly one runs a recording
// camera's session; when it stops, the other takes the camera over
// within the lease time; a camera registered on one node is picked up.
func TestOneRecorderPerCamera(t *testing.T) {
	core := coretest.New(t, 1<<20)
	inv := inventory.New(core.DB)
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "testsrc")})
	leases := &memLeases{ttl: time.Second, holder: map[string]string{}, until: map[string]time.Time{}}
	node := func(name string) *Service {
		s := New(core.DB, core.Blobs, core.Files, core.Creds, inv, Options{Node: name})
		s.SetSpoolDir(t.TempDir())
		s.SetLeaser(memLeaser{leases, name})
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	n1, n2 := node("n1"), node("n2")
	defer n2.Close()
	url, rec := cam.URL(), true
	if _, err := n1.create(t.Context(), core.OperatorID, &CameraInput{DeviceID: "C1", RTSPURL: &url, Recording: &rec}); err != nil {
		t.Fatal(err)
	}
	runs := func(s *Service) bool { return s.session(core.OperatorID, "C1") != nil }
	// n1 registered it and holds it; n2, which learns of it on its next
	// round, must not start a second session.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if runs(n2) {
			t.Fatal("both nodes run the camera")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !runs(n1) {
		t.Fatal("no node runs the camera")
	}
	// n1 stops (without releasing, as after kill -9): n2 takes over.
	stopped := time.Now()
	n1.leaser = nil // a killed node releases nothing (Close would)
	n1.Close()
	for !runs(n2) {
		if time.Since(stopped) > 5*time.Second {
			t.Fatal("n2 did not take the camera over")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("failover after %s (lease %s)", time.Since(stopped).Round(10*time.Millisecond), leases.ttl)
}
