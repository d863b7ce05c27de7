package credentials

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/store"
)

// Service implements the credentials store.
type Service struct {
	db   *store.DB
	keys *Keyring
	now  func() time.Time
}

// New creates the credentials service.
func New(db *store.DB, keys *Keyring) *Service { return &Service{db: db, keys: keys, now: time.Now} }

// ErrNotFound is matched (errors.Is) by the error Get, Delete and the
// other lookups return for a missing credential; that error is also an
// *api.Error (404 NTF0001).
var ErrNotFound = errors.New("credentials not found")

type notFoundError struct{ ae *api.Error }

func (e *notFoundError) Error() string        { return e.ae.Error() }
func (e *notFoundError) Unwrap() error        { return e.ae }
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

func notFound(id string) error {
	return &notFoundError{api.NotFound("credentials %s not found", id)}
}

// Credential is a decrypted credential, for other packages (remote
// commands, Flux actions). Values must never be logged or returned.
type Credential struct {
	ID          string
	Type        string
	Description string
	Values      map[string]string
}

// typeFields lists each supported type's required and optional fields,
// and for types whose fields go together in more than one way a check of
// the given values (problems as messages; never a value in them).
var typeFields = map[string]struct {
	required, optional []string
	check              func(values map[string]string) []string
}{
	"psk":                           {required: []string{"key"}},
	"username-password-credentials": {required: []string{"username", "password"}},
	"api-token-credentials":         {required: []string{"token"}},
	"aws-credentials":               {required: []string{"accessKeyId", "secretAccessKey"}},
	"azure-credentials":             {required: []string{"policyName", "key"}},
	"x509":                          {required: []string{"cert", "key"}, optional: []string{"ca"}},
	"private-key-pem":               {required: []string{"key"}},
	// Slack: an Incoming Webhook's URL (the URL is the secret) and a Slack
	// app's signing secret. An Outgoing Webhook's token is an
	// api-token-credentials entry.
	"slack-incoming-webhook": {required: []string{"url"}},
	"slack-signing-secret":   {required: []string{"signingSecret"}},
	// LINE: a Messaging API channel's secret (verifies webhooks) and its
	// long-lived channel access token (reply, push, content).
	"line-channel": {required: []string{"channelSecret", "channelAccessToken"}},
	// Azure Blob Storage / ADLS Gen2 (the flow blob action): the account
	// name with one of its access keys or a SAS token, or a connection
	// string (which carries the account and its endpoint, e.g. Azurite's).
	"azure-storage": {optional: []string{"accountName", "accountKey", "sasToken", "connectionString"}, check: checkAzureStorage},
}

// checkAzureStorage accepts {accountName, accountKey}, {accountName,
// sasToken} or {connectionString} (with AccountName and AccountKey or
// SharedAccessSignature in it).
func checkAzureStorage(v map[string]string) []string {
	if cs := v["connectionString"]; cs != "" {
		if v["accountName"] != "" || v["accountKey"] != "" || v["sasToken"] != "" {
			return []string{"credentials: give either connectionString or accountName with accountKey (or sasToken), not both, for type azure-storage"}
		}
		parts := map[string]string{}
		for _, p := range strings.Split(cs, ";") {
			if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok {
				parts[strings.ToLower(k)] = val
			}
		}
		var out []string
		if parts["accountname"] == "" && parts["sharedaccesssignature"] == "" {
			out = append(out, "credentials.connectionString has no AccountName (copy the whole connection string from the storage account's Access keys)")
		}
		if parts["accountkey"] == "" && parts["sharedaccesssignature"] == "" {
			out = append(out, "credentials.connectionString has neither AccountKey nor SharedAccessSignature")
		}
		return out
	}
	var out []string
	if v["accountName"] == "" {
		out = append(out, "credentials.accountName is required for type azure-storage (or give connectionString)")
	}
	switch key, sas := v["accountKey"], v["sasToken"]; {
	case key == "" && sas == "":
		out = append(out, "credentials.accountKey (or sasToken) is required for type azure-storage (or give connectionString)")
	case key != "" && sas != "":
		out = append(out, "credentials: give accountKey or sasToken, not both, for type azure-storage")
	case key != "":
		if _, err := base64.StdEncoding.DecodeString(key); err != nil {
			out = append(out, "credentials.accountKey is not base64 (copy key1 or key2 from the storage account's Access keys)")
		}
	}
	return out
}

