package shadow

import (
	"encoding/json"
	"strings"
	"testing"
)

// js decodes a JSON literal the way stored documents are (numbers kept).
func js(t *testing.T, s string) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	v, err := decodeJSON([]byte(s))
	if err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	m, _ := v.(map[string]any)
	return m
}

// canon re-encodes JSON so documents compare as text.
func canon(t *testing.T, v any) string {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		m, err := decodeJSON([]byte(x))
		if err != nil {
			t.Fatalf("bad JSON %s: %v", x, err)
		}
		b = marshal(m)
	case []byte:
		m, err := decodeJSON(x)
		if err != nil {
			t.Fatalf("bad JSON %s: %v", x, err)
		}
		b = marshal(m)
	default:
		raw := marshal(v)
		m, _ := decodeJSON(raw)
		b = marshal(m)
	}
	return string(b)
}

func TestParseUpdateRejects(t *testing.T) {
	deep := `{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}` // 7 levels
	for _, tc := range []struct {
		name, body string
		code       int
		msg        string
		token      string
	}{
		{"not JSON", `{"state":`, 400, "Invalid JSON", ""},
		{"trailing data", `{"state":{}} {}`, 400, "Invalid JSON", ""},
		{"not an object", `[1,2]`, 400, "Invalid JSON", ""},
		{"no state", `{"clientToken":"t1"}`, 400, "Missing required node: state", "t1"},
		{"null state", `{"state":null}`, 400, "Missing required node: state", ""},
		{"state not object", `{"state":[1]}`, 400, "State node must be an object", ""},
		{"desired not object", `{"state":{"desired":"on"},"clientToken":"x"}`, 400, "Desired node must be an object", "x"},
		{"reported not object", `{"state":{"reported":5}}`, 400, "Reported node must be an object", ""},
		{"unknown state node", `{"state":{"delta":{"a":1}}}`, 400, "State contains an invalid node", ""},
		{"version a string", `{"state":{},"version":"3"}`, 400, "Invalid version", ""},
		{"version a fraction", `{"state":{},"version":1.5}`, 400, "Invalid version", ""},
		{"clientToken a number", `{"state":{},"clientToken":7}`, 400, "Invalid clientToken", ""},
		{"clientToken too long", `{"state":{},"clientToken":"` + strings.Repeat("x", 65) + `"}`, 400, "Invalid clientToken", ""},
		{"too deep", `{"state":{"desired":` + deep + `},"clientToken":"d"}`, 400, "JSON contains too many levels of nesting; maximum is 6", "d"},
		{"null in an array", `{"state":{"reported":{"a":[1,null]}}}`, 400, "State contains an invalid node", ""},
		{"null in a nested array", `{"state":{"reported":{"a":[[null]]}}}`, 400, "State contains an invalid node", ""},
		{"not UTF-8", "{\"state\":{\"reported\":{\"a\":\"\xff\"}}}", 415, "Unsupported documented encoding; supported encoding is UTF-8", ""},
		{"too large", `{"state":{"reported":{"a":"` + strings.Repeat("x", DefaultMaxRequestBytes) + `"}}}`, 413, "The payload exceeds the maximum size allowed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, e := ParseUpdate([]byte(tc.body), Limits{})
			if e == nil {
				t.Fatalf("accepted %s", tc.body)
			}
			if e.Code != tc.code || e.Message != tc.msg || e.ClientToken != tc.token {
				t.Fatalf("got %d %q token %q; want %d %q token %q", e.Code, e.Message, e.ClientToken, tc.code, tc.msg, tc.token)
			}
		})
	}
}

