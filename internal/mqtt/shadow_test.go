package mqtt_test

import (
	"encoding/json"
	"testing"
	"time"
)

// A device drives its own shadow over MQTT with Paho, as the AWS IoT device
// SDKs do: get on connect, update → accepted / delta / documents, a stale
// version → rejected 409, then get again on a new connection (no "ping"
// publish needed to learn the state) — over TCP and over WebSocket.
func TestDeviceShadowOverMQTT(t *testing.T) {
	e := start(t)
	for _, broker := range []string{e.tcpURL(), e.wsURL()} {
		d := e.device()
		base := "$aws/things/" + d.id + "/shadow/"
		c := e.mustConnect(broker, d.id, d.secret)
		in := newInbox()
		if got := subscribe(t, c, base+"#", 1, in); got != 1 {
			t.Fatalf("%s: shadow subscription granted %d", broker, got)
		}
		decode := func(topic string) map[string]any {
			t.Helper()
			m := in.next(t, 10*time.Second)
			for m.Topic() != topic {
				m = in.next(t, 10*time.Second)
			}
			var v map[string]any
			if err := json.Unmarshal(m.Payload(), &v); err != nil {
				t.Fatalf("%s: %q", topic, m.Payload())
			}
			return v
		}

		// Get on connect, before any update: 404 on get/rejected.
		wait(t, c.Publish(base+"get", 1, false, `{"clientToken":"g1"}`))
		if r := decode(base + "get/rejected"); r["code"] != float64(404) || r["clientToken"] != "g1" {
			t.Fatalf("%s: get before update: %v", broker, r)
		}

		// Update: desired differs from reported → accepted, delta, documents.
		wait(t, c.Publish(base+"update", 1, false, `{"state":{"desired":{"color":"red"},"reported":{"color":"blue"}},"clientToken":"u1"}`))
		acc := decode(base + "update/accepted")
		if acc["version"] != float64(1) || acc["clientToken"] != "u1" {
			t.Fatalf("%s: accepted %v", broker, acc)
		}
		delta := decode(base + "update/delta")
		if st, _ := delta["state"].(map[string]any); st["color"] != "red" {
			t.Fatalf("%s: delta %v", broker, delta)
		}
		docs := decode(base + "update/documents")
		cur, _ := docs["current"].(map[string]any)
		prev, _ := docs["previous"].(map[string]any)
		if cur["version"] != float64(1) || prev["version"] != float64(0) {
			t.Fatalf("%s: documents %v", broker, docs)
		}

		// A stale version is refused with 409 and changes nothing.
		wait(t, c.Publish(base+"update", 1, false, `{"state":{"reported":{"color":"green"}},"version":7,"clientToken":"u2"}`))
		if r := decode(base + "update/rejected"); r["code"] != float64(409) || r["clientToken"] != "u2" {
			t.Fatalf("%s: stale version: %v", broker, r)
		}
		// The right version is accepted; reported now matches desired.
		wait(t, c.Publish(base+"update", 1, false, `{"state":{"reported":{"color":"red"}},"version":1}`))
		if acc := decode(base + "update/accepted"); acc["version"] != float64(2) {
			t.Fatalf("%s: second update %v", broker, acc)
		}
		c.Disconnect(0)

		// A new connection learns the whole state with get.
		c2 := e.mustConnect(broker, d.id, d.secret)
		in2 := newInbox()
		subscribe(t, c2, base+"get/accepted", 1, in2)
		wait(t, c2.Publish(base+"get", 1, false, `{}`))
		var got map[string]any
		if err := json.Unmarshal(in2.next(t, 10*time.Second).Payload(), &got); err != nil {
			t.Fatal(err)
		}
		st, _ := got["state"].(map[string]any)
		rep, _ := st["reported"].(map[string]any)
		if got["version"] != float64(2) || rep["color"] != "red" || st["delta"] != nil {
			t.Fatalf("%s: get after reconnect %v", broker, got)
		}
		c2.Disconnect(0)
	}
}
