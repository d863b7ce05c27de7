package harvest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/servertest"
)

type entry struct {
	Time            int64  `json:"time"`
	ContentType     string `json:"contentType"`
	Content         string `json:"content"`
	ContentEncoding string `json:"contentEncoding"`
	Category        string `json:"category"`
	ResourceID      string `json:"resourceId"`
	ResourceType    string `json:"resourceType"`
}

// device is an Inventory device in a group whose Harvest is on.
type device struct {
	ID, Secret, GroupID string
}

func mustStatus(t testing.TB, res *servertest.Response, status int) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("got %d %s, want %d", res.Status, res.Body, status)
	}
}

// newGroup creates a group with SoracomHarvest.enabled set as given.
func newGroup(t testing.TB, c *servertest.Client, harvest bool) string {
	t.Helper()
	res := c.Do("POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": harvest}}})
	mustStatus(t, res, 201)
	var g struct{ GroupID string }
	res.JSON(&g)
	return g.GroupID
}

// newDevice creates a device, in groupID unless it is empty.
func newDevice(t testing.TB, c *servertest.Client, groupID string) device {
	t.Helper()
	body := map[string]any{}
	if groupID != "" {
		body["groupId"] = groupID
	}
	res := c.Do("POST", "/v1/devices", body)
	mustStatus(t, res, 201)
	var d struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string
	}
	res.JSON(&d)
	return device{ID: d.DeviceID, Secret: d.DeviceSecret, GroupID: groupID}
}

func harvestDevice(t testing.TB, ts *servertest.TS) device {
	t.Helper()
	return newDevice(t, ts.Root, newGroup(t, ts.Root, true))
}

// publish posts a payload with the secret in the query; hdr are extra
// header name/value pairs.
func publish(ts *servertest.TS, d device, body any, hdr ...string) *servertest.Response {
	return ts.Anon().Do("POST", "/v1/devices/"+d.ID+"/publish?device_secret="+url.QueryEscape(d.Secret), body, hdr...)
}

func getEntries(t testing.TB, c *servertest.Client, path string) ([]entry, string) {
	t.Helper()
	res := c.Do("GET", path, nil)
	mustStatus(t, res, 200)
	var es []entry
	res.JSON(&es)
	return es, res.Header.Get("x-soracom-next-key")
}

// allEntries follows x-soracom-next-key over every page.
func allEntries(t testing.TB, c *servertest.Client, path string) (es []entry, pages int) {
	t.Helper()
	key := ""
	for {
		p := path
		if key != "" {
			p += "&last_evaluated_key=" + key
		}
		page, next := getEntries(t, c, p)
		es = append(es, page...)
		pages++
		if next == "" {
			return es, pages
		}
		if next != strconv.FormatInt(page[len(page)-1].Time, 10) {
			t.Fatalf("next key %s is not the last entry's time %d", next, page[len(page)-1].Time)
		}
		key = next
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
	}
}

