package shadow_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// inbox collects the messages of some subjects.
type inbox struct {
	t  *testing.T
	ch chan *nats.Msg
}

func listen(t *testing.T, nc *nats.Conn, subjects ...string) *inbox {
	t.Helper()
	in := &inbox{t: t, ch: make(chan *nats.Msg, 100)}
	for _, s := range subjects {
		sub, err := nc.ChanSubscribe(s, in.ch)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return in
}

// next returns the next message, which must be on subject.
func (in *inbox) next(subject string) map[string]any {
	in.t.Helper()
	select {
	case m := <-in.ch:
		if m.Subject != subject {
			in.t.Fatalf("got a message on %s (%s); want %s", m.Subject, m.Data, subject)
		}
		var v map[string]any
		if err := json.Unmarshal(m.Data, &v); err != nil {
			in.t.Fatalf("%s: %s is not JSON", m.Subject, m.Data)
		}
		return v
	case <-time.After(10 * time.Second):
		in.t.Fatalf("nothing on %s", subject)
	}
	return nil
}

// none checks that nothing more arrives.
func (in *inbox) none() {
	in.t.Helper()
	select {
	case m := <-in.ch:
		in.t.Fatalf("unexpected message on %s: %s", m.Subject, m.Data)
	case <-time.After(200 * time.Millisecond):
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The AWS MQTT protocol, spoken as NATS subjects (what the embedded
// server's MQTT listener turns $aws/things/… topics into): update, the
// accepted/delta/documents replies, get, version conflicts, rejections,
// named shadows and delete.
func TestTopics(t *testing.T) {
	ts := servertest.Start(t)
	nc := ts.Bus.NC
	const p = "$aws.things.lamp.shadow"
	in := listen(t, nc, p+".update.accepted", p+".update.rejected", p+".update.delta", p+".update.documents",
		p+".get.accepted", p+".get.rejected", p+".delete.accepted", p+".delete.rejected")
	pub := func(subject, body string) {
		t.Helper()
		if err := nc.Publish(subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}

	pub(p+".update", `{"state":{"desired":{"color":"red","power":{"on":true}}},"clientToken":"c1"}`)
	acc := in.next(p + ".update.accepted")
	if acc["version"] != 1.0 || acc["clientToken"] != "c1" || js(acc["state"]) != `{"desired":{"color":"red","power":{"on":true}}}` {
		t.Fatalf("accepted: %v", acc)
	}
	ts1 := acc["timestamp"].(float64)
	if js(acc["metadata"]) != js(map[string]any{"desired": map[string]any{"color": map[string]any{"timestamp": ts1}, "power": map[string]any{"on": map[string]any{"timestamp": ts1}}}}) {
		t.Fatalf("accepted metadata: %v", acc["metadata"])
	}
	delta := in.next(p + ".update.delta")
	if js(delta["state"]) != `{"color":"red","power":{"on":true}}` || delta["version"] != 1.0 || delta["clientToken"] != "c1" {
		t.Fatalf("delta: %v", delta)
	}
	docs := in.next(p + ".update.documents")
	prev, cur := docs["previous"].(map[string]any), docs["current"].(map[string]any)
	if prev["version"] != 0.0 || cur["version"] != 1.0 || js(cur["state"]) != `{"desired":{"color":"red","power":{"on":true}}}` {
		t.Fatalf("documents: %v", docs)
	}

	// The device reports half of it: no delta for a reported-only update.
	pub(p+".update", `{"state":{"reported":{"color":"red","power":{"on":false}}}}`)
	in.next(p + ".update.accepted")
	in.next(p + ".update.documents")
	in.none()

	pub(p+".get", ``)
	got := in.next(p + ".get.accepted")
	st := got["state"].(map[string]any)
	if got["version"] != 2.0 || js(st["delta"]) != `{"power":{"on":true}}` || st["reported"] == nil {
		t.Fatalf("get: %v", got)
	}
	pub(p+".get", `{"clientToken":"g1"}`)
	if got := in.next(p + ".get.accepted"); got["clientToken"] != "g1" {
		t.Fatalf("get token: %v", got)
	}

	// Optimistic locking.
	pub(p+".update", `{"state":{"desired":{"color":"blue"}},"version":1,"clientToken":"old"}`)
	rej := in.next(p + ".update.rejected")
	if rej["code"] != 409.0 || rej["message"] != "Version conflict" || rej["clientToken"] != "old" || rej["timestamp"] == nil {
		t.Fatalf("rejected: %v", rej)
	}
	pub(p+".update", `{"state":{"desired":{"color":"blue"}},"version":2}`)
	if acc := in.next(p + ".update.accepted"); acc["version"] != 3.0 {
		t.Fatalf("accepted: %v", acc)
	}
	in.next(p + ".update.delta")
	in.next(p + ".update.documents")

	pub(p+".update", `{"state":`)
	if rej := in.next(p + ".update.rejected"); rej["code"] != 400.0 || rej["message"] != "Invalid JSON" {
		t.Fatalf("rejected: %v", rej)
	}
	pub(p+".update", `{"state":{"desired":{"big":"`+strings.Repeat("x", 8200)+`"}}}`)
	if rej := in.next(p + ".update.rejected"); rej["code"] != 413.0 {
		t.Fatalf("rejected: %v", rej)
	}

	// A named shadow is separate; "." in a name is refused on the same topics.
	const n = "$aws.things.lamp.shadow.name.dnd"
	named := listen(t, nc, n+".update.accepted", n+".get.accepted", n+".get.rejected", n+".delete.accepted")
	pub(n+".update", `{"state":{"reported":{"dnd":true}}}`)
	if acc := named.next(n + ".update.accepted"); acc["version"] != 1.0 {
		t.Fatalf("named accepted: %v", acc)
	}
	bad := listen(t, nc, "$aws.things.my//lamp.shadow.update.rejected")
	pub("$aws.things.my//lamp.shadow.update", `{"state":{}}`)
	if rej := bad.next("$aws.things.my//lamp.shadow.update.rejected"); rej["code"] != 400.0 || !strings.Contains(rej["message"].(string), "my.lamp") {
		t.Fatalf("bad name: %v", rej)
	}

	pub(n+".delete", ``)
	if d := named.next(n + ".delete.accepted"); d["version"] != 1.0 {
		t.Fatalf("delete: %v", d)
	}
	pub(n+".get", ``)
	if rej := named.next(n + ".get.rejected"); rej["code"] != 404.0 || rej["message"] != "No shadow exists with name: 'dnd'" {
		t.Fatalf("get after delete: %v", rej)
	}
	// The classic shadow is untouched.
	pub(p+".get", ``)
	if got := in.next(p + ".get.accepted"); got["version"] != 3.0 {
		t.Fatalf("classic after deleting the named one: %v", got)
	}
	pub(p+".delete", `{"clientToken":"d"}`)
	if d := in.next(p + ".delete.accepted"); d["version"] != 3.0 || d["clientToken"] != "d" {
		t.Fatalf("delete: %v", d)
	}
	pub(p+".delete", ``)
	if rej := in.next(p + ".delete.rejected"); rej["code"] != 404.0 || rej["message"] != "No shadow exists with name: 'lamp'" {
		t.Fatalf("second delete: %v", rej)
	}
}

// The HTTP operations, and that their changes reach topic subscribers.
func TestHTTP(t *testing.T) {
	ts := servertest.Start(t)
	c := ts.Root
	in := listen(t, ts.Bus.NC, "$aws.things.alice.shadow.update.>", "$aws.things.alice.shadow.delete.>")

	if res := c.Do("GET", "/v1/things/alice/shadow", nil); res.Status != 404 || res.ErrorCode() != "SHD0003" {
		t.Fatalf("get missing: %d %s", res.Status, res.Body)
	}
	res := c.Do("POST", "/v1/things/alice/shadow", `{"state":{"desired":{"state":"calling"}},"clientToken":"h1"}`)
	if res.Status != 200 {
		t.Fatalf("update: %d %s", res.Status, res.Body)
	}
	var acc struct {
		State       map[string]any
		Version     int
		ClientToken string
	}
	res.JSON(&acc)
	if acc.Version != 1 || acc.ClientToken != "h1" || js(acc.State) != `{"desired":{"state":"calling"}}` {
		t.Fatalf("accepted: %s", res.Body)
	}
	if m := in.next("$aws.things.alice.shadow.update.accepted"); m["clientToken"] != "h1" {
		t.Fatalf("topic accepted: %v", m)
	}
	in.next("$aws.things.alice.shadow.update.delta")
	in.next("$aws.things.alice.shadow.update.documents")

	res = c.Do("POST", "/v1/things/alice/shadow", `{"state":{"desired":{"state":"idle"}},"version":7}`)
	if res.Status != 409 || res.ErrorCode() != "SHD0004" || !strings.Contains(string(res.Body), "Version conflict") {
		t.Fatalf("conflict: %d %s", res.Status, res.Body)
	}
	for body, code := range map[string]string{`nope`: "SHD0001", `{"state":{"desired":5}}`: "SHD0001", `{}`: "SHD0001"} {
		if res := c.Do("POST", "/v1/things/alice/shadow", body); res.Status != 400 || res.ErrorCode() != code {
			t.Errorf("%s: %d %s", body, res.Status, res.Body)
		}
	}
	if res := c.Do("POST", "/v1/things/al.ice/shadow", `{"state":{}}`); res.Status != 400 || res.ErrorCode() != "SHD0002" {
		t.Errorf("bad thing name: %d %s", res.Status, res.Body)
	}
	if res := c.Do("POST", "/v1/things/alice/shadow?name=a.b", `{"state":{}}`); res.Status != 400 || res.ErrorCode() != "SHD0002" {
		t.Errorf("bad shadow name: %d %s", res.Status, res.Body)
	}
	if res := c.Do("POST", "/v1/things/alice/shadow", `{"state":{"reported":{"x":"`+strings.Repeat("y", 200<<10)+`"}}}`); res.Status != 413 || res.ErrorCode() != "SHD0005" {
		t.Errorf("huge body: %d %.200s", res.Status, res.Body)
	}
	in.none() // rejections over HTTP are answered, not published

	res = c.Do("POST", "/v1/things/alice/shadow?name=dnd", `{"state":{"reported":{"on":false}}}`)
	if res.Status != 200 {
		t.Fatalf("named: %d %s", res.Status, res.Body)
	}
	c.Do("POST", "/v1/things/bob/shadow?name=dnd", `{"state":{"reported":{"on":true}}}`)
	c.Do("POST", "/v1/things/bob/shadow?name=calls", `{"state":{"reported":{"n":1}}}`)

	res = c.Do("GET", "/v1/things/alice/shadow", nil)
	var doc struct {
		State    map[string]map[string]any
		Metadata map[string]any
		Version  int
	}
	res.JSON(&doc)
	if res.Status != 200 || doc.Version != 1 || doc.State["desired"]["state"] != "calling" || doc.State["delta"]["state"] != "calling" {
		t.Fatalf("get: %d %s", res.Status, res.Body)
	}

	var list struct {
		Results   []string
		NextToken string
	}
	c.Do("GET", "/v1/things/bob/shadows", nil).JSON(&list)
	if js(list.Results) != `["calls","dnd"]` || list.NextToken != "" {
		t.Fatalf("named shadows: %+v", list)
	}
	c.Do("GET", "/v1/things/bob/shadows?pageSize=1", nil).JSON(&list)
	if js(list.Results) != `["calls"]` || list.NextToken != "calls" {
		t.Fatalf("page 1: %+v", list)
	}
	list.NextToken = ""
	c.Do("GET", "/v1/things/bob/shadows?pageSize=1&nextToken=calls", nil).JSON(&list)
	if js(list.Results) != `["dnd"]` || list.NextToken != "" {
		t.Fatalf("page 2: %+v", list)
	}
	c.Do("GET", "/v1/things/nobody/shadows", nil).JSON(&list)
	if list.Results == nil || len(list.Results) != 0 {
		t.Fatalf("no shadows: %+v", list)
	}

	res = c.Do("GET", "/v1/things", nil)
	if want := `{"things":[{"thingName":"alice","classicShadow":true,"namedShadows":["dnd"]},{"thingName":"bob","classicShadow":false,"namedShadows":["calls","dnd"]}]}`; strings.TrimSpace(string(res.Body)) != want {
		t.Fatalf("things: %s", res.Body)
	}

	res = c.Do("DELETE", "/v1/things/alice/shadow", nil)
	if res.Status != 200 || !strings.Contains(string(res.Body), `"version":1`) {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	if m := in.next("$aws.things.alice.shadow.delete.accepted"); m["version"] != 1.0 {
		t.Fatalf("topic delete: %v", m)
	}
	if res := c.Do("DELETE", "/v1/things/alice/shadow", nil); res.Status != 404 {
		t.Fatalf("delete again: %d %s", res.Status, res.Body)
	}
	res = c.Do("GET", "/v1/things", nil)
	if !strings.Contains(string(res.Body), `{"thingName":"alice","classicShadow":false,"namedShadows":["dnd"]}`) {
		t.Fatalf("things after delete: %s", res.Body)
	}
	if res := ts.Anon().Do("GET", "/v1/things", nil); res.Status != 401 {
		t.Fatalf("anonymous: %d", res.Status)
	}
}

// The console's live "shadow" topic pushes each change of a thing's shadows.
func TestLiveTopic(t *testing.T) {
	ts := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(ts.URL, "http://", "ws://", 1)+"/v1/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	send := func(m map[string]any) {
		b, _ := json.Marshal(m)
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(typ string) map[string]any {
		t.Helper()
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		if m["type"] != typ {
			t.Fatalf("got %s; want a %s message", b, typ)
		}
		return m
	}
	send(map[string]any{"type": "auth", "apiKey": ts.Root.APIKey, "token": ts.Root.Token})
	recv("ready")
	send(map[string]any{"type": "subscribe", "id": "s", "topic": "shadow", "thingName": "alice"})
	recv("subscribed")
	ts.Root.Do("POST", "/v1/things/bob/shadow", `{"state":{"reported":{"x":1}}}`) // another thing
	ts.Root.Do("POST", "/v1/things/alice/shadow?name=dnd", `{"state":{"desired":{"on":true}},"clientToken":"L"}`)
	m := recv("shadow")
	docs := m["documents"].(map[string]any)
	if m["id"] != "s" || m["thingName"] != "alice" || m["shadowName"] != "dnd" || m["event"] != "updated" ||
		docs["clientToken"] != "L" || js(docs["current"].(map[string]any)["state"]) != `{"desired":{"on":true}}` {
		t.Fatalf("push: %v", m)
	}
	ts.Root.Do("DELETE", "/v1/things/alice/shadow?name=dnd", nil)
	m = recv("shadow")
	if m["event"] != "deleted" || m["documents"].(map[string]any)["current"] != nil {
		t.Fatalf("delete push: %v", m)
	}
}
