package store_test

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"

	"github.com/nagare-iot/nagare/internal/store"
	"github.com/nagare-iot/nagare/internal/store/storetest"
)

func TestMigrationsIdempotentAndConcurrent(t *testing.T) {
	dsn := storetest.DSN(t)
	dir := t.TempDir()
	// Nodes starting together: migrations run once, guarded by a lock.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			db, err := store.Open(context.Background(), dsn, dir)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	db, err := store.Open(context.Background(), dsn, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM devices`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("devices table: %d %v", n, err)
	}
}

func TestUniqueViolationAndTx(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	ins := `INSERT INTO meta (key, value) VALUES ($1, $2)`
	if _, err := db.ExecContext(ctx, ins, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	_, err := db.ExecContext(ctx, ins, "k", "v2")
	if !store.IsUniqueViolation(err) {
		t.Fatalf("duplicate key: %v is not a unique violation", err)
	}
	if store.IsUniqueViolation(nil) {
		t.Fatal("nil is not a violation")
	}
}

func TestTxRollsBack(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('a', '1')`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('a', '2')`)
		return err
	})
	if err == nil {
		t.Fatal("duplicate insert in a Tx succeeded")
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM meta WHERE key = 'a'`).Scan(&n)
	if n != 0 {
		t.Fatalf("rolled-back row is visible: %d", n)
	}
}

func TestPaths(t *testing.T) {
	if p, _ := store.SQLitePath("", "/d"); p != "/d/nagare.db" {
		t.Fatal(p)
	}
	if p, _ := store.SQLitePath("sqlite:///var/x.db", "/d"); p != "/var/x.db" {
		t.Fatal(p)
	}
	if _, err := store.SQLitePath("mysql://x", "/d"); err == nil {
		t.Fatal("mysql accepted")
	}
	if r := store.Redact("postgres://u:hunter2@h/db"); strings.Contains(r, "hunter2") {
		t.Fatal(r)
	}
	if _, err := store.Open(context.Background(), "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=1", t.TempDir()); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unreachable postgres: %v", err)
	}
}