func TestPublishAndRead(t *testing.T) {
	ts := servertest.Start(t)
	d := harvestDevice(t, ts)

	mustStatus(t, publish(ts, d, `{"temperature":20.5,"humidity":40}`, "Content-Type", "application/json"), 201)
	res := ts.Anon().Do("POST", "/v1/devices/"+d.ID+"/publish", "hello 世界", "X-Device-Secret", d.Secret, "Content-Type", "text/plain")
	mustStatus(t, res, 201)
	if len(bytes.TrimSpace(res.Body)) != 0 {
		t.Fatalf("publish answered a body: %q", res.Body)
	}
	binary := []byte{0xff, 0x00, 0xfe, 0x80}
	mustStatus(t, publish(ts, d, binary), 201) // no Content-Type

	es, next := getEntries(t, ts.Root, "/v1/data/Device/"+d.ID+"?sort=asc")
	if len(es) != 3 || next != "" {
		t.Fatalf("entries: %+v next %q", es, next)
	}
	want := []entry{
		{ContentType: "application/json", Content: `{"temperature":20.5,"humidity":40}`},
		{ContentType: "text/plain", Content: "hello 世界"},
		{ContentType: "application/octet-stream", Content: base64.StdEncoding.EncodeToString(binary), ContentEncoding: "base64"},
	}
	for i, e := range es {
		w := want[i]
		w.Time, w.ResourceID, w.ResourceType = e.Time, d.ID, "Device"
		if e != w {
			t.Errorf("entry %d: got %+v, want %+v", i, e, w)
		}
		if i > 0 && e.Time <= es[i-1].Time {
			t.Errorf("entries out of order: %d after %d", e.Time, es[i-1].Time)
		}
		if time.Since(time.UnixMilli(e.Time)) > time.Minute {
			t.Errorf("entry time %d is not now", e.Time)
		}
	}

	// Default order is newest first; the device alias answers the same.
	desc, _ := getEntries(t, ts.Root, "/v1/data/Device/"+d.ID)
	alias, _ := getEntries(t, ts.Root, "/v1/devices/"+d.ID+"/data")
	if len(desc) != 3 || desc[0] != es[2] || desc[2] != es[0] || fmt.Sprint(alias) != fmt.Sprint(desc) {
		t.Fatalf("desc %+v alias %+v", desc, alias)
	}

	// One entry by time.
	res = ts.Root.Do("GET", fmt.Sprintf("/v1/data/Device/%s/%d", d.ID, es[1].Time), nil)
	mustStatus(t, res, 200)
	var one entry
	res.JSON(&one)
	if one != es[1] {
		t.Fatalf("getDataEntry: %+v", one)
	}

	// The resource is listed with the JSON entry's attribute names (the
	// newer non-JSON entries leave them alone).
	res = ts.Root.Do("GET", "/v1/data/resources", nil)
	mustStatus(t, res, 200)
	var rs []harvest.DataResource
	res.JSON(&rs)
	if len(rs) != 1 || rs[0].ResourceType != "Device" || rs[0].ResourceID != d.ID || rs[0].LastModifiedTime != es[2].Time ||
		fmt.Sprint(rs[0].AttributeNames) != "[humidity temperature]" {
		t.Fatalf("resources: %s", res.Body)
	}
}

func TestPublishAuth(t *testing.T) {
	ts := servertest.Start(t)
	d := harvestDevice(t, ts)
	other := harvestDevice(t, ts)
	anon := ts.Anon()
	path := "/v1/devices/" + d.ID + "/publish"

	cases := []struct {
		name   string
		path   string
		hdr    []string
		status int
		code   string
	}{
		{"query secret", path + "?device_secret=" + url.QueryEscape(d.Secret), nil, 201, ""},
		{"header secret", path, []string{"X-Device-Secret", d.Secret}, 201, ""},
		{"missing secret", path, nil, 401, "DEV0001"},
		{"empty query secret", path + "?device_secret=", nil, 401, "DEV0001"},
		{"wrong secret", path + "?device_secret=nope", nil, 403, "DEV0001"},
		{"wrong header secret", path, []string{"X-Device-Secret", "nope"}, 403, "DEV0001"},
		{"another device's secret", path, []string{"X-Device-Secret", other.Secret}, 403, "DEV0001"},
		{"unknown device", "/v1/devices/d-unknown/publish", []string{"X-Device-Secret", d.Secret}, 403, "DEV0001"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := anon.Do("POST", c.path, "x", c.hdr...)
			if res.Status != c.status || res.ErrorCode() != c.code {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Body, c.status, c.code)
			}
		})
	}

	// A new secret replaces the old one.
	res := ts.Root.Do("POST", "/v1/devices/"+d.ID+"/secret", nil)
	mustStatus(t, res, 200)
	var s struct{ DeviceSecret string }
	res.JSON(&s)
	if res := publish(ts, d, "old"); res.Status != 403 || res.ErrorCode() != "DEV0001" {
		t.Fatalf("old secret: %d %s", res.Status, res.Body)
	}
	d.Secret = s.DeviceSecret
	mustStatus(t, publish(ts, d, "new"), 201)

	es, _ := getEntries(t, ts.Root, "/v1/data/Device/"+d.ID+"?sort=asc")
	if len(es) != 3 || es[2].Content != "new" {
		t.Fatalf("stored: %+v", es)
	}
}

