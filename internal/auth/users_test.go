package auth_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// expect fails the test unless res has the status (and, when code is not
// empty, the error code).
func expect(t *testing.T, what string, res *servertest.Response, status int, code string) {
	t.Helper()
	if res.Status != status || (code != "" && res.ErrorCode() != code) {
		t.Fatalf("%s: got %d %s, want %d %s", what, res.Status, res.Body, status, code)
	}
}

type userDetail struct {
	UserName       string
	Description    string
	CreateDateTime int64
	UpdateDateTime int64
	HasPassword    bool
	Permission     string
	AuthKeyList    []map[string]any
	RoleList       []any
}

func usersPath(ts *servertest.TS, rest string) string {
	return "/v1/operators/" + ts.OperatorID + "/users" + rest
}

// newUser creates a user with a password and returns the path of the user.
func newUser(t *testing.T, ts *servertest.TS, name, password string) string {
	t.Helper()
	p := usersPath(ts, "/"+name)
	expect(t, "create "+name, ts.Root.Do("POST", p, nil), 201, "")
	if password != "" {
		expect(t, "password "+name, ts.Root.Do("POST", p+"/password", map[string]any{"password": password}), 201, "")
	}
	return p
}

func loginUser(ts *servertest.TS, name, password string) *servertest.Client {
	return ts.Login(map[string]any{"operatorId": ts.OperatorID, "userName": name, "password": password})
}

