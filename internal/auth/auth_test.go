package auth_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/servertest"
)

func TestLoginAndTokens(t *testing.T) {
	ts := servertest.Start(t)
	anon := ts.Anon()

	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"wrong secret", map[string]any{"authKeyId": servertest.RootKeyID, "authKey": "secret-nope"}, 401, "AUT0003"},
		{"unknown key", map[string]any{"authKeyId": "keyId-none", "authKey": "secret-x"}, 401, "AUT0003"},
		{"half a key", map[string]any{"authKeyId": servertest.RootKeyID}, 400, "BAD0002"},
		{"no credentials", map[string]any{}, 400, "BAD0002"},
		{"bad json", `{"authKeyId":`, 400, "BAD0001"},
		{"unknown field", map[string]any{"authKeyIdd": "x"}, 400, "BAD0001"},
		{"timeout too long", map[string]any{"authKeyId": servertest.RootKeyID, "authKey": servertest.RootKey, "tokenTimeoutSeconds": 172801}, 400, "BAD0002"},
		{"root email without password set", map[string]any{"email": "root@nagare.local", "password": "whatever1"}, 401, "AUT0003"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := anon.Do("POST", "/v1/auth", c.body)
			if res.Status != c.status || res.ErrorCode() != c.code {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Body, c.status, c.code)
			}
		})
	}

	// No credentials on an authenticated operation.
	if res := anon.Do("POST", "/v1/auth/logout", nil); res.Status != 401 || res.ErrorCode() != "AUT0001" {
		t.Fatalf("logout without token: %d %s", res.Status, res.Body)
	}
	// Forged token for a real API key.
	forged := *ts.Root
	forged.Token = "forged"
	if res := forged.Do("POST", "/v1/auth/logout", nil); res.Status != 401 {
		t.Fatalf("forged token: %d %s", res.Status, res.Body)
	}

	// Logout revokes the token.
	c := ts.LoginKey(servertest.RootKeyID, servertest.RootKey)
	if res := c.Do("POST", "/v1/auth/logout", nil); res.Status != 204 {
		t.Fatalf("logout: %d %s", res.Status, res.Body)
	}
	if res := c.Do("POST", "/v1/auth/logout", nil); res.Status != 401 {
		t.Fatalf("after logout: %d %s", res.Status, res.Body)
	}

	// A token expires after its timeout.
	c = ts.Login(map[string]any{"authKeyId": servertest.RootKeyID, "authKey": servertest.RootKey, "tokenTimeoutSeconds": 180})
	ts.Auth.SetClock(func() time.Time { return time.Now().Add(181 * time.Second) })
	defer ts.Auth.SetClock(time.Now)
	if res := c.Do("POST", "/v1/auth/logout", nil); res.Status != 401 || res.ErrorCode() != "AUT0002" {
		t.Fatalf("expired token: %d %s", res.Status, res.Body)
	}
}

func TestRootPasswordLogin(t *testing.T) {
	ts := servertest.Start(t, func(c *config.Config) { c.RootPassword = "correct horse" })
	ts.Login(map[string]any{"email": "root@nagare.local", "password": "correct horse"})
	if res := ts.Anon().Do("POST", "/v1/auth", map[string]any{"email": "root@nagare.local", "password": "wrong horse"}); res.Status != 401 {
		t.Fatalf("wrong password: %d", res.Status)
	}
}

// Failed logins slow down further tries of the account: after five misses
// even the right key waits (429 with Retry-After), then works, and a
// success starts the count again.
func TestLoginThrottled(t *testing.T) {
	ts := servertest.Start(t)
	anon := ts.Anon()
	// A clock the test moves: a slow machine must not make the wait pass.
	var mu sync.Mutex
	now := time.Now()
	ts.Auth.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	defer ts.Auth.SetClock(time.Now)
	wrong := map[string]any{"authKeyId": servertest.RootKeyID, "authKey": "secret-wrong"}
	right := map[string]any{"authKeyId": servertest.RootKeyID, "authKey": servertest.RootKey}
	for i := range 5 {
		if res := anon.Do("POST", "/v1/auth", wrong); res.Status != 401 {
			t.Fatalf("miss %d: %d %s", i+1, res.Status, res.Body)
		}
	}
	res := anon.Do("POST", "/v1/auth", right)
	if res.Status != 429 || res.ErrorCode() != "LIM0001" || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("after five misses: %d %s Retry-After %q", res.Status, res.Body, res.Header.Get("Retry-After"))
	}
	// Another account is not held up.
	if res := anon.Do("POST", "/v1/auth", map[string]any{"authKeyId": "keyId-other", "authKey": "secret-x"}); res.Status != 401 {
		t.Fatalf("other account: %d %s", res.Status, res.Body)
	}
	mu.Lock()
	now = now.Add(1100 * time.Millisecond)
	mu.Unlock()
	if res := anon.Do("POST", "/v1/auth", right); res.Status != 200 {
		t.Fatalf("after the wait: %d %s", res.Status, res.Body)
	}
	if res := anon.Do("POST", "/v1/auth", wrong); res.Status != 401 {
		t.Fatalf("a miss after a success: %d %s", res.Status, res.Body)
	}
}