// Types lists the supported credential types.
func Types() []string {
	out := make([]string, 0, len(typeFields))
	for t := range typeFields {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// MaxDescription bounds a credential's description.
const MaxDescription = 1000

// Model is the API shape (CredentialsModel). Credentials is always empty:
// values are write-only.
type Model struct {
	CredentialsID    string            `json:"credentialsId"`
	Type             string            `json:"type"`
	Description      string            `json:"description"`
	Credentials      map[string]string `json:"credentials"`
	CreateDateTime   int64             `json:"createDateTime"`
	UpdateDateTime   int64             `json:"updateDateTime"`
	LastUsedDateTime int64             `json:"lastUsedDateTime"`
}

// Input is the create/update request body.
type Input struct {
	Type        string         `json:"type"`
	Description string         `json:"description"`
	Credentials map[string]any `json:"credentials"`
}

// validate checks the input and returns the values, reporting every bad
// field in one error.
func (in *Input) validate() (map[string]string, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(in.Description) > MaxDescription {
		bad("description is longer than %d bytes", MaxDescription)
	}
	fields, ok := typeFields[in.Type]
	switch {
	case in.Type == "":
		bad("type is required (one of %s)", strings.Join(Types(), ", "))
	case !ok:
		bad("type %q is not supported (use one of %s)", in.Type, strings.Join(Types(), ", "))
	}
	if in.Credentials == nil {
		bad("credentials is required")
	}
	values := map[string]string{}
	if ok {
		allowed := map[string]bool{}
		for _, k := range fields.optional {
			allowed[k] = true
		}
		for _, k := range fields.required {
			allowed[k] = true
			if _, present := in.Credentials[k]; !present && in.Credentials != nil {
				bad("credentials.%s is required for type %s", k, in.Type)
			}
		}
		keys := make([]string, 0, len(in.Credentials))
		for k := range in.Credentials {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := in.Credentials[k]
			s, isString := v.(string)
			switch {
			case !allowed[k]:
				bad("credentials.%s is not a field of type %s (fields: %s)", k, in.Type, strings.Join(append(append([]string{}, fields.required...), fields.optional...), ", "))
			case !isString:
				bad("credentials.%s must be a string", k)
			case s == "" && contains(fields.optional, k):
				// An empty optional field is the same as leaving it out.
			case s == "":
				bad("credentials.%s must not be empty", k)
			default:
				values[k] = s
			}
		}
	}
	if ok && fields.check != nil && in.Credentials != nil {
		problems = append(problems, fields.check(values)...)
	}
	if len(problems) > 0 {
		return nil, api.Invalid("invalid credentials: %s", strings.Join(problems, "; "))
	}
	return values, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func checkID(id string) error {
	if !idRE.MatchString(id) {
		return api.Invalid("credentials_id %q must be 1 to 100 characters of A-Z a-z 0-9 _ . -", id)
	}
	return nil
}

// sealed is the encrypted plaintext. It names its owner and ID, so a
// ciphertext copied onto another row does not decrypt as that row's.
type sealed struct {
	Operator string            `json:"o"`
	ID       string            `json:"i"`
	Values   map[string]string `json:"v"`
}

func (s *Service) seal(ctx context.Context, operatorID, id string, values map[string]string) (string, error) {
	plain, err := json.Marshal(sealed{Operator: operatorID, ID: id, Values: values})
	if err != nil {
		return "", err
	}
	ct, err := s.keys.Encrypt(ctx, plain)
	clear(plain)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

func (s *Service) open(ctx context.Context, operatorID, id, ciphertext, keyID string) (map[string]string, error) {
	if keyID != s.keys.ID {
		return nil, fmt.Errorf("credentials %s: encrypted with key %s, but the current key is %s", id, keyID, s.keys.ID)
	}
	ct, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: stored ciphertext is corrupt", id)
	}
	plain, err := s.keys.Decrypt(ctx, ct)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: cannot decrypt", id)
	}
	defer clear(plain)
	var v sealed
	if err := json.Unmarshal(plain, &v); err != nil || v.Operator != operatorID || v.ID != id {
		return nil, fmt.Errorf("credentials %s: stored ciphertext does not belong to this credential", id)
	}
	return v.Values, nil
}

const selectCols = `credentials_id, type, description, created_at, updated_at, last_used_at`

func scanModel(sc interface{ Scan(...any) error }) (*Model, error) {
	var m Model
	var c, u, l int64
	if err := sc.Scan(&m.CredentialsID, &m.Type, &m.Description, &c, &u, &l); err != nil {
		return nil, err
	}
	m.Credentials = map[string]string{}
	m.CreateDateTime, m.UpdateDateTime, m.LastUsedDateTime = c/1000, u/1000, l/1000
	return &m, nil
}

// List returns the operator's credentials (without values), by ID.
func (s *Service) List(ctx context.Context, operatorID string) ([]*Model, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+selectCols+` FROM credentials WHERE operator_id = $1 ORDER BY credentials_id`, operatorID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Model{}
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Describe returns one credential without its values.
func (s *Service) Describe(ctx context.Context, operatorID, id string) (*Model, error) {
	m, err := scanModel(s.db.QueryRowContext(ctx, `SELECT `+selectCols+` FROM credentials WHERE operator_id = $1 AND credentials_id = $2`, operatorID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	return m, err
}

// sealInput validates an ID and input and encrypts the values.
func (s *Service) sealInput(ctx context.Context, operatorID, id string, in *Input) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	values, err := in.validate()
	if err != nil {
		return "", err
	}
	return s.seal(ctx, operatorID, id, values)
}

// Create stores a new credential.
func (s *Service) Create(ctx context.Context, operatorID, id string, in *Input) (*Model, error) {
	ct, err := s.sealInput(ctx, operatorID, id, in)
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	_, err = s.db.ExecContext(ctx, `INSERT INTO credentials (operator_id, credentials_id, type, description, ciphertext, key_id, created_at, updated_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)`,
		operatorID, id, in.Type, in.Description, ct, s.keys.ID, now, now)
	if store.IsUniqueViolation(err) {
		return nil, api.Conflict("credentials %s already exist; update them with PUT", id)
	}
	if err != nil {
		return nil, err
	}
	return s.Describe(ctx, operatorID, id)
}

// Update replaces an existing credential's type, description and values.
func (s *Service) Update(ctx context.Context, operatorID, id string, in *Input) (*Model, error) {
	ct, err := s.sealInput(ctx, operatorID, id, in)
	if err != nil {
		return nil, err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE credentials SET type = $1, description = $2, ciphertext = $3, key_id = $4, updated_at = $5 WHERE operator_id = $6 AND credentials_id = $7`,
		in.Type, in.Description, ct, s.keys.ID, s.now().UnixMilli(), operatorID, id)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		return nil, notFound(id)
	}
	return s.Describe(ctx, operatorID, id)
}

// Delete removes a credential.
func (s *Service) Delete(ctx context.Context, operatorID, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM credentials WHERE operator_id = $1 AND credentials_id = $2`, operatorID, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound(id)
	}
	return nil
}

// Get decrypts a credential for use by another part of nagare and records
// the use. A missing credential is ErrNotFound (and a 404 *api.Error).
func (s *Service) Get(ctx context.Context, operatorID, id string) (*Credential, error) {
	c := &Credential{ID: id}
	var ct, keyID string
	err := s.db.QueryRowContext(ctx, `SELECT type, description, ciphertext, key_id FROM credentials WHERE operator_id = $1 AND credentials_id = $2`, operatorID, id).
		Scan(&c.Type, &c.Description, &ct, &keyID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	if c.Values, err = s.open(ctx, operatorID, id, ct, keyID); err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE credentials SET last_used_at = $1 WHERE operator_id = $2 AND credentials_id = $3`, s.now().UnixMilli(), operatorID, id); err != nil {
		return nil, err
	}
	return c, nil
}

// Register mounts the /v1/credentials operations.
func (s *Service) Register(rt *api.Router) {
	rt.Handle(api.Op{Name: "Credential:listCredentials", Method: "GET", Path: "/v1/credentials",
		Summary: "List credentials (values are never returned)",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			out, err := s.List(r.Context(), api.PrincipalFrom(r.Context()).OperatorID)
			if err != nil {
				api.WriteError(w, r, err)
				return
			}
			api.WriteJSON(w, http.StatusOK, out)
		}})
	rt.Handle(api.Op{Name: "Credential:getCredential", Method: "GET", Path: "/v1/credentials/{credentials_id}",
		Summary: "Get a credential's type and description (values are never returned)",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			m, err := s.Describe(r.Context(), api.PrincipalFrom(r.Context()).OperatorID, r.PathValue("credentials_id"))
			if err != nil {
				api.WriteError(w, r, err)
				return
			}
			api.WriteJSON(w, http.StatusOK, m)
		}})
	write := func(create bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var in Input
			if err := api.DecodeJSON(w, r, &in, false); err != nil {
				api.WriteError(w, r, err)
				return
			}
			op, id := api.PrincipalFrom(r.Context()).OperatorID, r.PathValue("credentials_id")
			var m *Model
			var err error
			status := http.StatusOK
			if create {
				m, err = s.Create(r.Context(), op, id, &in)
				status = http.StatusCreated
			} else {
				m, err = s.Update(r.Context(), op, id, &in)
			}
			if err != nil {
				api.WriteError(w, r, err)
				return
			}
			api.WriteJSON(w, status, m)
		}
	}
	rt.Handle(api.Op{Name: "Credential:createCredential", Method: "POST", Path: "/v1/credentials/{credentials_id}",
		Summary: "Create a credential {type, description, credentials:{…}}; values are encrypted at rest (201, 409 if it exists)",
		Handler: write(true)})
	rt.Handle(api.Op{Name: "Credential:updateCredential", Method: "PUT", Path: "/v1/credentials/{credentials_id}",
		Summary: "Replace a credential's type, description and values (200, 404)",
		Handler: write(false)})
	rt.Handle(api.Op{Name: "Credential:deleteCredential", Method: "DELETE", Path: "/v1/credentials/{credentials_id}",
		Summary: "Delete a credential (204, 404)",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			if err := s.Delete(r.Context(), api.PrincipalFrom(r.Context()).OperatorID, r.PathValue("credentials_id")); err != nil {
				api.WriteError(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}})
}