func TestUserCRUD(t *testing.T) {
	ts := servertest.Start(t)
	root := ts.Root

	create := []struct {
		name   string
		user   string // path segment, already escaped
		body   any
		status int
		code   string
	}{
		{"plain", "alice", nil, 201, ""},
		{"with description", "bob", map[string]any{"description": "Bob's account"}, 201, ""},
		{"all allowed characters", "a.B-c_d@e+F9", map[string]any{}, 201, ""},
		{"100 characters", strings.Repeat("x", 100), nil, 201, ""},
		{"exists", "alice", nil, 409, "CNF0001"},
		{"101 characters", strings.Repeat("x", 101), nil, 400, "BAD0002"},
		{"space", "a%20b", nil, 400, "BAD0002"},
		{"slash", "a%2Fb", nil, 400, "BAD0002"},
		{"non-ASCII", url.PathEscape("ユーザー"), nil, 400, "BAD0002"},
		{"colon", "a:b", nil, 400, "BAD0002"},
		{"reserved", "default_permissions", nil, 400, "BAD0002"},
		{"unknown field", "carol", map[string]any{"desc": "x"}, 400, "BAD0001"},
		{"description not a string", "carol", map[string]any{"description": 5}, 400, "BAD0001"},
		{"description too long", "carol", map[string]any{"description": strings.Repeat("d", 1001)}, 400, "BAD0002"},
	}
	for _, c := range create {
		t.Run("create/"+c.name, func(t *testing.T) {
			res := root.Do("POST", usersPath(ts, "/"+c.user), c.body)
			expect(t, "create", res, c.status, c.code)
			if c.status == 400 && !strings.Contains(string(res.Body), "user_name") && !strings.Contains(string(res.Body), "description") && c.code == "BAD0002" {
				t.Fatalf("error does not name the field: %s", res.Body)
			}
		})
	}
	// A failed create leaves nothing behind.
	expect(t, "get carol", root.Do("GET", usersPath(ts, "/carol"), nil), 404, "NTF0001")

	before := time.Now().Unix()
	res := root.Do("GET", usersPath(ts, "/bob"), nil)
	expect(t, "get bob", res, 200, "")
	var bob userDetail
	res.JSON(&bob)
	if bob.UserName != "bob" || bob.Description != "Bob's account" || bob.HasPassword || bob.Permission != "" ||
		bob.AuthKeyList == nil || len(bob.AuthKeyList) != 0 || bob.RoleList == nil || len(bob.RoleList) != 0 {
		t.Fatalf("bob: %s", res.Body)
	}
	// UNIX seconds, not milliseconds.
	if d := before - bob.CreateDateTime; d < -5 || d > 60 || bob.UpdateDateTime < bob.CreateDateTime {
		t.Fatalf("bob's times are not UNIX seconds of now (%d): %s", before, res.Body)
	}
	// Every required field of UserDetailResponse is present.
	var raw map[string]json.RawMessage
	res.JSON(&raw)
	for _, f := range []string{"userName", "description", "createDateTime", "updateDateTime", "hasPassword", "permission", "authKeyList", "roleList"} {
		if _, ok := raw[f]; !ok {
			t.Fatalf("field %s missing: %s", f, res.Body)
		}
	}

	update := []struct {
		name   string
		user   string
		body   any
		status int
		code   string
		want   string
	}{
		{"description", "bob", map[string]any{"description": "new"}, 200, "", "new"},
		{"empty body keeps it", "bob", nil, 200, "", "new"},
		{"clear", "bob", map[string]any{"description": ""}, 200, "", ""},
		{"unknown user", "nobody", map[string]any{"description": "x"}, 404, "NTF0001", ""},
		{"bad json", "bob", `{"description":`, 400, "BAD0001", ""},
		{"too long", "bob", map[string]any{"description": strings.Repeat("d", 1001)}, 400, "BAD0002", ""},
	}
	for _, c := range update {
		t.Run("update/"+c.name, func(t *testing.T) {
			res := root.Do("PUT", usersPath(ts, "/"+c.user), c.body)
			expect(t, "update", res, c.status, c.code)
			if c.status == 200 {
				var u userDetail
				res.JSON(&u)
				if u.Description != c.want {
					t.Fatalf("description %q, want %q", u.Description, c.want)
				}
			}
		})
	}

	res = root.Do("GET", usersPath(ts, ""), nil)
	expect(t, "list", res, 200, "")
	var list []userDetail
	res.JSON(&list)
	var names []string
	for _, u := range list {
		names = append(names, u.UserName)
	}
	if want := "a.B-c_d@e+F9,alice,bob," + strings.Repeat("x", 100); strings.Join(names, ",") != want {
		t.Fatalf("list: %v", names)
	}

	expect(t, "delete", root.Do("DELETE", usersPath(ts, "/alice"), nil), 204, "")
	expect(t, "delete again", root.Do("DELETE", usersPath(ts, "/alice"), nil), 404, "NTF0001")
	expect(t, "get deleted", root.Do("GET", usersPath(ts, "/alice"), nil), 404, "NTF0001")
	// The name is free again.
	expect(t, "recreate", root.Do("POST", usersPath(ts, "/alice"), nil), 201, "")

	// Operations on a missing user answer 404.
	for _, c := range []struct{ method, rest string }{
		{"GET", "/nobody"}, {"DELETE", "/nobody"},
		{"GET", "/nobody/permission"}, {"DELETE", "/nobody/permission"},
		{"GET", "/nobody/auth_keys"}, {"POST", "/nobody/auth_keys"},
		{"GET", "/nobody/auth_keys/keyId-x"}, {"DELETE", "/nobody/auth_keys/keyId-x"},
		{"GET", "/nobody/password"}, {"DELETE", "/nobody/password"},
	} {
		expect(t, c.method+" "+c.rest, root.Do(c.method, usersPath(ts, c.rest), nil), 404, "NTF0001")
	}
	expect(t, "permission of nobody", root.Do("PUT", usersPath(ts, "/nobody/permission"), map[string]any{"permission": `{"statements":[]}`}), 404, "NTF0001")
	expect(t, "password of nobody", root.Do("POST", usersPath(ts, "/nobody/password"), map[string]any{"password": "long enough"}), 404, "NTF0001")
}