func TestPublishRejected(t *testing.T) {
	const limit = 1024
	ts := servertest.Start(t, func(c *config.Config) { c.MaxPublishBytes = limit })
	d := harvestDevice(t, ts)
	noGroup := newDevice(t, ts.Root, "")
	off := newDevice(t, ts.Root, newGroup(t, ts.Root, false))
	// A group whose SoracomHarvest namespace lacks "enabled".
	res := ts.Root.Do("POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"customTimestamp": 1}}})
	mustStatus(t, res, 201)
	var g struct{ GroupID string }
	res.JSON(&g)
	unset := newDevice(t, ts.Root, g.GroupID)

	cases := []struct {
		name   string
		dev    device
		body   any
		hdr    []string
		status int
		code   string
	}{
		{"device without group", noGroup, "x", nil, 400, "HRV0001"},
		{"group with Harvest off", off, "x", nil, 400, "HRV0001"},
		{"group without the parameter", unset, "x", nil, 400, "HRV0001"},
		{"one byte too many", d, bytes.Repeat([]byte("a"), limit+1), nil, 413, "LRG0001"},
		{"far too many", d, bytes.Repeat([]byte("a"), 1<<20), nil, 413, "LRG0001"},
		{"timestamp not a number", d, "x", []string{"X-Soracom-Timestamp", "yesterday"}, 400, "BAD0001"},
		{"timestamp negative", d, "x", []string{"X-Soracom-Timestamp", "-1"}, 400, "BAD0001"},
		{"timestamp in seconds with a fraction", d, "x", []string{"X-Soracom-Timestamp", "1700000000.5"}, 400, "BAD0001"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := publish(ts, c.dev, c.body, c.hdr...)
			if res.Status != c.status || res.ErrorCode() != c.code {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Body, c.status, c.code)
			}
		})
	}
	// Exactly the limit is accepted.
	mustStatus(t, publish(ts, d, bytes.Repeat([]byte("b"), limit)), 201)

	// Nothing rejected was stored, for any device.
	var n int
	if err := ts.DB.QueryRow(`SELECT COUNT(*) FROM data_entries`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("stored entries: %d %v", n, err)
	}
	// An oversized chunked body (no Content-Length) is refused too.
	req, _ := http.NewRequest("POST", ts.URL+"/v1/devices/"+d.ID+"/publish", io.MultiReader(bytes.NewReader(make([]byte, limit)), bytes.NewReader([]byte("zz"))))
	req.Header.Set("X-Device-Secret", d.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked oversize: %d", resp.StatusCode)
	}
	if err := ts.DB.QueryRow(`SELECT COUNT(*) FROM data_entries`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("stored entries after chunked oversize: %d %v", n, err)
	}
}

