// Package auth owns who may call nagare: the operator and its root
// account, SAM-style users with passwords and auth keys, API tokens, and
// permission documents. It implements api.Authenticator.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/store"
)

// MaxTokenTimeout is the longest token a login may ask for (SORACOM's limit).
const MaxTokenTimeout = 172800 * time.Second

// Service implements authentication, authorization and the auth API.
type Service struct {
	db           *store.DB
	tokenTimeout time.Duration
	now          func() time.Time
	policies     policyCache
	throttle     *loginThrottle
}

// New creates the auth service. tokenTimeout is the default token life.
func New(db *store.DB, tokenTimeout time.Duration) *Service {
	return &Service{db: db, tokenTimeout: tokenTimeout, now: time.Now, throttle: newLoginThrottle()}
}

// SetClock replaces the clock (tests of token expiry).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RandomString returns n random characters from alphabet (crypto/rand).
func RandomString(n int, alphabet string) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// NewSecret returns a high-entropy secret with a prefix ("secret-…").
func NewSecret(prefix string) string { return prefix + RandomString(48, alnum) }

// HashSecret hashes a high-entropy secret (auth keys, tokens, device
// secrets) for storage. SHA-256 suffices: these are random, not passwords.
func HashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// SecretMatches compares a secret with a stored hash in constant time.
func SecretMatches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}