func TestUserPasswordsAndAuthKeys(t *testing.T) {
	ts := servertest.Start(t)
	root := ts.Root
	p := newUser(t, ts, "dev", "")

	res := root.Do("GET", p+"/password", nil)
	expect(t, "hasPassword", res, 200, "")
	if strings.TrimSpace(string(res.Body)) != `{"hasPassword":false}` {
		t.Fatalf("hasPassword: %s", res.Body)
	}
	// No password yet: password login fails the same way as a wrong one.
	expect(t, "login without password", ts.Anon().Do("POST", "/v1/auth",
		map[string]any{"operatorId": ts.OperatorID, "userName": "dev", "password": "whatever1"}), 401, "AUT0003")

	steps := []struct {
		name   string
		method string
		body   any
		status int
		code   string
	}{
		{"too short", "POST", map[string]any{"password": "short"}, 400, "BAD0002"},
		{"missing", "POST", map[string]any{}, 400, "BAD0002"},
		{"no body", "POST", nil, 400, "BAD0001"},
		{"create", "POST", map[string]any{"password": "first password"}, 201, ""},
		{"create twice", "POST", map[string]any{"password": "other password"}, 409, "CNF0001"},
		{"wrong current", "PUT", map[string]any{"currentPassword": "not it at all", "newPassword": "second password"}, 400, "BAD0002"},
		{"new too short", "PUT", map[string]any{"currentPassword": "first password", "newPassword": "short"}, 400, "BAD0002"},
		{"missing new", "PUT", map[string]any{"currentPassword": "first password"}, 400, "BAD0002"},
		{"update", "PUT", map[string]any{"currentPassword": "first password", "newPassword": "second password"}, 200, ""},
	}
	for _, s := range steps {
		expect(t, s.name, root.Do(s.method, p+"/password", s.body), s.status, s.code)
	}
	if res := root.Do("PUT", p+"/password", map[string]any{"currentPassword": "not it at all", "newPassword": "x"}); !strings.Contains(string(res.Body), "currentPassword does not match") {
		t.Fatalf("wrong current password message: %s", res.Body)
	}
	res = root.Do("GET", p+"/password", nil)
	if strings.TrimSpace(string(res.Body)) != `{"hasPassword":true}` {
		t.Fatalf("hasPassword: %s", res.Body)
	}

	for _, c := range []struct {
		name, user, password string
		status               int
	}{
		{"old password", "dev", "first password", 401},
		{"wrong user", "dev2", "second password", 401},
		{"new password", "dev", "second password", 200},
	} {
		res := ts.Anon().Do("POST", "/v1/auth", map[string]any{"operatorId": ts.OperatorID, "userName": c.user, "password": c.password})
		expect(t, "login with "+c.name, res, c.status, "")
		if c.status == 200 {
			var lr map[string]string
			res.JSON(&lr)
			if lr["userName"] != "dev" || lr["operatorId"] != ts.OperatorID {
				t.Fatalf("login response: %s", res.Body)
			}
		}
	}
	// Logging out needs no permission.
	dev := loginUser(ts, "dev", "second password")
	expect(t, "listUsers without permission", dev.Do("GET", usersPath(ts, ""), nil), 403, "PRM0001")
	expect(t, "logout", dev.Do("POST", "/v1/auth/logout", nil), 204, "")
	expect(t, "after logout", dev.Do("POST", "/v1/auth/logout", nil), 401, "AUT0001")

	// Auth keys: the secret is shown once.
	res = root.Do("POST", p+"/auth_keys", nil)
	expect(t, "generate", res, 200, "")
	var key struct{ AuthKeyID, AuthKey string }
	res.JSON(&key)
	if !strings.HasPrefix(key.AuthKeyID, "keyId-") || !strings.HasPrefix(key.AuthKey, "secret-") {
		t.Fatalf("generated key: %s", res.Body)
	}
	byKey := ts.LoginKey(key.AuthKeyID, key.AuthKey)
	expect(t, "logout with key token", byKey.Do("POST", "/v1/auth/logout", nil), 204, "")

	for _, c := range []struct{ name, path string }{
		{"list", p + "/auth_keys"},
		{"get", p + "/auth_keys/" + key.AuthKeyID},
		{"user", p},
		{"users", usersPath(ts, "")},
	} {
		res := root.Do("GET", c.path, nil)
		expect(t, c.name, res, 200, "")
		if strings.Contains(string(res.Body), key.AuthKey) || strings.Contains(string(res.Body), `"authKey"`) {
			t.Fatalf("%s reveals the secret: %s", c.name, res.Body)
		}
		if !strings.Contains(string(res.Body), key.AuthKeyID) {
			t.Fatalf("%s lacks the key: %s", c.name, res.Body)
		}
	}
	res = root.Do("GET", p+"/auth_keys/"+key.AuthKeyID, nil)
	var got struct {
		AuthKeyID                        string
		CreateDateTime, LastUsedDateTime int64
	}
	res.JSON(&got)
	now := time.Now().Unix()
	if got.AuthKeyID != key.AuthKeyID || now-got.CreateDateTime > 60 || now-got.LastUsedDateTime > 60 {
		t.Fatalf("key times are not UNIX seconds of now (%d) after use: %s", now, res.Body)
	}

	// Someone else's key is not reachable under this user.
	other := newUser(t, ts, "other", "")
	expect(t, "get via other user", root.Do("GET", other+"/auth_keys/"+key.AuthKeyID, nil), 404, "NTF0001")
	expect(t, "delete via other user", root.Do("DELETE", other+"/auth_keys/"+key.AuthKeyID, nil), 404, "NTF0001")
	expect(t, "delete via operator", root.Do("DELETE", "/v1/operators/"+ts.OperatorID+"/auth_keys/"+key.AuthKeyID, nil), 404, "NTF0001")

	expect(t, "delete key", root.Do("DELETE", p+"/auth_keys/"+key.AuthKeyID, nil), 204, "")
	expect(t, "delete key again", root.Do("DELETE", p+"/auth_keys/"+key.AuthKeyID, nil), 404, "NTF0001")
	expect(t, "login with deleted key", ts.Anon().Do("POST", "/v1/auth", map[string]any{"authKeyId": key.AuthKeyID, "authKey": key.AuthKey}), 401, "AUT0003")
	res = root.Do("GET", p+"/auth_keys", nil)
	if strings.TrimSpace(string(res.Body)) != "[]" {
		t.Fatalf("keys after delete: %s", res.Body)
	}

	expect(t, "delete password", root.Do("DELETE", p+"/password", nil), 204, "")
	expect(t, "login after password deleted", ts.Anon().Do("POST", "/v1/auth",
		map[string]any{"operatorId": ts.OperatorID, "userName": "dev", "password": "second password"}), 401, "AUT0003")
	expect(t, "create again", root.Do("POST", p+"/password", map[string]any{"password": "third password"}), 201, "")
	loginUser(ts, "dev", "third password")
}

