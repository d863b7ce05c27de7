package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/nagare-iot/nagare/internal/store"
	"github.com/nagare-iot/nagare/internal/store/storetest"
)

// One caller's failure rolls back only its own writes; the others in the
// same shared transaction commit.
func TestBatcherIsolatesFailures(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE batch_t (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	b := store.NewBatcher(db, 16)
	defer b.Close()
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Do(ctx, func(tx *sql.Tx) error {
				if _, err := tx.Exec(`INSERT INTO batch_t (k) VALUES ($1)`, fmt.Sprint(i)); err != nil {
					return err
				}
				if i%5 == 0 {
					return errors.New("refused")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%5 == 0) != (err != nil) {
			t.Errorf("caller %d: err %v", i, err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM batch_t`).Scan(&n); err != nil || n != 32 {
		t.Fatalf("rows = %d (%v); want 32", n, err)
	}
	// A duplicate key inside a batch fails only that caller.
	if err := b.Do(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO batch_t (k) VALUES ('1')`)
		return err
	}); !store.IsUniqueViolation(err) {
		t.Errorf("duplicate: %v", err)
	}
}
