package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nagare-iot/nagare/internal/live"
	"github.com/nagare-iot/nagare/internal/servertest"
)

// dial opens /v1/live and sends the auth message of c (nil: no message).
func dial(t *testing.T, ts *servertest.TS, c *servertest.Client) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(ts.URL, "http://", "ws://", 1)+"/v1/live", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	if c != nil {
		send(t, ws, map[string]any{"type": "auth", "apiKey": c.APIKey, "token": c.Token})
	}
	return ws
}

func send(t *testing.T, ws *websocket.Conn, m map[string]any) {
	t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// recv reads the next message within d; nil when none came.
func recv(t *testing.T, ws *websocket.Conn, d time.Duration) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return m
}

func expectType(t *testing.T, ws *websocket.Conn, typ string) map[string]any {
	t.Helper()
	m := recv(t, ws, 10*time.Second)
	if m == nil || m["type"] != typ {
		t.Fatalf("want a %q message, got %v", typ, m)
	}
	return m
}

// device registers a device in a Harvest-enabled group and returns its ID
// and a function publishing JSON as it.
func device(t *testing.T, ts *servertest.TS) (string, func(body string)) {
	t.Helper()
	res := ts.Root.Do("POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}})
	var g struct{ GroupID string }
	res.JSON(&g)
	res = ts.Root.Do("POST", "/v1/devices", nil)
	if res.Status != 201 && res.Status != 200 {
		t.Fatalf("create device: %d %s", res.Status, res.Body)
	}
	var d struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string `json:"deviceSecret"`
	}
	res.JSON(&d)
	if r := ts.Root.Do("POST", "/v1/devices/"+d.DeviceID+"/set_group", map[string]any{"groupId": g.GroupID}); r.Status >= 300 {
		t.Fatalf("set group: %d %s", r.Status, r.Body)
	}
	return d.DeviceID, func(body string) {
		t.Helper()
		r := ts.Anon().Do("POST", "/v1/devices/"+d.DeviceID+"/publish", body, "X-Device-Secret", d.DeviceSecret, "Content-Type", "application/json")
		if r.Status != 201 {
			t.Fatalf("publish: %d %s", r.Status, r.Body)
		}
	}
}

func TestLiveData(t *testing.T) {
	ts := servertest.Start(t)
	d1, publish := device(t, ts)

	ws := dial(t, ts, ts.Root)
	expectType(t, ws, "ready")
	send(t, ws, map[string]any{"type": "subscribe", "id": "a", "topic": "data", "resourceType": "Device", "resourceId": d1})
	if m := expectType(t, ws, "subscribed"); m["id"] != "a" {
		t.Fatalf("subscribed %v", m)
	}
	publish(`{"temp":21.5}`)
	m := expectType(t, ws, "data")
	entry, _ := m["entry"].(map[string]any)
	if m["id"] != "a" || entry["resourceId"] != d1 || entry["content"] != `{"temp":21.5}` {
		t.Fatalf("pushed %v", m)
	}

	// After unsubscribe nothing more arrives (a ping answers, so the
	// connection is known to be alive).
	send(t, ws, map[string]any{"type": "unsubscribe", "id": "a"})
	send(t, ws, map[string]any{"type": "ping", "id": "p"})
	expectType(t, ws, "pong")
	publish(`{"temp":22}`)
	if m := recv(t, ws, 500*time.Millisecond); m != nil {
		t.Fatalf("pushed after unsubscribe: %v", m)
	}
}