func TestDeleteUserRevokesCredentials(t *testing.T) {
	ts := servertest.Start(t)
	p := newUser(t, ts, "temp", "temp password")
	expect(t, "permission", ts.Root.Do("PUT", p+"/permission", map[string]any{"permission": `{"statements":[{"effect":"allow","api":"*"}]}`}), 200, "")
	var key struct{ AuthKeyID, AuthKey string }
	ts.Root.Do("POST", p+"/auth_keys", nil).JSON(&key)

	byPassword := loginUser(ts, "temp", "temp password")
	byKey := ts.LoginKey(key.AuthKeyID, key.AuthKey)
	for _, c := range []*servertest.Client{byPassword, byKey} {
		expect(t, "before delete", c.Do("GET", usersPath(ts, ""), nil), 200, "")
	}
	expect(t, "delete", ts.Root.Do("DELETE", p, nil), 204, "")
	for _, c := range []*servertest.Client{byPassword, byKey} {
		expect(t, "after delete", c.Do("GET", usersPath(ts, ""), nil), 401, "AUT0001")
		expect(t, "logout after delete", c.Do("POST", "/v1/auth/logout", nil), 401, "AUT0001")
	}
	// A new user of the same name inherits nothing.
	newUser(t, ts, "temp", "")
	expect(t, "old key on new user", ts.Anon().Do("POST", "/v1/auth", map[string]any{"authKeyId": key.AuthKeyID, "authKey": key.AuthKey}), 401, "AUT0003")
	expect(t, "old password on new user", ts.Anon().Do("POST", "/v1/auth",
		map[string]any{"operatorId": ts.OperatorID, "userName": "temp", "password": "temp password"}), 401, "AUT0003")
	res := ts.Root.Do("GET", p+"/permission", nil)
	if strings.TrimSpace(string(res.Body)) != `{"permission":""}` {
		t.Fatalf("new user's permission: %s", res.Body)
	}
}

