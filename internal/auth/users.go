package auth

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"regexp"
	"unicode/utf8"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/store"
)

// UserDetail is SORACOM's UserDetailResponse. Times are UNIX seconds.
type UserDetail struct {
	UserName       string    `json:"userName"`
	Description    string    `json:"description"`
	CreateDateTime int64     `json:"createDateTime"`
	UpdateDateTime int64     `json:"updateDateTime"`
	HasPassword    bool      `json:"hasPassword"`
	Permission     string    `json:"permission"` // the JSON document as a string
	AuthKeyList    []AuthKey `json:"authKeyList"`
	RoleList       []any     `json:"roleList"` // roles are not implemented: always []
}

// AuthKey is SORACOM's AuthKeyResponse; the secret is never included.
// Times are UNIX seconds; lastUsedDateTime is absent for an unused key.
type AuthKey struct {
	AuthKeyID        string `json:"authKeyId"`
	CreateDateTime   int64  `json:"createDateTime"`
	LastUsedDateTime int64  `json:"lastUsedDateTime,omitempty"`
}

// GeneratedAuthKey is the one response that carries an auth key secret.
type GeneratedAuthKey struct {
	AuthKeyID string `json:"authKeyId"`
	AuthKey   string `json:"authKey"`
}

const (
	maxUserNameLen    = 100
	maxDescriptionLen = 1000
	// defaultPermissionsSegment is the literal path segment that wins over
	// {user_name}, so no user may be called that.
	defaultPermissionsSegment = "default_permissions"
)

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9_@.+-]+$`)

func validateUserName(name string) error {
	if len(name) == 0 || len(name) > maxUserNameLen || !userNameRE.MatchString(name) {
		return api.Invalid("user_name %q: must be 1-%d characters of A-Z a-z 0-9 _ @ . + -", name, maxUserNameLen)
	}
	if name == defaultPermissionsSegment {
		return api.Invalid("user_name %q is reserved", name)
	}
	return nil
}

func validateDescription(d *string) error {
	if d != nil && utf8.RuneCountInString(*d) > maxDescriptionLen {
		return api.Invalid("description: at most %d characters", maxDescriptionLen)
	}
	return nil
}

func sec(msec int64) int64 { return msec / 1000 }

// handler adapts a handler that returns its error.
func handler(f func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			api.WriteError(w, r, err)
		}
	}
}

// userOp adapts a handler of one user's resources: it resolves {user_name}.
func userOp(f func(w http.ResponseWriter, r *http.Request, name string) error) http.HandlerFunc {
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		name, err := userParam(r)
		if err != nil {
			return err
		}
		return f(w, r, name)
	})
}

// caller returns the caller's operator ID; Authorize has already checked
// that {operator_id} names it.
func caller(r *http.Request) string { return api.PrincipalFrom(r.Context()).OperatorID }

// userParam returns {user_name}. User names are never empty (the root
// account has the empty name), so an empty one is simply not found.
func userParam(r *http.Request) (string, error) {
	name := r.PathValue("user_name")
	if name == "" {
		return "", api.NotFound("user not found")
	}
	return name, nil
}

func userNotFound(name string) error { return api.NotFound("user %s not found", name) }

// userField reads one column of a user's row; 404 if there is no such user.
func (s *Service) userField(ctx context.Context, opID, name, column string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT `+column+` FROM users WHERE operator_id = $1 AND user_name = $2`, opID, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", userNotFound(name)
	}
	return v, err
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// userExists reports a 404 unless the user exists.
func userExists(ctx context.Context, q querier, opID, name string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM users WHERE operator_id = $1 AND user_name = $2`, opID, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return userNotFound(name)
	}
	return err
}

// registerUsers mounts the SAM user, auth key, password and permission
// operations under /v1/operators/{operator_id}.
func (s *Service) registerUsers(rt *api.Router) {
	const (
		op    = "/v1/operators/{operator_id}"
		users = op + "/users"
		user  = users + "/{user_name}"
	)
	for _, o := range []api.Op{
		{Name: "Operator:getOperator", Method: "GET", Path: op,
			Summary: "Get the operator (operatorId, email, createDateTime)", Handler: handler(s.getOperator)},
		{Name: "Operator:listOperatorAuthKeys", Method: "GET", Path: op + "/auth_keys",
			Summary: "List the root account's auth keys (secrets are never shown)", Handler: handler(s.listOperatorAuthKeys)},
		{Name: "Operator:generateOperatorAuthKey", Method: "POST", Path: op + "/auth_keys",
			Summary: "Generate a root auth key; the secret is shown only in this response", Handler: handler(s.generateOperatorAuthKey)},
		{Name: "Operator:deleteOperatorAuthKey", Method: "DELETE", Path: op + "/auth_keys/{auth_key_id}",
			Summary: "Delete a root auth key (the last one cannot be deleted)", Handler: handler(s.deleteOperatorAuthKey)},

		{Name: "User:listUsers", Method: "GET", Path: users,
			Summary: "List SAM users", Handler: handler(s.listUsers)},
		{Name: "User:createUser", Method: "POST", Path: user,
			Summary: "Create a SAM user (body: optional description)", Handler: handler(s.createUser)},
		{Name: "User:getUser", Method: "GET", Path: user,
			Summary: "Get a SAM user", Handler: userOp(s.getUser)},
		{Name: "User:updateUser", Method: "PUT", Path: user,
			Summary: "Update a SAM user's description", Handler: userOp(s.updateUser)},
		{Name: "User:deleteUser", Method: "DELETE", Path: user,
			Summary: "Delete a SAM user with its auth keys and tokens", Handler: userOp(s.deleteUser)},

		{Name: "User:getUserPermission", Method: "GET", Path: user + "/permission",
			Summary: "Get a SAM user's permission document (a JSON string)", Handler: userOp(s.getUserPermission)},
		{Name: "User:updateUserPermission", Method: "PUT", Path: user + "/permission",
			Summary: "Set a SAM user's permission document (a JSON string, validated)", Handler: userOp(s.updateUserPermission)},
		{Name: "User:deleteUserPermission", Method: "DELETE", Path: user + "/permission",
			Summary: "Remove a SAM user's permission document", Handler: userOp(s.deleteUserPermission)},

		{Name: "User:listUserAuthKeys", Method: "GET", Path: user + "/auth_keys",
			Summary: "List a SAM user's auth keys (secrets are never shown)", Handler: userOp(s.listUserAuthKeys)},
		{Name: "User:generateUserAuthKey", Method: "POST", Path: user + "/auth_keys",
			Summary: "Generate an auth key for a SAM user; the secret is shown only in this response", Handler: userOp(s.generateUserAuthKey)},
		{Name: "User:getUserAuthKey", Method: "GET", Path: user + "/auth_keys/{auth_key_id}",
			Summary: "Get one of a SAM user's auth keys (without the secret)", Handler: userOp(s.getUserAuthKey)},
		{Name: "User:deleteUserAuthKey", Method: "DELETE", Path: user + "/auth_keys/{auth_key_id}",
			Summary: "Delete one of a SAM user's auth keys", Handler: userOp(s.deleteUserAuthKey)},

		{Name: "User:createUserPassword", Method: "POST", Path: user + "/password",
			Summary: "Set a SAM user's first password", Handler: userOp(s.createUserPassword)},
		{Name: "User:updateUserPassword", Method: "PUT", Path: user + "/password",
			Summary: "Change a SAM user's password (currentPassword, newPassword)", Handler: userOp(s.updateUserPassword)},
		{Name: "User:hasUserPassword", Method: "GET", Path: user + "/password",
			Summary: "Report whether a SAM user has a password", Handler: userOp(s.hasUserPassword)},
		{Name: "User:deleteUserPassword", Method: "DELETE", Path: user + "/password",
			Summary: "Remove a SAM user's password", Handler: userOp(s.deleteUserPassword)},

		{Name: "User:getDefaultPermissions", Method: "GET", Path: users + "/" + defaultPermissionsSegment,
			Summary: "Get the permission document applied to every SAM user", Handler: handler(s.getDefaultPermissions)},
		{Name: "User:updateDefaultPermissions", Method: "PUT", Path: users + "/" + defaultPermissionsSegment,
			Summary: "Set the permission document applied to every SAM user (validated)", Handler: handler(s.updateDefaultPermissions)},
		{Name: "User:deleteDefaultPermissions", Method: "DELETE", Path: users + "/" + defaultPermissionsSegment,
			Summary: "Remove the default permissions", Handler: handler(s.deleteDefaultPermissions)},
	} {
		rt.Handle(o)
	}
}

// ---- Operator ----

func (s *Service) getOperator(w http.ResponseWriter, r *http.Request) error {
	var out struct {
		OperatorID     string `json:"operatorId"`
		Email          string `json:"email"`
		CreateDateTime int64  `json:"createDateTime"`
	}
	var created int64
	err := s.db.QueryRowContext(r.Context(), `SELECT operator_id, email, created_at FROM operators WHERE operator_id = $1`, caller(r)).
		Scan(&out.OperatorID, &out.Email, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return api.NotFound("operator %s not found", caller(r))
	}
	if err != nil {
		return err
	}
	out.CreateDateTime = sec(created)
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) listOperatorAuthKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.authKeys(r.Context(), caller(r), "")
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, keys)
	return nil
}

func (s *Service) generateOperatorAuthKey(w http.ResponseWriter, r *http.Request) error {
	id, secret, err := s.GenerateAuthKey(r.Context(), caller(r), "")
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, GeneratedAuthKey{AuthKeyID: id, AuthKey: secret})
	return nil
}

func (s *Service) deleteOperatorAuthKey(w http.ResponseWriter, r *http.Request) error {
	opID, keyID := caller(r), r.PathValue("auth_key_id")
	err := s.db.Tx(r.Context(), func(tx *sql.Tx) error {
		ctx := r.Context()
		// Lock the operator row so two concurrent deletes cannot remove the
		// last two keys together (PostgreSQL; SQLite serialises writers).
		if _, err := tx.ExecContext(ctx, `UPDATE operators SET email = email WHERE operator_id = $1`, opID); err != nil {
			return err
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM auth_keys WHERE auth_key_id = $1 AND operator_id = $2 AND user_name = ''`, keyID, opID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return api.NotFound("auth key %s not found", keyID)
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_keys WHERE operator_id = $1 AND user_name = ''`, opID).Scan(&n); err != nil {
			return err
		}
		if n <= 1 {
			return api.Invalid("auth key %s is the root account's last auth key; generate another one before deleting it", keyID)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM auth_keys WHERE auth_key_id = $1 AND operator_id = $2 AND user_name = ''`, keyID, opID)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- Users ----