func TestParseUpdateAccepts(t *testing.T) {
	six := `{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}` // 6 levels: the limit
	for _, tc := range []struct{ name, body string }{
		{"desired", `{"state":{"desired":{"color":"red"}}}`},
		{"both, token and version", `{"state":{"desired":{"a":1},"reported":{"a":2}},"clientToken":"abc","version":3}`},
		{"empty state", `{"state":{}}`},
		{"section null", `{"state":{"desired":null}}`},
		{"six levels", `{"state":{"reported":` + six + `}}`},
		{"other top-level keys ignored", `{"state":{"reported":{"a":1}},"metadata":{"x":1},"timestamp":5}`},
		{"arrays of objects", `{"state":{"reported":{"a":[{"b":1},{"c":[1,2]}]}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, e := ParseUpdate([]byte(tc.body), Limits{}); e != nil {
				t.Fatalf("rejected: %v", e)
			}
		})
	}
	req, _ := ParseUpdate([]byte(`{"state":{"desired":null,"reported":{"x":1}},"version":-2,"clientToken":"t"}`), Limits{})
	if !req.ClearDesired || req.Desired != nil || req.Reported == nil || *req.Version != -2 || req.ClientToken != "t" {
		t.Fatalf("parsed %+v", req)
	}
	// A custom depth limit.
	if _, e := ParseUpdate([]byte(`{"state":{"reported":{"a":{"b":1}}}}`), Limits{MaxDepth: 1}); e == nil || e.Code != 400 {
		t.Fatalf("depth 2 with a limit of 1: %v", e)
	}
}

// The merge rules of AWS's update: a partial update, objects merged
// recursively, null deleting a key (or a whole section), arrays replaced.
func TestApply(t *testing.T) {
	const t2 = 200
	for _, tc := range []struct {
		name          string
		cur           string // stored document ("" = none)
		req           string
		state, meta   string // expected state and metadata
		versionBefore int64
	}{
		{name: "new document",
			req:   `{"state":{"desired":{"color":"red","lights":{"on":true}}}}`,
			state: `{"desired":{"color":"red","lights":{"on":true}}}`,
			meta:  `{"desired":{"color":{"timestamp":200},"lights":{"on":{"timestamp":200}}}}`},
		{name: "only named fields change",
			cur:   `{"state":{"desired":{"a":1,"b":2},"reported":{"a":1}},"metadata":{"desired":{"a":{"timestamp":100},"b":{"timestamp":100}},"reported":{"a":{"timestamp":100}}},"version":4}`,
			req:   `{"state":{"desired":{"b":3}}}`,
			state: `{"desired":{"a":1,"b":3},"reported":{"a":1}}`,
			meta:  `{"desired":{"a":{"timestamp":100},"b":{"timestamp":200}},"reported":{"a":{"timestamp":100}}}`},
		{name: "nested merge",
			cur:   `{"state":{"reported":{"lights":{"color":{"r":1,"g":2,"b":3}}}},"metadata":{"reported":{"lights":{"color":{"r":{"timestamp":100},"g":{"timestamp":100},"b":{"timestamp":100}}}}},"version":1}`,
			req:   `{"state":{"reported":{"lights":{"color":{"g":9}}}}}`,
			state: `{"reported":{"lights":{"color":{"r":1,"g":9,"b":3}}}}`,
			meta:  `{"reported":{"lights":{"color":{"r":{"timestamp":100},"g":{"timestamp":200},"b":{"timestamp":100}}}}}`},
		{name: "null deletes a key",
			cur:   `{"state":{"reported":{"a":1,"b":{"c":2,"d":3}}},"metadata":{"reported":{"a":{"timestamp":100},"b":{"c":{"timestamp":100},"d":{"timestamp":100}}}},"version":1}`,
			req:   `{"state":{"reported":{"a":null,"b":{"c":null}}}}`,
			state: `{"reported":{"b":{"d":3}}}`,
			meta:  `{"reported":{"b":{"d":{"timestamp":100}}}}`},
		{name: "null deletes a section",
			cur:   `{"state":{"desired":{"a":1},"reported":{"a":2}},"metadata":{"desired":{"a":{"timestamp":100}},"reported":{"a":{"timestamp":100}}},"version":1}`,
			req:   `{"state":{"desired":null}}`,
			state: `{"reported":{"a":2}}`,
			meta:  `{"reported":{"a":{"timestamp":100}}}`},
		{name: "deleting every key leaves no section",
			cur:   `{"state":{"desired":{"a":1}},"metadata":{"desired":{"a":{"timestamp":100}}},"version":1}`,
			req:   `{"state":{"desired":{"a":null}}}`,
			state: `{}`, meta: `{}`},
		{name: "arrays are replaced whole",
			cur:   `{"state":{"reported":{"colors":["RED","GREEN","BLUE"]}},"metadata":{"reported":{"colors":{"timestamp":100}}},"version":1}`,
			req:   `{"state":{"reported":{"colors":["RED"]}}}`,
			state: `{"reported":{"colors":["RED"]}}`,
			meta:  `{"reported":{"colors":{"timestamp":200}}}`},
		{name: "a value becomes an object",
			cur:   `{"state":{"reported":{"a":5}},"metadata":{"reported":{"a":{"timestamp":100}}},"version":1}`,
			req:   `{"state":{"reported":{"a":{"x":1}}}}`,
			state: `{"reported":{"a":{"x":1}}}`,
			meta:  `{"reported":{"a":{"x":{"timestamp":200}}}}`},
		{name: "an object becomes a value",
			cur:   `{"state":{"reported":{"a":{"x":1}}},"metadata":{"reported":{"a":{"x":{"timestamp":100}}}},"version":1}`,
			req:   `{"state":{"reported":{"a":"flat"}}}`,
			state: `{"reported":{"a":"flat"}}`,
			meta:  `{"reported":{"a":{"timestamp":200}}}`},
		{name: "a key named timestamp",
			req:   `{"state":{"reported":{"timestamp":5,"o":{"timestamp":6}}}}`,
			state: `{"reported":{"timestamp":5,"o":{"timestamp":6}}}`,
			meta:  `{"reported":{"timestamp":{"timestamp":200},"o":{"timestamp":{"timestamp":200}}}}`},
		{name: "a tombstone starts an empty document",
			cur:   `{"state":{},"metadata":{},"version":7,"deleted":150}`,
			req:   `{"state":{"reported":{"a":1}}}`,
			state: `{"reported":{"a":1}}`,
			meta:  `{"reported":{"a":{"timestamp":200}}}`},
		{name: "empty state changes nothing",
			cur:   `{"state":{"reported":{"a":1}},"metadata":{"reported":{"a":{"timestamp":100}}},"version":2}`,
			req:   `{"state":{}}`,
			state: `{"reported":{"a":1}}`,
			meta:  `{"reported":{"a":{"timestamp":100}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cur *Document
			if tc.cur != "" {
				var err error
				if cur, err = decodeDocument([]byte(tc.cur)); err != nil {
					t.Fatal(err)
				}
			}
			before := ""
			if cur != nil {
				before = canon(t, cur)
			}
			req, e := ParseUpdate([]byte(tc.req), Limits{})
			if e != nil {
				t.Fatal(e)
			}
			next := Apply(cur, req, 9, t2)
			if got, want := canon(t, next.State), canon(t, tc.state); got != want {
				t.Errorf("state\n got %s\nwant %s", got, want)
			}
			if got, want := canon(t, next.Metadata), canon(t, tc.meta); got != want {
				t.Errorf("metadata\n got %s\nwant %s", got, want)
			}
			if next.Version != 9 || next.Timestamp != t2 || next.Deleted != 0 {
				t.Errorf("version %d timestamp %d deleted %d", next.Version, next.Timestamp, next.Deleted)
			}
			if cur != nil && canon(t, cur) != before {
				t.Errorf("Apply changed the current document")
			}
		})
	}
}

func TestDelta(t *testing.T) {
	for _, tc := range []struct{ name, desired, reported, delta string }{
		{"missing from reported", `{"a":1,"b":2}`, `{"a":1}`, `{"b":2}`},
		{"only in reported", `{"a":1}`, `{"a":1,"z":9}`, `{}`},
		{"equal", `{"a":"x","b":true,"c":null}`, `{"a":"x","b":true,"c":null}`, `{}`},
		{"different", `{"a":"on"}`, `{"a":"off"}`, `{"a":"on"}`},
		{"nested path to the differing leaf", `{"lights":{"color":{"r":1,"g":2,"b":3}}}`, `{"lights":{"color":{"r":1,"g":5,"b":3}}}`, `{"lights":{"color":{"g":2}}}`},
		{"a missing nested object", `{"lights":{"on":true}}`, `{}`, `{"lights":{"on":true}}`},
		{"arrays compared as values", `{"a":[1,2],"b":[1,2]}`, `{"a":[1,2],"b":[2,1]}`, `{"b":[1,2]}`},
		{"numbers by value", `{"a":1,"b":1.5}`, `{"a":1.0,"b":1.50}`, `{}`},
		{"object against a value", `{"a":{"x":1}}`, `{"a":3}`, `{"a":{"x":1}}`},
		{"type matters", `{"a":"1"}`, `{"a":1}`, `{"a":"1"}`},
		{"no desired", ``, `{"a":1}`, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Delta(js(t, tc.desired), js(t, tc.reported))
			if canon(t, got) != canon(t, tc.delta) {
				t.Fatalf("delta %s; want %s", canon(t, got), tc.delta)
			}
		})
	}
}