func TestPermissions(t *testing.T) {
	ts := servertest.Start(t)
	root := ts.Root
	alice := newUser(t, ts, "alice", "alice password")
	newUser(t, ts, "bob", "")
	c := loginUser(ts, "alice", "alice password")
	op := "/v1/operators/" + ts.OperatorID

	type call struct {
		method, path string
		status       int
	}
	listUsers := func(status int) call { return call{"GET", usersPath(ts, ""), status} }
	getUser := func(name string, status int) call { return call{"GET", usersPath(ts, "/"+name), status} }
	getOperator := func(status int) call { return call{"GET", op, status} }
	stmt := func(s ...string) string { return `{"statements":[` + strings.Join(s, ",") + `]}` }

	cases := []struct {
		name  string
		own   string // the user's permission ("" = none)
		def   string // default permissions ("" = none)
		calls []call
	}{
		{"no permission", "", "", []call{listUsers(403), getOperator(403)}},
		{"empty statements", stmt(), "", []call{listUsers(403)}},
		{"service wildcard", stmt(`{"effect":"allow","api":"User:*"}`), "",
			[]call{listUsers(200), getUser("bob", 200), getOperator(403)}},
		{"everything", stmt(`{"effect":"allow","api":"*"}`), "",
			[]call{listUsers(200), getOperator(200), {"GET", op + "/auth_keys", 200}}},
		{"prefix wildcard", stmt(`{"effect":"allow","api":"User:list*"}`), "",
			[]call{listUsers(200), {"GET", usersPath(ts, "/bob/auth_keys"), 200}, getUser("bob", 403)}},
		{"exact names in an array", stmt(`{"effect":"allow","api":["User:getUser","Operator:getOperator"]}`), "",
			[]call{listUsers(403), getUser("bob", 200), getOperator(200)}},
		{"deny wins in the same document", stmt(`{"effect":"allow","api":"User:*"}`, `{"effect":"deny","api":"User:listUsers"}`), "",
			[]call{listUsers(403), getUser("bob", 200)}},
		{"deny first still wins", stmt(`{"effect":"deny","api":"User:list*"}`, `{"effect":"allow","api":"*"}`), "",
			[]call{listUsers(403), getUser("bob", 200)}},
		{"default permissions allow", "", stmt(`{"effect":"allow","api":"User:listUsers"}`),
			[]call{listUsers(200), getUser("bob", 403)}},
		{"default deny wins over own allow", stmt(`{"effect":"allow","api":"User:*"}`), stmt(`{"effect":"deny","api":"User:listUsers"}`),
			[]call{listUsers(403), getUser("bob", 200)}},
		{"own deny wins over default allow", stmt(`{"effect":"deny","api":"User:getUser"}`), stmt(`{"effect":"allow","api":"*"}`),
			[]call{listUsers(200), getUser("bob", 403)}},
		{"only itself", stmt(`{"effect":"allow","api":"User:getUser","condition":"pathVariable('user_name') == samUserName"}`), "",
			[]call{getUser("alice", 200), getUser("bob", 403), listUsers(403)}},
		{"loopback address", stmt(`{"effect":"allow","api":"*","condition":"ipAddress('127.0.0.1/32')"}`), "",
			[]call{listUsers(200)}},
		{"several addresses", stmt(`{"effect":"allow","api":"*","condition":"ipAddress('192.0.2.0/24', '127.0.0.1')"}`), "",
			[]call{listUsers(200)}},
		{"other network", stmt(`{"effect":"allow","api":"*","condition":"ipAddress('10.0.0.0/8')"}`), "",
			[]call{listUsers(403)}},
		{"deny from other network does not apply", stmt(`{"effect":"allow","api":"*"}`, `{"effect":"deny","api":"*","condition":"ipAddress('10.0.0.0/8')"}`), "",
			[]call{listUsers(200)}},
		{"deny from loopback applies", stmt(`{"effect":"allow","api":"*"}`, `{"effect":"deny","api":"User:listUsers","condition":"not ipAddress('10.0.0.0/8')"}`), "",
			[]call{listUsers(403), getUser("bob", 200)}},
		{"after a past date", stmt(`{"effect":"allow","api":"*","condition":"currentDate >= date(2023, 02, 01)"}`), "",
			[]call{listUsers(200)}},
		{"before a past date", stmt(`{"effect":"allow","api":"*","condition":"currentDate < date(2023, 02, 01)"}`), "",
			[]call{listUsers(403)}},
		{"date and address", stmt(`{"effect":"allow","api":"*","condition":"currentDate >= date(2023, 02, 01) and ipAddress('127.0.0.0/8')"}`), "",
			[]call{listUsers(200)}},
		{"read-only by method", stmt(`{"effect":"allow","api":"User:*","condition":"httpMethod == 'GET'"}`), "",
			[]call{listUsers(200), {"PUT", usersPath(ts, "/bob"), 403}, {"DELETE", usersPath(ts, "/bob/password"), 403}}},
		{"own permission may be changed when allowed", stmt(`{"effect":"allow","api":"User:getUserPermission"}`), "",
			[]call{{"GET", alice + "/permission", 200}, {"PUT", alice + "/permission", 403}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.own == "" {
				expect(t, "delete permission", root.Do("DELETE", alice+"/permission", nil), 204, "")
			} else {
				expect(t, "set permission", root.Do("PUT", alice+"/permission", map[string]any{"permission": tc.own}), 200, "")
			}
			if tc.def == "" {
				expect(t, "delete defaults", root.Do("DELETE", usersPath(ts, "/default_permissions"), nil), 204, "")
			} else {
				expect(t, "set defaults", root.Do("PUT", usersPath(ts, "/default_permissions"), map[string]any{"permissions": tc.def}), 202, "")
			}
			for _, cl := range tc.calls {
				res := c.Do(cl.method, cl.path, nil)
				if res.Status != cl.status || res.Status == 403 && res.ErrorCode() != "PRM0001" {
					t.Fatalf("%s %s: got %d %s, want %d", cl.method, cl.path, res.Status, res.Body, cl.status)
				}
			}
			// Logging out is always allowed; log in again afterwards.
			if tc.name == "no permission" {
				expect(t, "logout", c.Do("POST", "/v1/auth/logout", nil), 204, "")
				c = loginUser(ts, "alice", "alice password")
			}
		})
	}

	// Another operator's ID is refused, for users and for the root account.
	for _, cl := range []*servertest.Client{root, c} {
		for _, path := range []string{"/v1/operators/OP0000000000", "/v1/operators/OP0000000000/users", "/v1/operators/OP0000000000/users/alice/permission"} {
			expect(t, "other operator "+path, cl.Do("GET", path, nil), 403, "PRM0001")
		}
	}
}

