package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Leases are named, expiring ownerships in a JetStream KV bucket, for work
// that exactly one node of a cluster must do (a camera's recorder): the
// holder renews its lease well within TTL; when it stops (crash, kill -9,
// network split), the key expires and another node takes it over.
type Leases struct {
	kv   jetstream.KeyValue
	node string
	ttl  time.Duration
}

// OpenLeases creates (or adopts) the bucket with the bus's replicas. node
// names this holder; it must differ between nodes.
func (b *Bus) OpenLeases(ctx context.Context, bucket, node string, ttl time.Duration) (*Leases, error) {
	if node == "" {
		return nil, errors.New("leases: the node needs a name")
	}
	kv, err := b.EnsureKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, TTL: ttl, Storage: jetstream.FileStorage,
		Description: "Leases: which node does which exclusive work (expire after TTL without renewal)"})
	if err != nil {
		return nil, fmt.Errorf("leases %s: %w", bucket, err)
	}
	return &Leases{kv: kv, node: node, ttl: ttl}, nil
}

// TTL is how long a lease outlives its last renewal.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Acquire takes key if it is free, or renews it if this node holds it,
// and reports whether this node holds it now. Compare-and-set on the
// key's revision makes two nodes racing for a free key end with one
// holder.
func (l *Leases) Acquire(ctx context.Context, key string) (bool, error) {
	e, err := l.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) || (err == nil && (e.Operation() == jetstream.KeyValueDelete || e.Operation() == jetstream.KeyValuePurge)):
		rev := uint64(0)
		if e != nil {
			rev = e.Revision()
		}
		if rev == 0 {
			_, err = l.kv.Create(ctx, key, []byte(l.node))
		} else {
			_, err = l.kv.Update(ctx, key, []byte(l.node), rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
			return false, nil // another node was faster
		}
		return err == nil, err
	case err != nil:
		return false, err
	case string(e.Value()) != l.node:
		return false, nil
	}
	if _, err := l.kv.Update(ctx, key, []byte(l.node), e.Revision()); err != nil {
		if isWrongSequence(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Release gives key up if this node holds it.
func (l *Leases) Release(ctx context.Context, key string) error {
	e, err := l.kv.Get(ctx, key)
	if err != nil || string(e.Value()) != l.node {
		return nil
	}
	return l.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
}

// Holder names the node holding key ("" when free).
func (l *Leases) Holder(ctx context.Context, key string) (string, error) {
	e, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if e.Operation() != jetstream.KeyValuePut {
		return "", nil
	}
	return string(e.Value()), nil
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