// The response documents of an update, a delta, a get and a rejection, in
// the shapes of the AWS developer guide.
func TestResponseDocuments(t *testing.T) {
	cur, _ := decodeDocument([]byte(`{"state":{"desired":{"color":"red","lights":{"r":1,"g":2}},"reported":{"color":"red","lights":{"r":1,"g":0}}},"metadata":{"desired":{"color":{"timestamp":100},"lights":{"r":{"timestamp":100},"g":{"timestamp":150}}},"reported":{"color":{"timestamp":100},"lights":{"r":{"timestamp":100},"g":{"timestamp":100}}}},"version":5,"timestamp":150}`))
	req, _ := ParseUpdate([]byte(`{"state":{"desired":{"color":"blue","gone":null}},"clientToken":"c1","version":5}`), Limits{})
	next := Apply(cur, req, 6, 200)

	acc := AcceptedOf(req, 6, 200)
	want := `{"state":{"desired":{"color":"blue","gone":null}},"metadata":{"desired":{"color":{"timestamp":200},"gone":{"timestamp":200}}},"version":6,"timestamp":200,"clientToken":"c1"}`
	if canon(t, acc) != canon(t, want) {
		t.Errorf("accepted\n got %s\nwant %s", canon(t, acc), want)
	}

	d := DeltaOf(next, 200, "c1")
	want = `{"state":{"color":"blue","lights":{"g":2}},"metadata":{"color":{"timestamp":200},"lights":{"g":{"timestamp":150}}},"version":6,"timestamp":200,"clientToken":"c1"}`
	if d == nil || canon(t, d) != canon(t, want) {
		t.Errorf("delta\n got %s\nwant %s", canon(t, d), want)
	}

	g := GetOf(next, 300, "")
	want = `{"state":{"desired":{"color":"blue","lights":{"r":1,"g":2}},"reported":{"color":"red","lights":{"r":1,"g":0}},"delta":{"color":"blue","lights":{"g":2}}},
		"metadata":{"desired":{"color":{"timestamp":200},"lights":{"r":{"timestamp":100},"g":{"timestamp":150}}},"reported":{"color":{"timestamp":100},"lights":{"r":{"timestamp":100},"g":{"timestamp":100}}}},"version":6,"timestamp":300}`
	if canon(t, g) != canon(t, want) {
		t.Errorf("get\n got %s\nwant %s", canon(t, g), want)
	}

	docs := &Documents{Previous: SnapshotOf(cur), Current: SnapshotOf(next), Timestamp: 200, ClientToken: "c1"}
	var dm struct {
		Previous, Current map[string]any
		Timestamp         int64
		ClientToken       string
	}
	if err := json.Unmarshal(marshal(docs), &dm); err != nil {
		t.Fatal(err)
	}
	if dm.Previous["version"].(float64) != 5 || dm.Current["version"].(float64) != 6 || dm.Timestamp != 200 || dm.ClientToken != "c1" {
		t.Errorf("documents: %+v", dm)
	}
	if _, ok := dm.Current["metadata"].(map[string]any)["desired"]; !ok {
		t.Errorf("documents: current has no desired metadata: %v", dm.Current)
	}

	// In sync: no delta document, no delta in get.
	same, _ := decodeDocument([]byte(`{"state":{"desired":{"a":1},"reported":{"a":1}},"metadata":{},"version":1}`))
	if DeltaOf(same, 1, "") != nil {
		t.Errorf("a delta for equal desired and reported")
	}
	if strings.Contains(string(marshal(GetOf(same, 1, ""))), "delta") {
		t.Errorf("get shows a delta for equal desired and reported")
	}

	r := RejectedOf(errConflict(), 7)
	r.ClientToken = "c2"
	if got := string(marshal(r)); got != `{"code":409,"message":"Version conflict","timestamp":7,"clientToken":"c2"}` {
		t.Errorf("rejected: %s", got)
	}
	if got := string(marshal(&DeleteDoc{Version: 6, Timestamp: 9})); got != `{"version":6,"timestamp":9}` {
		t.Errorf("delete accepted: %s", got)
	}
}