func TestPermissionValidation(t *testing.T) {
	ts := servertest.Start(t)
	root := ts.Root
	p := newUser(t, ts, "val", "")
	good := `{"statements":[{"effect":"allow","api":"User:*"}]}`
	defaults := usersPath(ts, "/default_permissions")
	expect(t, "set", root.Do("PUT", p+"/permission", map[string]any{"permission": good, "description": "users admin"}), 200, "")
	expect(t, "set defaults", root.Do("PUT", defaults, map[string]any{"permissions": good}), 202, "")

	cases := []struct {
		name string
		doc  any // the value of "permission"/"permissions"
		code string
		msg  string // part of the message
	}{
		{"not JSON", `{"statements":[`, "BAD0002", "not a valid permission document"},
		{"not an object", `[]`, "BAD0002", "not a valid permission document"},
		{"null", `null`, "BAD0002", "statements: required"},
		{"no statements", `{}`, "BAD0002", "statements: required"},
		{"trailing data", good + `{}`, "BAD0002", "after the top-level object"},
		{"unknown field", `{"statements":[],"version":"1"}`, "BAD0002", "version"},
		{"bad effect", `{"statements":[{"effect":"permit","api":"*"}]}`, "BAD0002", "must be allow or deny"},
		{"lowercase service", `{"statements":[{"effect":"allow","api":"user:listUsers"}]}`, "BAD0002", `"user:listUsers" is not an API name`},
		{"wildcard inside", `{"statements":[{"effect":"allow","api":"User:*Users"}]}`, "BAD0002", "is not an API name"},
		{"service prefix", `{"statements":[{"effect":"allow","api":"Us*"}]}`, "BAD0002", "is not an API name"},
		{"no api", `{"statements":[{"effect":"allow"}]}`, "BAD0002", "statements[0].api: required"},
		{"empty api list", `{"statements":[{"effect":"allow","api":[]}]}`, "BAD0002", "statements[0].api: required"},
		{"api a number", `{"statements":[{"effect":"allow","api":1}]}`, "BAD0002", "string or an array"},
		{"condition syntax", `{"statements":[{"effect":"allow","api":"*","condition":"currentDate >="}]}`, "BAD0002", "statements[0].condition"},
		{"condition unknown name", `{"statements":[{"effect":"allow","api":"*","condition":"sourceIp == '1.2.3.4'"}]}`, "BAD0002", "statements[0].condition"},
		{"condition not boolean", `{"statements":[{"effect":"allow","api":"*","condition":"samUserName"}]}`, "BAD0002", "statements[0].condition"},
		{"second statement", `{"statements":[{"effect":"allow","api":"*"},{"effect":"deny","api":"bad"}]}`, "BAD0002", "statements[1].api"},
		{"empty string", ``, "BAD0002", "not a valid permission document"},
		{"an object, not a string", map[string]any{"statements": []any{}}, "BAD0001", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, target := range []struct{ path, field, method string }{{p + "/permission", "permission", "PUT"}, {defaults, "permissions", "PUT"}} {
				res := root.Do(target.method, target.path, map[string]any{target.field: c.doc})
				expect(t, target.field, res, 400, c.code)
				var e struct{ Message string }
				res.JSON(&e)
				if !strings.Contains(e.Message, c.msg) {
					t.Fatalf("%s: message %s lacks %q", target.field, res.Body, c.msg)
				}
			}
		})
	}
	for _, c := range []struct {
		name string
		body any
		code string
	}{
		{"missing permission", map[string]any{"description": "x"}, "BAD0002"},
		{"no body", nil, "BAD0001"},
		{"misspelt field", map[string]any{"permissions": good}, "BAD0001"},
	} {
		expect(t, c.name, root.Do("PUT", p+"/permission", c.body), 400, c.code)
	}
	expect(t, "defaults with user field name", root.Do("PUT", defaults, map[string]any{"permission": good}), 400, "BAD0001")

	// Nothing invalid was stored.
	res := root.Do("GET", p+"/permission", nil)
	var perm map[string]string
	res.JSON(&perm)
	if perm["permission"] != good {
		t.Fatalf("permission changed: %s", res.Body)
	}
	res = root.Do("GET", defaults, nil)
	var def map[string]string
	res.JSON(&def)
	if def["permissions"] != good {
		t.Fatalf("default permissions changed: %s", res.Body)
	}
	res = root.Do("GET", p, nil)
	var u userDetail
	res.JSON(&u)
	if u.Permission != good {
		t.Fatalf("user detail permission: %s", res.Body)
	}

	// Dates with leading zeros and string literals with them are kept apart.
	doc := `{"statements":[{"effect":"allow","api":"*","condition":"currentDate >= date(2023, 02, 01) and pathVariable('user_name') != '007'"}]}`
	expect(t, "leading zeros", root.Do("PUT", p+"/permission", map[string]any{"permission": doc}), 200, "")

	// Deleting resets to none; default permissions read as "" when unset.
	expect(t, "delete", root.Do("DELETE", p+"/permission", nil), 204, "")
	expect(t, "delete defaults", root.Do("DELETE", defaults, nil), 204, "")
	expect(t, "delete defaults again", root.Do("DELETE", defaults, nil), 204, "")
	for _, c := range []struct{ path, want string }{
		{p + "/permission", `{"permission":""}`},
		{defaults, `{"permissions":""}`},
	} {
		res := root.Do("GET", c.path, nil)
		if res.Status != 200 || strings.TrimSpace(string(res.Body)) != c.want {
			t.Fatalf("GET %s: %d %s", c.path, res.Status, res.Body)
		}
	}
}

