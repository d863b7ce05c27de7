// Package storetest gives tests a fresh database: SQLite in a temp dir by
// default, or — when NAGARE_TEST_POSTGRES holds a DSN — a new schema on that
// PostgreSQL server, dropped when the test ends. `make test` runs the suite
// both ways.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nagare-iot/nagare/internal/store"
)

// EnvPostgres names the variable holding the test PostgreSQL DSN.
const EnvPostgres = "NAGARE_TEST_POSTGRES"

// DSN returns a database URL for a fresh database for this test ("" means
// SQLite in the data directory).
func DSN(t testing.TB) string {
	base := os.Getenv(EnvPostgres)
	if base == "" {
		return ""
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("storetest: connecting to %s: %v", EnvPostgres, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens a fresh, migrated database for the test.
func Open(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), DSN(t), t.TempDir())
	if err != nil {
		t.Fatalf("storetest: open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