func TestStateSize(t *testing.T) {
	d, _ := decodeDocument([]byte(`{"state":{"desired":{"a":1},"reported":{"bb":"x"}},"metadata":{"desired":{"a":{"timestamp":1}}},"version":1}`))
	if n := StateSize(d); n != len(`{"a":1}`)+len(`{"bb":"x"}`) {
		t.Fatalf("size %d", n)
	}
	if StateSize(&Document{}) != 0 {
		t.Fatal("empty document has a size")
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		thing, name string
		ok          bool
	}{
		{"alice", "", true},
		{"arn:aws:thing-1_A", "dnd", true},
		{"a", "$package", true},
		{strings.Repeat("t", 128), strings.Repeat("s", 64), true},
		{strings.Repeat("t", 129), "", false},
		{"a", strings.Repeat("s", 65), false},
		{"", "", false},
		{"my.thing", "", false},
		{"a b", "", false},
		{"a", "x/y", false},
		{"a", "x.y", false},
	} {
		if got := checkNames(tc.thing, tc.name) == nil; got != tc.ok {
			t.Errorf("names %q %q: ok=%v, want %v", tc.thing, tc.name, got, tc.ok)
		}
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct{ op, thing, name, key string }{
		{"OP0000000001", "alice", "", "OP0000000001.alice.="},
		{"OP0000000001", "arn:x", "dnd", "OP0000000001.arn=3Ax.dnd"},
		{"OP0000000001", "a_b-c", "$pkg:1", "OP0000000001.a_b-c.=24pkg=3A1"},
	} {
		key := Key(tc.op, tc.thing, tc.name)
		if key != tc.key {
			t.Errorf("Key(%q,%q,%q) = %q; want %q", tc.op, tc.thing, tc.name, key, tc.key)
		}
		op, thing, name, ok := parseKey(key)
		if !ok || op != tc.op || thing != tc.thing || name != tc.name {
			t.Errorf("parseKey(%q) = %q %q %q %v", key, op, thing, name, ok)
		}
		op, thing, name, ok = ParseEventSubject(EventSubject(tc.op, tc.thing, tc.name))
		if !ok || op != tc.op || thing != tc.thing || name != tc.name {
			t.Errorf("ParseEventSubject: %q %q %q %v", op, thing, name, ok)
		}
	}
	for _, bad := range []string{"a.b", "a.b.c.d", "a.b=4.c", "a.b.=ZZ", "a.b=.c"} {
		if _, _, _, ok := parseKey(bad); ok {
			t.Errorf("parseKey(%q) accepted", bad)
		}
	}
}

func TestParseTopic(t *testing.T) {
	for _, tc := range []struct {
		subject string
		want    topicRequest
		ok      bool
	}{
		{"$aws.things.alice.shadow.update", topicRequest{"$aws.things.alice.shadow", "alice", "", "update"}, true},
		{"$aws.things.alice.shadow.name.dnd.get", topicRequest{"$aws.things.alice.shadow.name.dnd", "alice", "dnd", "get"}, true},
		{"$aws.things.my//thing.shadow.delete", topicRequest{"$aws.things.my//thing.shadow", "my.thing", "", "delete"}, true},
		{"$aws.things.alice.shadow.update.accepted", topicRequest{}, false},
		{"$aws.things.alice.jobs.get", topicRequest{}, false},
	} {
		got, ok := parseTopic(tc.subject)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseTopic(%q) = %+v %v", tc.subject, got, ok)
		}
	}
	if p := TopicPrefix("alice", "dnd"); p != "$aws.things.alice.shadow.name.dnd" {
		t.Errorf("TopicPrefix %q", p)
	}
}