func TestOperatorAuthKeys(t *testing.T) {
	ts := servertest.Start(t)
	root := ts.Root
	op := "/v1/operators/" + ts.OperatorID

	res := root.Do("GET", op, nil)
	expect(t, "getOperator", res, 200, "")
	var o struct {
		OperatorID, Email string
		CreateDateTime    int64
	}
	res.JSON(&o)
	if o.OperatorID != ts.OperatorID || o.Email == "" || time.Now().Unix()-o.CreateDateTime > 600 || o.CreateDateTime > time.Now().Unix()+5 {
		t.Fatalf("operator: %s", res.Body)
	}

	keyIDs := func() []string {
		res := root.Do("GET", op+"/auth_keys", nil)
		expect(t, "list", res, 200, "")
		if strings.Contains(string(res.Body), "secret") || strings.Contains(string(res.Body), `"authKey"`) {
			t.Fatalf("list reveals secrets: %s", res.Body)
		}
		var keys []struct{ AuthKeyID string }
		res.JSON(&keys)
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.AuthKeyID)
		}
		return ids
	}
	if ids := keyIDs(); len(ids) != 1 || ids[0] != servertest.RootKeyID {
		t.Fatalf("root keys: %v", ids)
	}
	// A user's key is not a root key.
	u := newUser(t, ts, "keyholder", "")
	expect(t, "user key", root.Do("POST", u+"/auth_keys", nil), 200, "")

	res = root.Do("POST", op+"/auth_keys", nil)
	expect(t, "generate", res, 201, "")
	var key struct{ AuthKeyID, AuthKey string }
	res.JSON(&key)
	if ids := keyIDs(); len(ids) != 2 {
		t.Fatalf("root keys after generate: %v", ids)
	}
	second := ts.LoginKey(key.AuthKeyID, key.AuthKey)
	expect(t, "root by new key", second.Do("GET", op+"/users", nil), 200, "")

	expect(t, "delete unknown", root.Do("DELETE", op+"/auth_keys/keyId-none", nil), 404, "NTF0001")
	expect(t, "delete configured key", root.Do("DELETE", op+"/auth_keys/"+servertest.RootKeyID, nil), 204, "")
	res = root.Do("DELETE", op+"/auth_keys/"+key.AuthKeyID, nil)
	expect(t, "delete last key", res, 400, "BAD0002")
	if !strings.Contains(string(res.Body), "last") {
		t.Fatalf("message: %s", res.Body)
	}
	if ids := keyIDs(); len(ids) != 1 || ids[0] != key.AuthKeyID {
		t.Fatalf("root keys after deletes: %v", ids)
	}
	ts.LoginKey(key.AuthKeyID, key.AuthKey)
	expect(t, "deleted key", ts.Anon().Do("POST", "/v1/auth", map[string]any{"authKeyId": servertest.RootKeyID, "authKey": servertest.RootKey}), 401, "AUT0003")
}