func TestLiveRejects(t *testing.T) {
	ts := servertest.Start(t)
	d1, _ := device(t, ts)
	d2, _ := device(t, ts)

	t.Run("bad token", func(t *testing.T) {
		ws := dial(t, ts, &servertest.Client{APIKey: "api-x", Token: "nope"})
		if m := expectType(t, ws, "error"); m["code"] != "AUT0001" {
			t.Fatalf("got %v", m)
		}
	})
	t.Run("first message not auth", func(t *testing.T) {
		ws := dial(t, ts, nil)
		send(t, ws, map[string]any{"type": "subscribe", "id": "a"})
		if m := expectType(t, ws, "error"); m["code"] != "AUT0001" {
			t.Fatalf("got %v", m)
		}
	})

	ws := dial(t, ts, ts.Root)
	expectType(t, ws, "ready")
	for _, c := range []struct {
		name string
		msg  map[string]any
		code string
	}{
		{"unknown topic", map[string]any{"type": "subscribe", "id": "1", "topic": "nope"}, "BAD0001"},
		{"missing id", map[string]any{"type": "subscribe", "topic": "data", "resourceType": "Device", "resourceId": d1}, "BAD0001"},
		{"missing resource", map[string]any{"type": "subscribe", "id": "2", "topic": "data", "resourceType": "Device"}, "BAD0001"},
		{"wildcard in id", map[string]any{"type": "subscribe", "id": "3", "topic": "data", "resourceType": "Device", "resourceId": "*"}, "BAD0001"},
		{"subject injection", map[string]any{"type": "subscribe", "id": "4", "topic": "data", "resourceType": "Device.>", "resourceId": "d1"}, "BAD0001"},
		{"unknown type", map[string]any{"type": "hello", "id": "5"}, "BAD0001"},
	} {
		send(t, ws, c.msg)
		if m := expectType(t, ws, "error"); m["code"] != c.code {
			t.Errorf("%s: got %v, want code %s", c.name, m, c.code)
		}
	}

	// A SAM user allowed to read d1's data only.
	p := fmt.Sprintf("/v1/operators/%s/users/viewer", ts.OperatorID)
	for _, r := range []*servertest.Response{
		ts.Root.Do("POST", p, map[string]any{}),
		ts.Root.Do("POST", p+"/password", map[string]any{"password": "viewer password"}),
		ts.Root.Do("PUT", p+"/permission", map[string]any{"permission": `{"statements":[{"effect":"allow","api":["Live:connect"]},{"effect":"allow","api":["DataEntry:getDataEntries"],"condition":"pathVariable('resource_id') == '` + d1 + `'"}]}`}),
	} {
		if r.Status >= 300 {
			t.Fatalf("setting up the user: %d %s", r.Status, r.Body)
		}
	}
	viewer := ts.Login(map[string]any{"operatorId": ts.OperatorID, "userName": "viewer", "password": "viewer password"})
	vs := dial(t, ts, viewer)
	expectType(t, vs, "ready")
	send(t, vs, map[string]any{"type": "subscribe", "id": "ok", "topic": "data", "resourceType": "Device", "resourceId": d1})
	expectType(t, vs, "subscribed")
	send(t, vs, map[string]any{"type": "subscribe", "id": "no", "topic": "data", "resourceType": "Device", "resourceId": d2})
	if m := expectType(t, vs, "error"); m["code"] != "PRM0001" || m["id"] != "no" {
		t.Fatalf("subscribing to d2: %v", m)
	}

	// A user without Live:connect cannot open the channel at all.
	ts.Root.Do("PUT", p+"/permission", map[string]any{"permission": `{"statements":[{"effect":"allow","api":["DataEntry:*"]}]}`})
	ns := dial(t, ts, viewer)
	if m := expectType(t, ns, "error"); m["code"] != "PRM0001" {
		t.Fatalf("without Live:connect: %v", m)
	}
}

// A session that logs out stops receiving pushes: the token is checked
// again at every ping.
func TestLiveLogout(t *testing.T) {
	defer live.SetPingEvery(200 * time.Millisecond)()
	ts := servertest.Start(t)
	c := ts.LoginKey(servertest.RootKeyID, servertest.RootKey)
	ws := dial(t, ts, c)
	expectType(t, ws, "ready")
	if r := c.Do("POST", "/v1/auth/logout", nil); r.Status >= 300 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if m := expectType(t, ws, "error"); m["code"] != "AUT0001" {
		t.Fatalf("after logout: %v", m)
	}
	if m := recv(t, ws, 2*time.Second); m != nil {
		t.Fatalf("still open after logout: %v", m)
	}
}