func TestTimestampsAndCollisions(t *testing.T) {
	ts := servertest.Start(t)
	d := harvestDevice(t, ts)
	const t0 = 1700000000000
	ts0 := strconv.Itoa(t0)

	mustStatus(t, publish(ts, d, "first", "X-Soracom-Timestamp", ts0), 201)
	mustStatus(t, publish(ts, d, "second", "X-SORACOM-TIMESTAMP", ts0), 201)
	// t0+2 is taken before a third publish at t0 arrives: it moves past it.
	mustStatus(t, publish(ts, d, "at t0+2", "X-Soracom-Timestamp", strconv.Itoa(t0+2)), 201)
	mustStatus(t, publish(ts, d, "third", "X-Soracom-Timestamp", ts0), 201)

	es, _ := getEntries(t, ts.Root, "/v1/data/Device/"+d.ID+"?sort=asc")
	got := ""
	for _, e := range es {
		got += fmt.Sprintf("%d=%s ", e.Time-t0, e.Content)
	}
	if got != "0=first 1=second 2=at t0+2 3=third " {
		t.Fatalf("stored: %s", got)
	}

	// Put (the Go API flows use) reports where the entry went.
	ctx := context.Background()
	at, err := ts.Data.Put(ctx, ts.OperatorID, harvest.ResourceDevice, d.ID, "text/plain", []byte("put"), time.UnixMilli(t0))
	if err != nil || at.UnixMilli() != t0+4 {
		t.Fatalf("Put: %v %v", at, err)
	}
	at, err = ts.Data.Put(ctx, ts.OperatorID, harvest.ResourceSim, "sim-1", "", []byte("sim data"), time.Time{})
	if err != nil || time.Since(at) > time.Minute {
		t.Fatalf("Put now: %v %v", at, err)
	}
	sims, _ := getEntries(t, ts.Root, "/v1/sims/sim-1/data")
	if len(sims) != 1 || sims[0].Content != "sim data" || sims[0].ContentType != "application/octet-stream" || sims[0].Time != at.UnixMilli() {
		t.Fatalf("SIM data: %+v", sims)
	}
	if _, err := ts.Data.Put(ctx, ts.OperatorID, "Bogus", "x", "", nil, time.Time{}); err == nil {
		t.Fatal("Put accepted a bad resource type")
	}
}