// authKeys lists the auth keys of one account ("" is the root account).
func (s *Service) authKeys(ctx context.Context, opID, userName string) ([]AuthKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT auth_key_id, created_at, last_used_at FROM auth_keys
		WHERE operator_id = $1 AND user_name = $2 ORDER BY created_at, auth_key_id`, opID, userName)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	keys := []AuthKey{}
	for rows.Next() {
		var k AuthKey
		if err := rows.Scan(&k.AuthKeyID, &k.CreateDateTime, &k.LastUsedDateTime); err != nil {
			return nil, err
		}
		k.CreateDateTime, k.LastUsedDateTime = sec(k.CreateDateTime), sec(k.LastUsedDateTime)
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

const userColumns = `user_name, description, created_at, updated_at, password_hash, permission`

func scanUser(sc interface{ Scan(...any) error }) (*UserDetail, error) {
	var u UserDetail
	var pwHash string
	if err := sc.Scan(&u.UserName, &u.Description, &u.CreateDateTime, &u.UpdateDateTime, &pwHash, &u.Permission); err != nil {
		return nil, err
	}
	u.CreateDateTime, u.UpdateDateTime = sec(u.CreateDateTime), sec(u.UpdateDateTime)
	u.HasPassword = pwHash != ""
	u.AuthKeyList = []AuthKey{}
	u.RoleList = []any{}
	return &u, nil
}

func (s *Service) loadUser(ctx context.Context, opID, name string) (*UserDetail, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE operator_id = $1 AND user_name = $2`, opID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, userNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	if u.AuthKeyList, err = s.authKeys(ctx, opID, name); err != nil {
		return nil, err
	}
	return u, nil
}

