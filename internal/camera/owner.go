package camera

import (
	"context"
	"encoding/base32"
	"log/slog"
	"strings"
	"time"
)

// Leaser decides which node runs a camera's session and recorder when
// several nodes serve the same cameras (bus.Leases over a replicated KV
// bucket). Without one, this node runs every camera's.
type Leaser interface {
	// Acquire takes or renews key; true: this node holds it now.
	Acquire(ctx context.Context, key string) (bool, error)
	// Release gives key up if this node holds it.
	Release(ctx context.Context, key string) error
	// TTL is how long a lease outlives its last renewal.
	TTL() time.Duration
	// Holder names the node holding key ("" when free).
	Holder(ctx context.Context, key string) (string, error)
}

// SetLeaser makes sessions and recorders run on one node at a time: the
// one holding the camera's lease, renewed every TTL/3. When that node
// stops, another takes the camera over within the TTL. Call before Start.
func (s *Service) SetLeaser(l Leaser) { s.leaser = l }

// leaseKey is a camera's key in the lease bucket (KV keys allow only
// letters, digits and a few marks).
func leaseKey(op, id string) string {
	return "cam." + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(op+"/"+id)))
}

// owns takes or renews the camera's lease (always true without a leaser).
func (s *Service) owns(op, id string) bool {
	if s.leaser == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok, err := s.leaser.Acquire(ctx, leaseKey(op, id))
	if err != nil {
		// Unsure: keep what runs (the lease expires if we cannot renew it)
		// but start nothing new.
		slog.Warn("camera: lease", "camera", id, "err", err)
		return s.session(op, id) != nil
	}
	return ok
}

// release gives the camera's lease up (deleted, or no longer recording).
func (s *Service) release(op, id string) {
	if s.leaser == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.leaser.Release(ctx, leaseKey(op, id)); err != nil {
		slog.Warn("camera: releasing a lease", "camera", id, "err", err)
	}
}

// ownLoop renews this node's leases, takes over cameras whose holder went
// away, and follows cameras registered, changed or deleted on other nodes.
func (s *Service) ownLoop(ctx context.Context) {
	t := time.NewTicker(max(s.leaser.TTL()/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cams, err := s.list(ctx, "")
		if err != nil {
			slog.Warn("camera: listing cameras", "err", err)
			continue
		}
		seen := map[string]bool{}
		for _, c := range cams {
			seen[c.OperatorID+"/"+c.DeviceID] = true
			s.syncSession(c)
		}
		s.mu.Lock()
		var gone []string
		for k := range s.sessions {
			if !seen[k] {
				gone = append(gone, k)
			}
		}
		s.mu.Unlock()
		for _, k := range gone {
			op, id, _ := strings.Cut(k, "/")
			s.stopSession(op, id)
			s.release(op, id)
		}
	}
}