func TestQueryAndPagination(t *testing.T) {
	ts := servertest.Start(t)
	d := harvestDevice(t, ts)
	const n, t0, step = 23, 1600000000000, 10
	for i := 0; i < n; i++ {
		mustStatus(t, publish(ts, d, strconv.Itoa(i), "X-Soracom-Timestamp", strconv.Itoa(t0+i*step)), 201)
	}
	base := "/v1/data/Device/" + d.ID
	for _, c := range []struct {
		query string
		want  []int // indexes in order
		pages int
	}{
		{"?sort=asc&limit=5", seq(0, n-1), 5},
		{"?sort=desc&limit=5", seq(n-1, 0), 5},
		{"?limit=1", seq(n-1, 0), n},
		{"?sort=asc&limit=23", seq(0, n-1), 1},
		{"?sort=asc&limit=1000", seq(0, n-1), 1},
		{fmt.Sprintf("?sort=asc&limit=2&from=%d&to=%d", t0+5*step, t0+10*step), seq(5, 10), 3},
		{fmt.Sprintf("?sort=desc&limit=4&from=%d&to=%d", t0+5*step+1, t0+10*step-1), seq(9, 6), 1},
		{fmt.Sprintf("?from=%d", t0+n*step), nil, 1},
		{fmt.Sprintf("?to=%d", t0-1), nil, 1},
	} {
		t.Run(c.query, func(t *testing.T) {
			es, pages := allEntries(t, ts.Root, base+c.query)
			got := []int{}
			for _, e := range es {
				i, _ := strconv.Atoi(e.Content)
				if e.Time != int64(t0+i*step) {
					t.Fatalf("entry %d at %d", i, e.Time)
				}
				got = append(got, i)
			}
			if fmt.Sprint(got) != fmt.Sprint(orEmpty(c.want)) || pages != c.pages {
				t.Fatalf("got %v in %d pages, want %v in %d", got, pages, c.want, c.pages)
			}
		})
	}
	// Default limit is 10.
	if es, next := getEntries(t, ts.Root, base); len(es) != 10 || next == "" {
		t.Fatalf("default page: %d entries, next %q", len(es), next)
	}

	for _, c := range []struct {
		path, code string
		status     int
	}{
		{base + "?limit=0", "BAD0001", 400},
		{base + "?limit=1001", "BAD0001", 400},
		{base + "?sort=sideways", "BAD0001", 400},
		{base + "?from=x", "BAD0001", 400},
		{base + "?last_evaluated_key=x", "BAD0001", 400},
		{"/v1/data/Bogus/x", "BAD0002", 400},
		{"/v1/data/Device/x/notatime", "BAD0001", 400},
		{"/v1/data/Device/" + d.ID + "/1", "NTF0001", 404},
		{"/v1/data/resources?resource_type=Bogus", "BAD0002", 400},
		{"/v1/data/resources?last_evaluated_key=nokey", "BAD0001", 400},
	} {
		res := ts.Root.Do("GET", c.path, nil)
		if res.Status != c.status || res.ErrorCode() != c.code {
			t.Errorf("GET %s: %d %s, want %d %s", c.path, res.Status, res.Body, c.status, c.code)
		}
	}
	if res := ts.Anon().Do("GET", base, nil); res.Status != 401 {
		t.Fatalf("anonymous read: %d", res.Status)
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; ; {
		out = append(out, i)
		if i == to {
			return out
		}
		if from < to {
			i++
		} else {
			i--
		}
	}
}

func orEmpty(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

func TestDeleteEntryAndResources(t *testing.T) {
	ts := servertest.Start(t)
	ctx := context.Background()
	for i, id := range []string{"s-c", "s-a", "s-b"} {
		if _, err := ts.Data.Put(ctx, ts.OperatorID, harvest.ResourceSim, id, "application/json", []byte(fmt.Sprintf(`{"k%d":1}`, i)), time.UnixMilli(1000)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.Data.Put(ctx, ts.OperatorID, harvest.ResourceSoraCam, "cam", "text/plain", []byte("x"), time.UnixMilli(2000)); err != nil {
		t.Fatal(err)
	}

	path := "/v1/data/Sim/s-a/1000"
	mustStatus(t, ts.Root.Do("GET", path, nil), 200)
	mustStatus(t, ts.Root.Do("DELETE", path, nil), 204)
	mustStatus(t, ts.Root.Do("GET", path, nil), 404)
	if res := ts.Root.Do("DELETE", path, nil); res.Status != 404 || res.ErrorCode() != "NTF0001" {
		t.Fatalf("second delete: %d %s", res.Status, res.Body)
	}
	if es, _ := getEntries(t, ts.Root, "/v1/data/Sim/s-b"); len(es) != 1 {
		t.Fatalf("a neighbour went too: %+v", es)
	}

	// Resources page by resourceType/resourceId.
	var all []harvest.DataResource
	key, pages := "", 0
	for {
		p := "/v1/data/resources?limit=2"
		if key != "" {
			p += "&last_evaluated_key=" + url.QueryEscape(key)
		}
		res := ts.Root.Do("GET", p, nil)
		mustStatus(t, res, 200)
		var page []harvest.DataResource
		res.JSON(&page)
		all = append(all, page...)
		pages++
		if key = res.Header.Get("x-soracom-next-key"); key == "" {
			break
		}
	}
	got := ""
	for _, r := range all {
		got += fmt.Sprintf("%s/%s@%d%v ", r.ResourceType, r.ResourceID, r.LastModifiedTime, r.AttributeNames)
	}
	if got != "Sim/s-a@1000[k1] Sim/s-b@1000[k2] Sim/s-c@1000[k0] SoraCam/cam@2000[] " || pages != 2 {
		t.Fatalf("resources in %d pages: %s", pages, got)
	}
	res := ts.Root.Do("GET", "/v1/data/resources?resource_type=SoraCam", nil)
	mustStatus(t, res, 200)
	var cams []harvest.DataResource
	res.JSON(&cams)
	if len(cams) != 1 || cams[0].ResourceID != "cam" {
		t.Fatalf("filtered resources: %s", res.Body)
	}
}

func TestOperatorScope(t *testing.T) {
	ts := servertest.Start(t)
	ctx := context.Background()
	const other = "OP0000000002"
	if _, err := ts.DB.ExecContext(ctx, `INSERT INTO operators (operator_id, email, created_at) VALUES ($1, 'other@example.com', 0)`, other); err != nil {
		t.Fatal(err)
	}
	id, secret, err := ts.Auth.GenerateAuthKey(ctx, other, "")
	if err != nil {
		t.Fatal(err)
	}
	c2 := ts.LoginKey(id, secret)
	d := harvestDevice(t, ts)
	mustStatus(t, publish(ts, d, "mine", "X-Soracom-Timestamp", "5000"), 201)

	if es, _ := getEntries(t, c2, "/v1/data/Device/"+d.ID); len(es) != 0 {
		t.Fatalf("another operator reads the data: %+v", es)
	}
	mustStatus(t, c2.Do("GET", "/v1/data/Device/"+d.ID+"/5000", nil), 404)
	mustStatus(t, c2.Do("DELETE", "/v1/data/Device/"+d.ID+"/5000", nil), 404)
	if res := c2.Do("GET", "/v1/data/resources", nil); string(bytes.TrimSpace(res.Body)) != "[]" {
		t.Fatalf("another operator lists resources: %s", res.Body)
	}
	mustStatus(t, ts.Root.Do("GET", "/v1/data/Device/"+d.ID+"/5000", nil), 200)
}

func TestAcceptedDataSurvivesRestart(t *testing.T) {
	ts := servertest.Start(t)
	d := harvestDevice(t, ts)
	for i := 0; i < 20; i++ {
		mustStatus(t, publish(ts, d, strconv.Itoa(i)), 201)
	}
	ts.Restart()
	es, _ := allEntries(t, ts.Root, "/v1/data/Device/"+d.ID+"?sort=asc&limit=100")
	if len(es) != 20 {
		t.Fatalf("after restart: %d entries", len(es))
	}
	for i, e := range es {
		if e.Content != strconv.Itoa(i) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	// And the device still publishes.
	mustStatus(t, publish(ts, d, "after"), 201)
}

// TestConcurrentPublishes sends 8×50 publishes at once, all with the same
// timestamp, and expects every one stored at its own millisecond.
func TestConcurrentPublishes(t *testing.T) {
	ts := servertest.Start(t)
	const workers, each, t0 = 8, 50, 1650000000000
	devs := []device{harvestDevice(t, ts), harvestDevice(t, ts)}
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := devs[w%len(devs)]
			for i := 0; i < each; i++ {
				req, _ := http.NewRequest("POST", ts.URL+"/v1/devices/"+d.ID+"/publish", bytes.NewReader([]byte(fmt.Sprintf("%d-%d", w, i))))
				req.Header.Set("X-Device-Secret", d.Secret)
				req.Header.Set("X-Soracom-Timestamp", strconv.Itoa(t0))
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					errs <- fmt.Errorf("publish %d-%d: %d", w, i, resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var contents []string
	for _, d := range devs {
		es, _ := allEntries(t, ts.Root, "/v1/data/Device/"+d.ID+"?sort=asc&limit=1000")
		for i, e := range es {
			if e.Time != int64(t0+i) {
				t.Fatalf("device %s entry %d at %d: times must be t0, t0+1, …", d.ID, i, e.Time)
			}
			contents = append(contents, e.Content)
		}
	}
	var want []string
	for w := 0; w < workers; w++ {
		for i := 0; i < each; i++ {
			want = append(want, fmt.Sprintf("%d-%d", w, i))
		}
	}
	sort.Strings(contents)
	sort.Strings(want)
	if fmt.Sprint(contents) != fmt.Sprint(want) {
		t.Fatalf("stored %d entries, want %d distinct ones", len(contents), len(want))
	}
	waitOutbox(t, ts, 0) // all relayed
	if p := metric(t, ts, "nagare_harvest_bus_published_total"); p != workers*each {
		t.Fatalf("bus published %v entries, want %d", p, workers*each)
	}
}

func TestBusReceivesEntries(t *testing.T) {
	ts := servertest.Start(t)
	d := harvestDevice(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	mustStatus(t, publish(ts, d, `{"a":1}`, "Content-Type", "application/json", "X-Soracom-Timestamp", "1000"), 201)
	mustStatus(t, publish(ts, d, []byte{0xff}, "X-Soracom-Timestamp", "1000"), 201)

	cons, err := ts.Bus.JS.OrderedConsumer(ctx, harvest.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{harvest.Subject(harvest.ResourceDevice, d.ID)},
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []entry
	for msg := range batch.Messages() {
		var e entry
		if err := json.Unmarshal(msg.Data(), &e); err != nil {
			t.Fatal(err)
		}
		if id := msg.Headers().Get("Nats-Msg-Id"); id != fmt.Sprintf("Device/%s/%d", d.ID, e.Time) {
			t.Errorf("Nats-Msg-Id %q", id)
		}
		if op := msg.Headers().Get(harvest.OperatorHeader); op != ts.OperatorID {
			t.Errorf("operator header %q", op)
		}
		if msg.Subject() != "harvest.data.Device."+d.ID {
			t.Errorf("subject %q", msg.Subject())
		}
		got = append(got, e)
	}
	want := []entry{
		{Time: 1000, ContentType: "application/json", Content: `{"a":1}`, ResourceID: d.ID, ResourceType: "Device"},
		{Time: 1001, ContentType: "application/octet-stream", Content: "/w==", ContentEncoding: "base64", ResourceID: d.ID, ResourceType: "Device"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bus entries:\n got %+v\nwant %+v", got, want)
	}
	if s := harvest.Subject("Sim", "a.b c*>"); s != "harvest.data.Sim.a%2Eb%20c%2A%3E" {
		t.Fatalf("escaped subject %q", s)
	}
	// Published entries leave the outbox.
	waitOutbox(t, ts, 0)
	if p, f := metric(t, ts, "nagare_harvest_bus_published_total"), metric(t, ts, "nagare_harvest_bus_failures_total"); p != 2 || f != 0 {
		t.Fatalf("bus published %v, failures %v", p, f)
	}
}

// outboxRows counts the rows in harvest_outbox.
func outboxRows(t testing.TB, ts *servertest.TS) int {
	t.Helper()
	var n int
	if err := ts.DB.QueryRow(`SELECT COUNT(*) FROM harvest_outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitOutbox waits up to 20 s for the outbox to hold n rows and the
// backlog gauge to agree. (The relay deletes rows, then lowers the gauge:
// right after the delete the two may differ for a moment.)
func waitOutbox(t testing.TB, ts *servertest.TS, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rows, gauge := outboxRows(t, ts), metric(t, ts, "nagare_harvest_outbox_entries")
		if rows == n && gauge == float64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox holds %d rows and the gauge says %v; want %d", rows, gauge, n)
		}
	}
}

// metric reads a counter or gauge from the server's registry.
func metric(t testing.TB, ts *servertest.TS, name string) float64 {
	t.Helper()
	mfs, err := ts.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// publishN publishes n entries at distinct times and returns the
// Nats-Msg-Ids they must have on the bus.
func publishN(t testing.TB, ts *servertest.TS, d device, t0, n int) map[string]int {
	t.Helper()
	want := map[string]int{}
	for i := range n {
		mustStatus(t, publish(ts, d, strconv.Itoa(i), "X-Soracom-Timestamp", strconv.Itoa(t0+i)), 201)
		want[fmt.Sprintf("Device/%s/%d", d.ID, t0+i)] = 1
	}
	return want
}

// busIDs reads the device's messages on the HARVEST stream until it has
// seen want of them (or 20 s pass), then briefly waits for any extra one,
// and counts them by Nats-Msg-Id.
func busIDs(t testing.TB, ts *servertest.TS, d device, want int) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := ts.Bus.JS.OrderedConsumer(ctx, harvest.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{harvest.Subject(harvest.ResourceDevice, d.ID)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ids, seen := map[string]int{}, 0
	fetch := func(wait time.Duration) {
		batch, err := cons.Fetch(want+1, jetstream.FetchMaxWait(wait))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			ids[msg.Headers().Get(nats.MsgIdHdr)]++
			seen++
		}
	}
	for deadline := time.Now().Add(20 * time.Second); seen < want && time.Now().Before(deadline); {
		fetch(time.Second)
	}
	fetch(500 * time.Millisecond) // a duplicate would show here
	return ids
}

// TestOutboxRelaysAfterBusOutage: while the HARVEST stream is missing,
// publishes are still accepted and wait in the outbox; once it is back,
// the relay delivers each entry exactly once.
func TestOutboxRelaysAfterBusOutage(t *testing.T) {
	ts := servertest.Start(t)
	d := harvestDevice(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := ts.Bus.JS.Stream(ctx, harvest.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Bus.JS.DeleteStream(ctx, harvest.Stream); err != nil {
		t.Fatal(err)
	}

	const n = 40
	want := publishN(t, ts, d, 1700000000000, n)
	if got := outboxRows(t, ts); got != n {
		t.Fatalf("outbox holds %d rows after %d publishes", got, n)
	}
	// The relay has tried and failed, and kept every row.
	for deadline := time.Now().Add(20 * time.Second); metric(t, ts, "nagare_harvest_bus_failures_total") == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the relay did not try to publish")
		}
	}
	if got := outboxRows(t, ts); got != n {
		t.Fatalf("outbox holds %d rows after failed relays, want %d", got, n)
	}
	// An entry deleted before it was published just leaves the outbox.
	mustStatus(t, ts.Root.Do("DELETE", fmt.Sprintf("/v1/data/Device/%s/%d", d.ID, 1700000000000), nil), 204)
	delete(want, fmt.Sprintf("Device/%s/%d", d.ID, 1700000000000))

	if _, err := ts.Bus.JS.CreateStream(ctx, cfg.CachedInfo().Config); err != nil {
		t.Fatal(err)
	}
	if got := busIDs(t, ts, d, n-1); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bus message IDs (want each once):\n got %v\nwant %v", got, want)
	}
	waitOutbox(t, ts, 0)
}

// TestOutboxSurvivesRestart: entries accepted but not yet on the bus when
// the server stops are delivered after it starts again.
func TestOutboxSurvivesRestart(t *testing.T) {
	ts := servertest.Start(t)
	d := harvestDevice(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.Bus.JS.DeleteStream(ctx, harvest.Stream); err != nil {
		t.Fatal(err)
	}
	const n = 25
	want := publishN(t, ts, d, 1700000000000, n)
	if got := outboxRows(t, ts); got != n {
		t.Fatalf("outbox holds %d rows after %d publishes", got, n)
	}

	ts.Restart() // the stream comes back empty with the server
	for id, c := range publishN(t, ts, d, 1800000000000, 5) {
		want[id] = c
	}
	if got := busIDs(t, ts, d, n+5); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bus message IDs (want each once):\n got %v\nwant %v", got, want)
	}
	waitOutbox(t, ts, 0)
}

// TestBacklogBackpressure: while the bus is down and the outbox is full,
// publishes get 503 with Retry-After and nothing is stored; once the bus
// is back and the outbox drains, publishing works again.
func TestBacklogBackpressure(t *testing.T) {
	ts := servertest.Start(t)
	d := harvestDevice(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := ts.Bus.JS.Stream(ctx, harvest.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Bus.JS.DeleteStream(ctx, harvest.Stream); err != nil {
		t.Fatal(err)
	}
	ts.Data.SetMaxBacklog(5)
	publishN(t, ts, d, 1700000000000, 5)
	res := publish(ts, d, `{"x":1}`)
	if res.Status != 503 || res.ErrorCode() != "UNA0001" || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the backlog: %d %s %v", res.Status, res.Body, res.Header)
	}
	if got := outboxRows(t, ts); got != 5 {
		t.Fatalf("a refused publish was stored: outbox %d", got)
	}
	if _, err := ts.Bus.JS.CreateStream(ctx, st.CachedInfo().Config); err != nil {
		t.Fatal(err)
	}
	waitOutbox(t, ts, 0)
	// The in-memory backlog follows the outbox down; wait for the relay to
	// account for the deleted rows.
	deadline := time.Now().Add(10 * time.Second)
	for res = publish(ts, d, `{"x":2}`); res.Status == 503 && time.Now().Before(deadline); res = publish(ts, d, `{"x":2}`) {
		time.Sleep(20 * time.Millisecond)
	}
	mustStatus(t, res, 201)
}
