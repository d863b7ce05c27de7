package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Batcher commits the work of many concurrent callers in shared
// transactions (group commit): one commit, and so one fsync, per batch
// instead of one per caller. Each caller's function runs inside its own
// savepoint, so one caller's error rolls back only that caller's writes.
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
// error). fn must not keep tx, and must not commit or roll it back.
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
	fail := func(err error) {
		for _, it := range batch {
			if it.err == nil {
				it.err = err
			}
		}
	}
	tx, err := b.db.BeginTx(context.Background(), nil)
	if err != nil {
		fail(err)
		return
	}
	live := 0
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.err = err
			continue
		}
		if len(batch) == 1 {
			it.err = it.fn(tx)
			if it.err != nil {
				_ = tx.Rollback()
				return
			}
			live++
			continue
		}
		if _, err := tx.Exec("SAVEPOINT batch_item"); err != nil {
			_ = tx.Rollback()
			fail(err)
			return
		}
		if it.err = it.fn(tx); it.err != nil {
			if _, err := tx.Exec("ROLLBACK TO SAVEPOINT batch_item"); err != nil {
				_ = tx.Rollback()
				fail(err)
				return
			}
		} else {
			live++
		}
		if _, err := tx.Exec("RELEASE SAVEPOINT batch_item"); err != nil {
			_ = tx.Rollback()
			fail(err)
			return
		}
	}
	if live == 0 {
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		// Callers whose own fn failed keep their error; the rest get the
		// commit's.
		fail(err)
	}
}
