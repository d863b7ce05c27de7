package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Batcher commits the work of many concurrent callers in shared
// transactions (group commit): one commit, and so one fsync, per batch
// instead of one per caller. A caller whose function fails gets its own
// transaction on a retry, so its error never undoes the others' writes.
type Batcher struct {
	db    *DB
	max   int
	queue chan *batchItem
	once  sync.Once
	done  chan struct{}
}

type batchItem struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	err  error
	done chan struct{}
}

// NewBatcher starts a batcher that puts at most max callers in one
// transaction. Close stops it.
func NewBatcher(db *DB, max int) *Batcher {
	b := &Batcher{db: db, max: max, queue: make(chan *batchItem, max*4), done: make(chan struct{})}
	go b.loop()
	return b
}

// Do runs fn in a transaction shared with other callers and returns once
// that transaction committed (nil) or fn's writes were rolled back (the
// error). fn must not keep tx, and must not commit or roll it back; it
// may run twice (its first run rolled back), so it must not have effects
// outside the transaction.
func (b *Batcher) Do(ctx context.Context, fn func(tx *sql.Tx) error) error {
	it := &batchItem{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case b.queue <- it:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return fmt.Errorf("store: batcher closed")
	}
	<-it.done
	return it.err
}

// Close stops the batcher after the queued work is committed.
func (b *Batcher) Close() {
	b.once.Do(func() { close(b.queue) })
	<-b.done
}

func (b *Batcher) loop() {
	defer close(b.done)
	for it := range b.queue {
		batch := []*batchItem{it}
	fill:
		for len(batch) < b.max {
			select {
			case it, ok := <-b.queue:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		b.commit(batch)
		for _, it := range batch {
			close(it.done)
		}
	}
}

func (b *Batcher) commit(batch []*batchItem) {
	live := batch[:0:0]
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.err = err
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	// Fast path: everyone in one transaction. Failures are rare (callers
	// handle conflicts in SQL), so only when one fails is the batch rolled
	// back and each caller retried in a transaction of its own.
	err := b.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, it := range live {
			if err := it.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(live) == 1 {
		for _, it := range live {
			it.err = err
		}
		return
	}
	for _, it := range live {
		it.err = b.db.Tx(context.Background(), it.fn)
	}
}
