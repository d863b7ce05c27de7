// Package store is nagare's SQL adapter: SQLite (modernc, pure Go) by
// default, PostgreSQL (pgx) when the DSN says postgres://. Both run the
// same embedded goose migrations and the same query text ($N placeholders,
// portable types), so nothing above this package knows which one it has.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DB is an open, migrated database.
type DB struct {
	*sql.DB
	Dialect string
	pool    *pgxpool.Pool
}

// IsPostgres reports whether dsn selects PostgreSQL.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// SQLitePath returns the database file a DSN names: "" means
// <dataDir>/nagare.db; "sqlite:///abs/path" or "sqlite://rel/path" a file.
func SQLitePath(dsn, dataDir string) (string, error) {
	switch {
	case dsn == "":
		return filepath.Join(dataDir, "nagare.db"), nil
	case strings.HasPrefix(dsn, "sqlite://"):
		p := strings.TrimPrefix(dsn, "sqlite://")
		if p == "" {
			return "", errors.New("sqlite:// needs a file path, e.g. sqlite:///var/lib/nagare/nagare.db")
		}
		return p, nil
	}
	return "", fmt.Errorf("unsupported database URL %q: use postgres://… or sqlite://PATH", redact(dsn))
}

// Open connects to the database named by dsn and applies migrations.
func Open(ctx context.Context, dsn, dataDir string) (*DB, error) {
	if IsPostgres(dsn) {
		return openPostgres(ctx, dsn)
	}
	path, err := SQLitePath(dsn, dataDir)
	if err != nil {
		return nil, err
	}
	return openSQLite(ctx, path)
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// synchronous(FULL): a 201 means the entry is on disk, even across power
	// loss. _txlock=immediate takes the write lock at BEGIN so concurrent
	// writers wait on busy_timeout instead of failing at lock upgrade.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	d := &DB{DB: db, Dialect: SQLite}
	// Processes opening one file together take turns migrating (what the
	// advisory lock does for PostgreSQL).
	unlock, err := lockFile(path + ".migrate.lock")
	if err != nil {
		db.Close()
		return nil, err
	}
	defer unlock()
	if err := d.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// lockFile takes an exclusive flock on path, waiting for other holders.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", redact(dsn), err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres %s: %w", redact(dsn), err)
	}
	d := &DB{DB: stdlib.OpenDBFromPool(pool), Dialect: Postgres, pool: pool}
	if err := d.migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if d.Dialect == Postgres {
		dialect = goose.DialectPostgres
		// Nodes starting together take turns through an advisory lock.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, d.DB, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// Close closes the database.
func (d *DB) Close() error {
	err := d.DB.Close()
	if d.pool != nil {
		d.pool.Close()
	}
	return err
}

// Tx runs fn in a transaction, committing when fn returns nil.
func (d *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// IsUniqueViolation reports whether err is a primary-key/unique conflict.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

// redact hides a password in a database URL.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Redact hides a password in a database URL for logs and errors.
func Redact(dsn string) string { return redact(dsn) }