// HashPassword hashes a user-chosen password (bcrypt).
func HashPassword(pw string) (string, error) {
	if len(pw) < 8 {
		return "", api.Invalid("password must have at least 8 characters")
	}
	if len(pw) > 72 {
		return "", api.Invalid("password must have at most 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

// PasswordMatches checks a password against a bcrypt hash.
func PasswordMatches(pw, hash string) bool {
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// BootstrapOptions configure the operator's root account at start-up.
type BootstrapOptions struct {
	Email        string
	Password     string // set when non-empty
	RootKeyID    string // install this root auth key when non-empty
	RootKey      string
	DataDir      string // where a generated root key is written (0600)
	KeyFileName  string // default root-auth-key.json
	GeneratedKey func(id, secret, path string)
}

// RootKeyFile is the file a generated root auth key is written to.
const RootKeyFile = "root-auth-key.json"

// Bootstrap makes sure the operator exists and has a way in. On a fresh
// database it generates a root auth key, writes it 0600 into the data
// directory and reports it through opts.GeneratedKey (printed once).
// It returns the operator ID.
func (s *Service) Bootstrap(ctx context.Context, opts BootstrapOptions) (string, error) {
	opID, err := s.ensureOperator(ctx, opts.Email)
	if err != nil {
		return "", err
	}
	if opts.Password != "" {
		h, err := HashPassword(opts.Password)
		if err != nil {
			return "", err
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE operators SET password_hash = $1 WHERE operator_id = $2`, h, opID); err != nil {
			return "", err
		}
	}
	if opts.RootKeyID != "" {
		// Install (or re-key) the configured root auth key.
		_, err := s.db.ExecContext(ctx, `INSERT INTO auth_keys (auth_key_id, operator_id, user_name, secret_hash, created_at)
			VALUES ($1, $2, '', $3, $4)
			ON CONFLICT (auth_key_id) DO UPDATE SET secret_hash = excluded.secret_hash
			WHERE auth_keys.operator_id = excluded.operator_id AND auth_keys.user_name = ''`,
			opts.RootKeyID, opID, HashSecret(opts.RootKey), ms(s.now()))
		return opID, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_keys WHERE operator_id = $1 AND user_name = ''`, opID).Scan(&n); err != nil {
		return "", err
	}
	if n > 0 {
		return opID, nil
	}
	id, secret, err := s.GenerateAuthKey(ctx, opID, "")
	if err != nil {
		return "", err
	}
	name := opts.KeyFileName
	if name == "" {
		name = RootKeyFile
	}
	path := filepath.Join(opts.DataDir, name)
	body, _ := json.MarshalIndent(map[string]string{"operatorId": opID, "authKeyId": id, "authKey": secret}, "", "  ")
	if err := os.WriteFile(path, append(body, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("writing root auth key: %w", err)
	}
	if opts.GeneratedKey != nil {
		opts.GeneratedKey(id, secret, path)
	}
	return opID, nil
}

func (s *Service) ensureOperator(ctx context.Context, email string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT operator_id FROM operators ORDER BY created_at LIMIT 1`).Scan(&id)
	if err == nil {
		if email != "" {
			_, err = s.db.ExecContext(ctx, `UPDATE operators SET email = $1 WHERE operator_id = $2`, email, id)
		}
		return id, err
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	id = "OP" + RandomString(10, "0123456789")
	_, err = s.db.ExecContext(ctx, `INSERT INTO operators (operator_id, email, created_at) VALUES ($1, $2, $3)`, id, email, ms(s.now()))
	if store.IsUniqueViolation(err) {
		// Another node created it first.
		return s.ensureOperator(ctx, "")
	}
	return id, err
}

// GenerateAuthKey creates an auth key for the root account (userName "")
// or a user. The secret is returned once and stored hashed.
func (s *Service) GenerateAuthKey(ctx context.Context, operatorID, userName string) (id, secret string, err error) {
	id = "keyId-" + RandomString(32, alnum)
	secret = NewSecret("secret-")
	_, err = s.db.ExecContext(ctx, `INSERT INTO auth_keys (auth_key_id, operator_id, user_name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		id, operatorID, userName, HashSecret(secret), ms(s.now()))
	return id, secret, err
}

// LoginRequest is the body of POST /v1/auth (SORACOM AuthRequest).
type LoginRequest struct {
	Email               string `json:"email,omitempty"`
	Password            string `json:"password,omitempty"`
	AuthKeyID           string `json:"authKeyId,omitempty"`
	AuthKey             string `json:"authKey,omitempty"`
	OperatorID          string `json:"operatorId,omitempty"`
	UserName            string `json:"userName,omitempty"`
	MFAOTPCode          string `json:"mfaOTPCode,omitempty"`
	TokenTimeoutSeconds *int64 `json:"tokenTimeoutSeconds,omitempty"`
}

// LoginResponse is SORACOM's AuthResponse.
type LoginResponse struct {
	APIKey     string `json:"apiKey"`
	Token      string `json:"token"`
	OperatorID string `json:"operatorId"`
	UserName   string `json:"userName,omitempty"`
}

func loginFailed() error {
	return api.Errorf(http.StatusUnauthorized, api.CodeLoginFailed, "authentication failed")
}

// Login checks one of the three credential sets and issues a token.
func (s *Service) Login(ctx context.Context, req LoginRequest) (*LoginResponse, error) {
	timeout := s.tokenTimeout
	if req.TokenTimeoutSeconds != nil {
		t := time.Duration(*req.TokenTimeoutSeconds) * time.Second
		if t < 180*time.Second || t > MaxTokenTimeout {
			return nil, api.Invalid("tokenTimeoutSeconds must be between 180 and 172800")
		}
		timeout = t
	}
	var opID, user string
	switch {
	case req.AuthKeyID != "" || req.AuthKey != "":
		if req.AuthKeyID == "" || req.AuthKey == "" {
			return nil, api.Invalid("authKeyId and authKey must be given together")
		}
		var hash string
		err := s.db.QueryRowContext(ctx, `SELECT operator_id, user_name, secret_hash FROM auth_keys WHERE auth_key_id = $1`, req.AuthKeyID).Scan(&opID, &user, &hash)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !SecretMatches(req.AuthKey, hash)) {
			return nil, loginFailed()
		}
		if err != nil {
			return nil, err
		}
		_, _ = s.db.ExecContext(ctx, `UPDATE auth_keys SET last_used_at = $1 WHERE auth_key_id = $2`, ms(s.now()), req.AuthKeyID)
	case req.UserName != "" || req.OperatorID != "":
		if req.UserName == "" || req.OperatorID == "" || req.Password == "" {
			return nil, api.Invalid("operatorId, userName and password must be given together")
		}
		var hash string
		err := s.db.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE operator_id = $1 AND user_name = $2`, req.OperatorID, req.UserName).Scan(&hash)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !PasswordMatches(req.Password, hash)) {
			return nil, loginFailed()
		}
		if err != nil {
			return nil, err
		}
		opID, user = req.OperatorID, req.UserName
	case req.Email != "":
		if req.Password == "" {
			return nil, api.Invalid("email and password must be given together")
		}
		var hash string
		err := s.db.QueryRowContext(ctx, `SELECT operator_id, password_hash FROM operators WHERE email = $1`, req.Email).Scan(&opID, &hash)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !PasswordMatches(req.Password, hash)) {
			return nil, loginFailed()
		}
		if err != nil {
			return nil, err
		}
	default:
		return nil, api.Invalid("give authKeyId+authKey, email+password, or operatorId+userName+password")
	}
	return s.IssueToken(ctx, opID, user, timeout)
}

// IssueToken creates an API key + token pair for a principal.
func (s *Service) IssueToken(ctx context.Context, operatorID, userName string, timeout time.Duration) (*LoginResponse, error) {
	apiKey := "api-" + RandomString(32, alnum)
	token := RandomString(64, alnum)
	now := s.now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (api_key, token_hash, operator_id, user_name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		apiKey, HashSecret(token), operatorID, userName, ms(now), ms(now.Add(timeout)))
	if err != nil {
		return nil, err
	}
	return &LoginResponse{APIKey: apiKey, Token: token, OperatorID: operatorID, UserName: userName}, nil
}

// Authenticate resolves an API key + token pair (api.Authenticator).
func (s *Service) Authenticate(ctx context.Context, apiKey, token string) (*api.Principal, error) {
	if apiKey == "" || token == "" {
		return nil, api.Unauthenticated("X-Soracom-API-Key and X-Soracom-Token headers are required; get them from POST /v1/auth")
	}
	var p api.Principal
	var hash string
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT operator_id, user_name, token_hash, expires_at FROM tokens WHERE api_key = $1`, apiKey).
		Scan(&p.OperatorID, &p.UserName, &hash, &expires)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !SecretMatches(token, hash)) {
		return nil, api.Unauthenticated("invalid API key or token")
	}
	if err != nil {
		return nil, err
	}
	if ms(s.now()) >= expires {
		return nil, api.Errorf(http.StatusUnauthorized, api.CodeTokenExpired, "token expired; log in again with POST /v1/auth")
	}
	p.APIKey = apiKey
	return &p, nil
}

// Authorize checks that p may call op (api.Authenticator). The root
// account may call everything; a user needs an allowing statement in its
// own permission or the operator's default permissions, and no denying one.
func (s *Service) Authorize(ctx context.Context, p *api.Principal, op string, r *http.Request) error {
	if id := r.PathValue("operator_id"); id != "" && id != p.OperatorID {
		return api.Forbidden("operator %s is not yours", id)
	}
	if p.Root() || op == "Auth:logout" {
		return nil
	}
	var own string
	err := s.db.QueryRowContext(ctx, `SELECT permission FROM users WHERE operator_id = $1 AND user_name = $2`, p.OperatorID, p.UserName).Scan(&own)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Unauthenticated("user %s no longer exists", p.UserName)
	}
	if err != nil {
		return err
	}
	var def string
	err = s.db.QueryRowContext(ctx, `SELECT permissions FROM default_permissions WHERE operator_id = $1`, p.OperatorID).Scan(&def)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	// Stored documents were validated on write; a bad one denies.
	ownP, err1 := s.policies.get(own)
	defP, err2 := s.policies.get(def)
	if err1 == nil && err2 == nil && Allows(op, r, p.UserName, s.now().UTC(), ownP, defP) {
		return nil
	}
	return api.Forbidden("user %s is not allowed to call %s", p.UserName, op)
}

// Logout revokes the caller's token.
func (s *Service) Logout(ctx context.Context, apiKey string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM tokens WHERE api_key = $1`, apiKey)
	return err
}

// PruneTokens deletes expired tokens; it returns how many went.
func (s *Service) PruneTokens(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM tokens WHERE expires_at < $1`, ms(s.now()))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