func (s *Service) listUsers(w http.ResponseWriter, r *http.Request) error {
	ctx, opID := r.Context(), caller(r)
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE operator_id = $1 ORDER BY user_name`, opID)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []*UserDetail{}
	byName := map[string]*UserDetail{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return err
		}
		out = append(out, u)
		byName[u.UserName] = u
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	krows, err := s.db.QueryContext(ctx, `SELECT user_name, auth_key_id, created_at, last_used_at FROM auth_keys
		WHERE operator_id = $1 AND user_name <> '' ORDER BY created_at, auth_key_id`, opID)
	if err != nil {
		return err
	}
	defer krows.Close()
	for krows.Next() {
		var name string
		var k AuthKey
		if err := krows.Scan(&name, &k.AuthKeyID, &k.CreateDateTime, &k.LastUsedDateTime); err != nil {
			return err
		}
		if u := byName[name]; u != nil {
			k.CreateDateTime, k.LastUsedDateTime = sec(k.CreateDateTime), sec(k.LastUsedDateTime)
			u.AuthKeyList = append(u.AuthKeyList, k)
		}
	}
	if err := krows.Err(); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) createUser(w http.ResponseWriter, r *http.Request) error {
	ctx, opID, name := r.Context(), caller(r), r.PathValue("user_name")
	if err := validateUserName(name); err != nil {
		return err
	}
	var req struct {
		Description *string `json:"description"`
	}
	if err := api.DecodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if err := validateDescription(req.Description); err != nil {
		return err
	}
	desc := ""
	if req.Description != nil {
		desc = *req.Description
	}
	now := ms(s.now())
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Credentials left behind by an earlier user of the same name (an
		// auth key or login racing its deletion) must not carry over. If
		// the insert conflicts, the rollback keeps the live user's keys.
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_keys WHERE operator_id = $1 AND user_name = $2`, opID, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE operator_id = $1 AND user_name = $2`, opID, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO users (operator_id, user_name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			opID, name, desc, now, now)
		if store.IsUniqueViolation(err) {
			return api.Conflict("user %s already exists", name)
		}
		return err
	})
	if err != nil {
		return err
	}
	u, err := s.loadUser(ctx, opID, name)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, u)
	return nil
}

func (s *Service) getUser(w http.ResponseWriter, r *http.Request, name string) error {
	u, err := s.loadUser(r.Context(), caller(r), name)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, u)
	return nil
}

func (s *Service) updateUser(w http.ResponseWriter, r *http.Request, name string) error {
	var req struct {
		Description *string `json:"description"`
	}
	if err := api.DecodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if err := validateDescription(req.Description); err != nil {
		return err
	}
	ctx, opID := r.Context(), caller(r)
	if req.Description != nil {
		if err := s.updateUserRow(ctx, opID, name, `description = $3`, *req.Description); err != nil {
			return err
		}
	}
	u, err := s.loadUser(ctx, opID, name)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, u)
	return nil
}

// updateUserRow sets one column ("col = $3") of a user and its update
// time, answering 404 when the user does not exist.
func (s *Service) updateUserRow(ctx context.Context, opID, name, set string, value any) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET `+set+`, updated_at = $4 WHERE operator_id = $1 AND user_name = $2`,
		opID, name, value, ms(s.now()))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return userNotFound(name)
	}
	return nil
}

