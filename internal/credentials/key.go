// Package credentials owns the encrypted credentials store
// (/v1/credentials) and nagare's master secret key, from which the
// credentials encryption and URL-signing keys are derived.
package credentials

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/secrets"
	"gocloud.dev/secrets/localsecrets"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/store"
)

// KeyFile is the master key file in the data directory.
const KeyFile = "secret.key"

const checkPlain = "nagare-key-check"

// Keyring holds the master key.
type Keyring struct {
	master [32]byte
	ID     string // short fingerprint stored next to ciphertexts
	keeper *secrets.Keeper
}

func newKeyring(k []byte) *Keyring {
	kr := &Keyring{}
	copy(kr.master[:], k)
	sum := sha256.Sum256(kr.master[:])
	kr.ID = hex.EncodeToString(sum[:4])
	enc := kr.Derive("credentials")
	var ek [32]byte
	copy(ek[:], enc)
	kr.keeper = localsecrets.NewKeeper(ek)
	return kr
}

// Derive returns a 32-byte subkey for a purpose ("credentials",
// "signed-urls"), so one master key never does two jobs.
func (k *Keyring) Derive(label string) []byte {
	m := hmac.New(sha256.New, k.master[:])
	m.Write([]byte("nagare/" + label))
	return m.Sum(nil)
}

// Encrypt seals plaintext (NaCl secretbox, random nonce).
func (k *Keyring) Encrypt(ctx context.Context, plain []byte) ([]byte, error) {
	return k.keeper.Encrypt(ctx, plain)
}

// Decrypt opens a ciphertext from Encrypt.
func (k *Keyring) Decrypt(ctx context.Context, ct []byte) ([]byte, error) {
	return k.keeper.Decrypt(ctx, ct)
}

// OpenKeyring loads the master key: the configured one (NAGARE_SECRET_KEY)
// or DATA/secret.key. Only a database that has never held a key gets a new
// one generated (and written 0600); afterwards a missing or different key
// is a start-up error, never silently replaced. generated reports whether
// a key file was created.
func OpenKeyring(ctx context.Context, db *store.DB, dataDir, configured string) (kr *Keyring, generated bool, err error) {
	var check string
	err = db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'key_check'`).Scan(&check)
	fresh := errors.Is(err, sql.ErrNoRows)
	if err != nil && !fresh {
		return nil, false, err
	}
	path := filepath.Join(dataDir, KeyFile)
	var raw []byte
	switch {
	case configured != "":
		raw, err = config.DecodeKey(configured)
		if err != nil || len(raw) != 32 {
			return nil, false, errors.New("secret key: NAGARE_SECRET_KEY must be base64 of 32 bytes")
		}
	default:
		b, ferr := os.ReadFile(path)
		switch {
		case ferr == nil:
			raw, err = config.DecodeKey(strings.TrimSpace(string(b)))
			if err != nil || len(raw) != 32 {
				return nil, false, fmt.Errorf("secret key: %s must hold base64 of 32 bytes", path)
			}
		case os.IsNotExist(ferr) && fresh:
			raw = make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return nil, false, err
			}
			if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
				return nil, false, fmt.Errorf("secret key: writing %s: %w", path, err)
			}
			generated = true
		case os.IsNotExist(ferr):
			return nil, false, fmt.Errorf("secret key missing: this database was set up with a secret key, but NAGARE_SECRET_KEY is not set and %s does not exist; restore the key (credentials cannot be decrypted without it)", path)
		default:
			return nil, false, fmt.Errorf("secret key: %w", ferr)
		}
	}
	kr = newKeyring(raw)
	if fresh {
		ct, err := kr.Encrypt(ctx, []byte(checkPlain))
		if err != nil {
			return nil, false, err
		}
		_, err = db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING`, base64.StdEncoding.EncodeToString(ct))
		if err != nil {
			return nil, false, err
		}
		// Another node may have set up the database concurrently with a
		// different key: re-read and verify below.
		if err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'key_check'`).Scan(&check); err != nil {
			return nil, false, err
		}
	}
	ct, err := base64.StdEncoding.DecodeString(check)
	if err != nil {
		return nil, false, errors.New("secret key: stored key check is corrupt")
	}
	if pt, err := kr.Decrypt(ctx, ct); err != nil || string(pt) != checkPlain {
		return nil, false, errors.New("secret key does not match the key this database was set up with (check NAGARE_SECRET_KEY or DATA/secret.key)")
	}
	return kr, generated, nil
}
