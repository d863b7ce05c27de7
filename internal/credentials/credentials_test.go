package credentials_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/credentials"
	"github.com/nagare-iot/nagare/internal/servertest"
	"github.com/nagare-iot/nagare/internal/store/storetest"
)

type model struct {
	CredentialsID    string            `json:"credentialsId"`
	Type             string            `json:"type"`
	Description      string            `json:"description"`
	Credentials      map[string]string `json:"credentials"`
	CreateDateTime   int64             `json:"createDateTime"`
	UpdateDateTime   int64             `json:"updateDateTime"`
	LastUsedDateTime int64             `json:"lastUsedDateTime"`
}

const (
	secretPassword = "hunter2-Very-Secret-Password"
	secretToken    = "sk-TOPSECRET-token-0123456789"
)

func TestCredentialsCRUD(t *testing.T) {
	ts := servertest.Start(t)
	c := ts.Root

	res := c.Do("POST", "/v1/credentials/cam-rtsp", map[string]any{
		"type": "username-password-credentials", "description": "camera",
		"credentials": map[string]any{"username": "admin", "password": secretPassword},
	})
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var m model
	res.JSON(&m)
	if m.CredentialsID != "cam-rtsp" || m.Type != "username-password-credentials" || m.Description != "camera" ||
		m.Credentials == nil || len(m.Credentials) != 0 || m.CreateDateTime == 0 || m.UpdateDateTime == 0 || m.LastUsedDateTime != 0 {
		t.Fatalf("create returned %+v", m)
	}
	if strings.Contains(string(res.Body), secretPassword) || !strings.Contains(string(res.Body), `"credentials":{}`) {
		t.Fatalf("create response leaks or lacks credentials: %s", res.Body)
	}

	if res := c.Do("POST", "/v1/credentials/cam-rtsp", map[string]any{
		"type": "psk", "credentials": map[string]any{"key": "x"},
	}); res.Status != 409 || res.ErrorCode() != api.CodeConflict {
		t.Fatalf("duplicate create: %d %s", res.Status, res.Body)
	}
	if res := c.Do("POST", "/v1/credentials/openai", map[string]any{
		"type": "api-token-credentials", "credentials": map[string]any{"token": secretToken},
	}); res.Status != 201 {
		t.Fatalf("create token: %d %s", res.Status, res.Body)
	}

	res = c.Do("GET", "/v1/credentials", nil)
	if res.Status != 200 {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	var list []model
	res.JSON(&list)
	if len(list) != 2 || list[0].CredentialsID != "cam-rtsp" || list[1].CredentialsID != "openai" {
		t.Fatalf("list: %s", res.Body)
	}
	for _, s := range []string{secretPassword, secretToken, "admin"} {
		if strings.Contains(string(res.Body), s) {
			t.Fatalf("list leaks %q: %s", s, res.Body)
		}
	}
	res = c.Do("GET", "/v1/credentials/openai", nil)
	if res.Status != 200 || strings.Contains(string(res.Body), secretToken) || !strings.Contains(string(res.Body), `"credentials":{}`) {
		t.Fatalf("get: %d %s", res.Status, res.Body)
	}
	if res := c.Do("GET", "/v1/credentials/nope", nil); res.Status != 404 || res.ErrorCode() != api.CodeNotFound {
		t.Fatalf("get missing: %d %s", res.Status, res.Body)
	}

	// Update replaces type and values.
	res = c.Do("PUT", "/v1/credentials/cam-rtsp", map[string]any{
		"type": "psk", "description": "now a psk", "credentials": map[string]any{"key": "new-psk-value"},
	})
	if res.Status != 200 {
		t.Fatalf("update: %d %s", res.Status, res.Body)
	}
	res.JSON(&m)
	if m.Type != "psk" || m.Description != "now a psk" || len(m.Credentials) != 0 || strings.Contains(string(res.Body), "new-psk-value") {
		t.Fatalf("update returned %s", res.Body)
	}
	if res := c.Do("PUT", "/v1/credentials/nope", map[string]any{"type": "psk", "credentials": map[string]any{"key": "k"}}); res.Status != 404 {
		t.Fatalf("update missing: %d %s", res.Status, res.Body)
	}

	// The Go API decrypts and records the use.
	ctx := context.Background()
	cred, err := ts.Credentials.Get(ctx, ts.OperatorID, "cam-rtsp")
	if err != nil {
		t.Fatal(err)
	}
	if cred.Type != "psk" || !reflect.DeepEqual(cred.Values, map[string]string{"key": "new-psk-value"}) {
		t.Fatalf("Get: %+v", cred)
	}
	res = c.Do("GET", "/v1/credentials/cam-rtsp", nil)
	res.JSON(&m)
	if m.LastUsedDateTime == 0 {
		t.Fatalf("lastUsedDateTime not set after Get: %s", res.Body)
	}
	_, err = ts.Credentials.Get(ctx, ts.OperatorID, "nope")
	var ae *api.Error
	if !errors.Is(err, credentials.ErrNotFound) || !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("Get missing: %v", err)
	}
	if _, err := ts.Credentials.Get(ctx, "OP-other", "cam-rtsp"); !errors.Is(err, credentials.ErrNotFound) {
		t.Fatalf("Get by another operator: %v", err)
	}

	if res := c.Do("DELETE", "/v1/credentials/cam-rtsp", nil); res.Status != 204 {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	if res := c.Do("DELETE", "/v1/credentials/cam-rtsp", nil); res.Status != 404 {
		t.Fatalf("delete again: %d %s", res.Status, res.Body)
	}
	if res := c.Do("GET", "/v1/credentials/cam-rtsp", nil); res.Status != 404 {
		t.Fatalf("get deleted: %d %s", res.Status, res.Body)
	}
	if res := ts.Anon().Do("GET", "/v1/credentials", nil); res.Status != 401 {
		t.Fatalf("anonymous list: %d %s", res.Status, res.Body)
	}
}

func TestCredentialsValidation(t *testing.T) {
	ts := servertest.Start(t)
	c := ts.Root
	cases := []struct {
		name   string
		id     string
		body   any
		code   string
		naming []string // every one must appear in the message
	}{
		{"unknown type", "a", map[string]any{"type": "kerberos", "credentials": map[string]any{"x": "y"}}, "BAD0002", []string{"kerberos", "psk"}},
		{"no type", "a", map[string]any{"credentials": map[string]any{"key": "y"}}, "BAD0002", []string{"type is required"}},
		{"no credentials", "a", map[string]any{"type": "psk"}, "BAD0002", []string{"credentials is required"}},
		{"missing extra and empty", "a", map[string]any{"type": "aws-credentials",
			"credentials": map[string]any{"accessKeyId": "", "region": "x"}},
			"BAD0002", []string{"credentials.accessKeyId must not be empty", "credentials.secretAccessKey is required", "credentials.region is not a field"}},
		{"not a string", "a", map[string]any{"type": "psk", "credentials": map[string]any{"key": 5}}, "BAD0002", []string{"credentials.key must be a string"}},
		{"x509 missing cert", "a", map[string]any{"type": "x509", "credentials": map[string]any{"key": "k", "ca": "c"}}, "BAD0002", []string{"credentials.cert is required"}},
		{"bad id", "bad*id", map[string]any{"type": "psk", "credentials": map[string]any{"key": "k"}}, "BAD0002", []string{"credentials_id"}},
		{"long id", strings.Repeat("a", 101), map[string]any{"type": "psk", "credentials": map[string]any{"key": "k"}}, "BAD0002", []string{"credentials_id"}},
		{"unknown top-level field", "a", map[string]any{"type": "psk", "credentials": map[string]any{"key": "k"}, "secret": 1}, "BAD0001", []string{"secret"}},
		{"bad json", "a", `{"type":`, "BAD0001", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"POST", "PUT"} {
				res := c.Do(method, "/v1/credentials/"+tc.id, tc.body)
				if res.Status != 400 || res.ErrorCode() != tc.code {
					t.Fatalf("%s: %d %s", method, res.Status, res.Body)
				}
				for _, s := range tc.naming {
					if !strings.Contains(string(res.Body), s) {
						t.Errorf("%s: message %s does not mention %q", method, res.Body, s)
					}
				}
			}
		})
	}
	// Every supported type with its fields; an empty optional x509 ca is dropped.
	ok := map[string]map[string]any{
		"psk":                           {"key": "k"},
		"username-password-credentials": {"username": "u", "password": "p"},
		"api-token-credentials":         {"token": "t"},
		"aws-credentials":               {"accessKeyId": "a", "secretAccessKey": "s"},
		"azure-credentials":             {"policyName": "p", "key": "k"},
		"x509":                          {"cert": "c", "key": "k", "ca": ""},
		"private-key-pem":               {"key": "-----BEGIN PRIVATE KEY-----"},
		"slack-incoming-webhook":        {"url": "https://hooks.slack.com/services/T0/B0/x"},
		"slack-signing-secret":          {"signingSecret": "8f742231b10e8888abcd99yyyzzz85a5"},
		"line-channel":                  {"channelSecret": "s", "channelAccessToken": "t"},
	}
	for typ, vals := range ok {
		if res := c.Do("POST", "/v1/credentials/t."+typ, map[string]any{"type": typ, "credentials": vals}); res.Status != 201 {
			t.Errorf("create %s: %d %s", typ, res.Status, res.Body)
		}
	}
	cred, err := ts.Credentials.Get(context.Background(), ts.OperatorID, "t.x509")
	if err != nil || !reflect.DeepEqual(cred.Values, map[string]string{"cert": "c", "key": "k"}) {
		t.Fatalf("x509: %+v %v", cred, err)
	}
}