func TestDefaultPermissionsRoute(t *testing.T) {
	ts := servertest.Start(t)
	// The literal segment wins over {user_name} for its own methods...
	res := ts.Root.Do("GET", usersPath(ts, "/default_permissions"), nil)
	if res.Status != 200 || strings.TrimSpace(string(res.Body)) != `{"permissions":""}` {
		t.Fatalf("GET default_permissions: %d %s", res.Status, res.Body)
	}
	// ...and POST, which only {user_name} has, cannot create a user that
	// could never be read back.
	expect(t, "POST default_permissions", ts.Root.Do("POST", usersPath(ts, "/default_permissions"), nil), 400, "BAD0002")
	expect(t, "unauthenticated", ts.Anon().Do("GET", usersPath(ts, "/default_permissions"), nil), 401, "AUT0001")
	// A user may read default permissions only when allowed to.
	p := newUser(t, ts, "reader", "reader password")
	c := loginUser(ts, "reader", "reader password")
	expect(t, "not allowed", c.Do("GET", usersPath(ts, "/default_permissions"), nil), 403, "PRM0001")
	expect(t, "allow", ts.Root.Do("PUT", p+"/permission", map[string]any{"permission": `{"statements":[{"effect":"allow","api":"User:getDefaultPermissions"}]}`}), 200, "")
	expect(t, "allowed", c.Do("GET", usersPath(ts, "/default_permissions"), nil), 200, "")
	expect(t, "get user still not", c.Do("GET", p, nil), 403, "PRM0001")
}

func TestConcurrentRootKeyDeletesKeepOne(t *testing.T) {
	ts := servertest.Start(t)
	op := "/v1/operators/" + ts.OperatorID
	ids := []string{servertest.RootKeyID}
	for i := 0; i < 4; i++ {
		var key struct{ AuthKeyID string }
		ts.Root.Do("POST", op+"/auth_keys", nil).JSON(&key)
		ids = append(ids, key.AuthKeyID)
	}
	statuses := make(chan int, len(ids))
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- ts.Root.Do("DELETE", op+"/auth_keys/"+id, nil).Status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[204] != len(ids)-1 || count[400] != 1 {
		t.Fatalf("statuses: %v", count)
	}
	var left []any
	ts.Root.Do("GET", op+"/auth_keys", nil).JSON(&left)
	if len(left) != 1 {
		t.Fatalf("%d root keys left", len(left))
	}
}