func (s *Service) deleteUser(w http.ResponseWriter, r *http.Request, name string) error {
	ctx, opID := r.Context(), caller(r)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE operator_id = $1 AND user_name = $2`, opID, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return userNotFound(name)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_keys WHERE operator_id = $1 AND user_name = $2`, opID, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM tokens WHERE operator_id = $1 AND user_name = $2`, opID, name)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- Permissions ----

// checkPolicy validates a permission document before it is stored.
func checkPolicy(field string, doc *string) error {
	if doc == nil {
		return api.Invalid("%s: required (a permission document as a JSON string)", field)
	}
	if _, err := ParsePolicy(*doc); err != nil {
		return api.Invalid("%s: %v", field, err)
	}
	return nil
}

func (s *Service) getUserPermission(w http.ResponseWriter, r *http.Request, name string) error {
	perm, err := s.userField(r.Context(), caller(r), name, "permission")
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"permission": perm})
	return nil
}

func (s *Service) updateUserPermission(w http.ResponseWriter, r *http.Request, name string) error {
	var req struct {
		Permission *string `json:"permission"`
		// SORACOM's SetUserPermissionRequest has a description; it is
		// accepted and not stored.
		Description *string `json:"description"`
	}
	if err := api.DecodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := checkPolicy("permission", req.Permission); err != nil {
		return err
	}
	if err := s.updateUserRow(r.Context(), caller(r), name, `permission = $3`, *req.Permission); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"permission": *req.Permission})
	return nil
}

func (s *Service) deleteUserPermission(w http.ResponseWriter, r *http.Request, name string) error {
	if err := s.updateUserRow(r.Context(), caller(r), name, `permission = $3`, ""); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) getDefaultPermissions(w http.ResponseWriter, r *http.Request) error {
	var doc string
	err := s.db.QueryRowContext(r.Context(), `SELECT permissions FROM default_permissions WHERE operator_id = $1`, caller(r)).Scan(&doc)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"permissions": doc})
	return nil
}

func (s *Service) updateDefaultPermissions(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Permissions *string `json:"permissions"`
	}
	if err := api.DecodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := checkPolicy("permissions", req.Permissions); err != nil {
		return err
	}
	_, err := s.db.ExecContext(r.Context(), `INSERT INTO default_permissions (operator_id, permissions, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (operator_id) DO UPDATE SET permissions = excluded.permissions, updated_at = excluded.updated_at`,
		caller(r), *req.Permissions, ms(s.now()))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]string{"permissions": *req.Permissions})
	return nil
}

func (s *Service) deleteDefaultPermissions(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.db.ExecContext(r.Context(), `DELETE FROM default_permissions WHERE operator_id = $1`, caller(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- User auth keys ----

func (s *Service) listUserAuthKeys(w http.ResponseWriter, r *http.Request, name string) error {
	ctx, opID := r.Context(), caller(r)
	if err := userExists(ctx, s.db, opID, name); err != nil {
		return err
	}
	keys, err := s.authKeys(ctx, opID, name)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, keys)
	return nil
}

func (s *Service) generateUserAuthKey(w http.ResponseWriter, r *http.Request, name string) error {
	ctx, opID := r.Context(), caller(r)
	if err := userExists(ctx, s.db, opID, name); err != nil {
		return err
	}
	id, secret, err := s.GenerateAuthKey(ctx, opID, name)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, GeneratedAuthKey{AuthKeyID: id, AuthKey: secret})
	return nil
}

func (s *Service) getUserAuthKey(w http.ResponseWriter, r *http.Request, name string) error {
	keyID := r.PathValue("auth_key_id")
	var k AuthKey
	err := s.db.QueryRowContext(r.Context(), `SELECT auth_key_id, created_at, last_used_at FROM auth_keys
		WHERE auth_key_id = $1 AND operator_id = $2 AND user_name = $3`, keyID, caller(r), name).
		Scan(&k.AuthKeyID, &k.CreateDateTime, &k.LastUsedDateTime)
	if errors.Is(err, sql.ErrNoRows) {
		return api.NotFound("auth key %s of user %s not found", keyID, name)
	}
	if err != nil {
		return err
	}
	k.CreateDateTime, k.LastUsedDateTime = sec(k.CreateDateTime), sec(k.LastUsedDateTime)
	api.WriteJSON(w, http.StatusOK, k)
	return nil
}

func (s *Service) deleteUserAuthKey(w http.ResponseWriter, r *http.Request, name string) error {
	keyID := r.PathValue("auth_key_id")
	res, err := s.db.ExecContext(r.Context(), `DELETE FROM auth_keys WHERE auth_key_id = $1 AND operator_id = $2 AND user_name = $3`,
		keyID, caller(r), name)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return api.NotFound("auth key %s of user %s not found", keyID, name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- Passwords ----

func (s *Service) createUserPassword(w http.ResponseWriter, r *http.Request, name string) error {
	var req struct {
		Password string `json:"password"`
	}
	if err := api.DecodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.Password == "" {
		return api.Invalid("password: required")
	}
	ctx, opID := r.Context(), caller(r)
	if err := userExists(ctx, s.db, opID, name); err != nil {
		return err
	}
	hash, err := HashPassword(req.Password)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = $1, updated_at = $2
		WHERE operator_id = $3 AND user_name = $4 AND password_hash = ''`, hash, ms(s.now()), opID, name)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		if err := userExists(ctx, s.db, opID, name); err != nil {
			return err
		}
		return api.Conflict("user %s already has a password; change it with PUT", name)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Service) updateUserPassword(w http.ResponseWriter, r *http.Request, name string) error {
	var req struct {
		CurrentPassword string `json:"currentPassword"`
		NewPassword     string `json:"newPassword"`
	}
	if err := api.DecodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.CurrentPassword == "" || req.NewPassword == "" {
		return api.Invalid("currentPassword and newPassword: required")
	}
	ctx, opID := r.Context(), caller(r)
	old, err := s.userField(ctx, opID, name, "password_hash")
	if err != nil {
		return err
	}
	if !PasswordMatches(req.CurrentPassword, old) {
		return api.Invalid("currentPassword does not match")
	}
	hash, err := HashPassword(req.NewPassword)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = $1, updated_at = $2
		WHERE operator_id = $3 AND user_name = $4 AND password_hash = $5`, hash, ms(s.now()), opID, name, old)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return api.Conflict("the password of user %s changed meanwhile; try again", name)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) hasUserPassword(w http.ResponseWriter, r *http.Request, name string) error {
	hash, err := s.userField(r.Context(), caller(r), name, "password_hash")
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]bool{"hasPassword": hash != ""})
	return nil
}

func (s *Service) deleteUserPassword(w http.ResponseWriter, r *http.Request, name string) error {
	if err := s.updateUserRow(r.Context(), caller(r), name, `password_hash = $3`, ""); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