func TestCredentialsEncryptedAndDurable(t *testing.T) {
	ts := servertest.Start(t)
	if res := ts.Root.Do("POST", "/v1/credentials/openai", map[string]any{
		"type": "api-token-credentials", "credentials": map[string]any{"token": secretToken},
	}); res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var ct, keyID string
	if err := ts.DB.QueryRowContext(context.Background(), `SELECT ciphertext, key_id FROM credentials WHERE credentials_id = $1`, "openai").Scan(&ct, &keyID); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(ct)
	if err != nil {
		t.Fatalf("ciphertext is not base64: %v", err)
	}
	for _, s := range []string{ct, string(raw)} {
		if strings.Contains(s, secretToken) || strings.Contains(s, "TOPSECRET") {
			t.Fatal("plaintext found in the stored ciphertext")
		}
	}
	if keyID == "" {
		t.Fatal("no key id stored")
	}

	ts.Restart()
	cred, err := ts.Credentials.Get(context.Background(), ts.OperatorID, "openai")
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if cred.Values["token"] != secretToken {
		t.Fatalf("after restart: %+v", cred.Values)
	}
	if res := ts.Root.Do("GET", "/v1/credentials/openai", nil); res.Status != 200 {
		t.Fatalf("get after restart: %d %s", res.Status, res.Body)
	}

	// A ciphertext moved onto another row does not decrypt as that row.
	if res := ts.Root.Do("POST", "/v1/credentials/other", map[string]any{
		"type": "psk", "credentials": map[string]any{"key": "k"},
	}); res.Status != 201 {
		t.Fatalf("create other: %d", res.Status)
	}
	if _, err := ts.DB.ExecContext(context.Background(), `UPDATE credentials SET ciphertext = $1 WHERE credentials_id = $2`, ct, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Credentials.Get(context.Background(), ts.OperatorID, "other"); err == nil {
		t.Fatal("swapped ciphertext decrypted")
	}
}

func TestOpenKeyring(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	dir := t.TempDir()

	kr, generated, err := credentials.OpenKeyring(ctx, db, dir, "")
	if err != nil || !generated {
		t.Fatalf("fresh: generated=%v err=%v", generated, err)
	}
	path := filepath.Join(dir, credentials.KeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	ct, err := kr.Encrypt(ctx, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}

	kr2, generated, err := credentials.OpenKeyring(ctx, db, dir, "")
	if err != nil || generated {
		t.Fatalf("second open: generated=%v err=%v", generated, err)
	}
	if kr2.ID != kr.ID {
		t.Fatalf("key id changed: %s → %s", kr.ID, kr2.ID)
	}
	if pt, err := kr2.Decrypt(ctx, ct); err != nil || string(pt) != "hello" {
		t.Fatalf("decrypt with reopened key: %q %v", pt, err)
	}

	// The same key given by configuration works too.
	b, _ := os.ReadFile(path)
	if _, _, err := credentials.OpenKeyring(ctx, db, t.TempDir(), strings.TrimSpace(string(b))); err != nil {
		t.Fatalf("configured same key: %v", err)
	}

	// Missing key file on an initialised database.
	if _, _, err := credentials.OpenKeyring(ctx, db, t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key file: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, _, err := credentials.OpenKeyring(ctx, db, dir, ""); err == nil {
		t.Fatal("deleted key file was silently replaced")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a new key file was written: %v", err)
	}

	// A different configured key.
	other := base64.StdEncoding.EncodeToString([]byte("a-completely-different-key-32byt"))
	if _, _, err := credentials.OpenKeyring(ctx, db, dir, other); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("different key: %v", err)
	}
	// Malformed configured key.
	if _, _, err := credentials.OpenKeyring(ctx, db, dir, "not base64!"); err == nil {
		t.Fatal("malformed key accepted")
	}
	// A different key file.
	if err := os.WriteFile(path, []byte(other+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := credentials.OpenKeyring(ctx, db, dir, ""); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("different key file: %v", err)
	}

	// A configured key on a fresh database is used without writing a file.
	dir2 := t.TempDir()
	if _, generated, err := credentials.OpenKeyring(ctx, storetest.Open(t), dir2, other); err != nil || generated {
		t.Fatalf("configured on fresh: %v %v", generated, err)
	}
	if _, err := os.Stat(filepath.Join(dir2, credentials.KeyFile)); !os.IsNotExist(err) {
		t.Fatalf("configured key wrote a file: %v", err)
	}
}
