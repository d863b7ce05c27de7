package inventory_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/inventory"
	"github.com/nagare-iot/nagare/internal/servertest"
)

type device struct {
	DeviceID         string            `json:"device_id"`
	OperatorID       string            `json:"operatorId"`
	GroupID          string            `json:"groupId"`
	Manufacturer     string            `json:"manufacturer"`
	ModelNumber      string            `json:"modelNumber"`
	SerialNumber     string            `json:"serialNumber"`
	FirmwareVersion  string            `json:"firmwareVersion"`
	Endpoint         string            `json:"endpoint"`
	IPAddress        string            `json:"ipAddress"`
	Online           *bool             `json:"online"`
	LastModifiedTime string            `json:"lastModifiedTime"`
	Tags             map[string]string `json:"tags"`
	Objects          map[string]any    `json:"objects"`
	DeviceSecret     string            `json:"deviceSecret"`
}

type group struct {
	GroupID          string                    `json:"groupId"`
	OperatorID       string                    `json:"operatorId"`
	CreatedTime      int64                     `json:"createdTime"`
	LastModifiedTime int64                     `json:"lastModifiedTime"`
	Configuration    map[string]map[string]any `json:"configuration"`
	Tags             map[string]string         `json:"tags"`
}

type sim struct {
	SimID            string            `json:"simId"`
	Name             string            `json:"name"`
	IPAddress        string            `json:"ipAddress"`
	GroupID          string            `json:"groupId"`
	Tags             map[string]string `json:"tags"`
	CreatedTime      int64             `json:"createdTime"`
	LastModifiedTime int64             `json:"lastModifiedTime"`
}

// call is one request of a table: its expected status and error code.
type call struct {
	name         string
	method, path string
	body         any
	status       int
	code         string
}

func runCalls(t *testing.T, c *servertest.Client, calls []call) {
	t.Helper()
	for _, cl := range calls {
		t.Run(cl.name, func(t *testing.T) {
			res := c.Do(cl.method, cl.path, cl.body)
			if res.Status != cl.status || res.ErrorCode() != cl.code {
				t.Fatalf("%s %s: got %d %s, want %d %s", cl.method, cl.path, res.Status, res.Body, cl.status, cl.code)
			}
		})
	}
}

func mustStatus(t *testing.T, res *servertest.Response, status int) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("got %d %s, want %d", res.Status, res.Body, status)
	}
}

func createDevice(t *testing.T, c *servertest.Client, body any) device {
	t.Helper()
	res := c.Do("POST", "/v1/devices", body)
	mustStatus(t, res, 201)
	var d device
	res.JSON(&d)
	return d
}

func createGroup(t *testing.T, c *servertest.Client, body any) group {
	t.Helper()
	res := c.Do("POST", "/v1/groups", body)
	mustStatus(t, res, 201)
	var g group
	res.JSON(&g)
	return g
}

// listAll follows x-soracom-next-key through every page and returns the IDs.
func listAll(t *testing.T, c *servertest.Client, path, idField string) (ids []string, pages int) {
	t.Helper()
	key := ""
	for {
		p := path
		if key != "" {
			p += "&last_evaluated_key=" + url.QueryEscape(key)
		}
		res := c.Do("GET", p, nil)
		mustStatus(t, res, 200)
		var items []map[string]any
		res.JSON(&items)
		for _, it := range items {
			ids = append(ids, it[idField].(string))
		}
		pages++
		key = res.Header.Get("x-soracom-next-key")
		if key == "" {
			return ids, pages
		}
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
	}
}

func TestDevices(t *testing.T) {
	ts := servertest.Start(t)
	c := ts.Root

	bare := createDevice(t, c, nil)
	if !regexp.MustCompile(`^d-[a-z0-9]{20}$`).MatchString(bare.DeviceID) || bare.OperatorID != ts.OperatorID ||
		bare.DeviceSecret == "" || bare.Online == nil || *bare.Online || bare.Tags == nil || bare.Objects == nil || bare.GroupID != "" {
		t.Fatalf("bare device: %+v", bare)
	}
	full := createDevice(t, c, map[string]any{
		"device_id": "ignored", "operatorId": "OPignored", "online": true,
		"manufacturer": "ACME", "modelNumber": "M1", "serialNumber": "S1", "firmwareVersion": "1.0",
		"endpoint": "ep", "ipAddress": "10.0.0.1", "tags": map[string]string{"name": "button-1", "floor": "3F"},
		"objects": map[string]any{"3": map[string]any{"0": map[string]any{"0": "ACME"}}},
	})
	if full.DeviceID == "ignored" || full.OperatorID != ts.OperatorID || full.Manufacturer != "ACME" || full.ModelNumber != "M1" ||
		full.SerialNumber != "S1" || full.FirmwareVersion != "1.0" || full.Endpoint != "ep" || full.IPAddress != "10.0.0.1" ||
		full.Tags["name"] != "button-1" || full.Objects["3"] == nil || *full.Online || full.LastModifiedTime == "" {
		t.Fatalf("full device: %+v", full)
	}

	// Get answers the device without its secret.
	res := c.Do("GET", "/v1/devices/"+full.DeviceID, nil)
	mustStatus(t, res, 200)
	var got device
	got = decode[device](res)
	if got.DeviceID != full.DeviceID || got.DeviceSecret != "" || strings.Contains(string(res.Body), full.DeviceSecret) || got.Tags["floor"] != "3F" {
		t.Fatalf("get: %s", res.Body)
	}

	// Tags.
	res = c.Do("PUT", "/v1/devices/"+bare.DeviceID+"/tags", []map[string]string{{"tagName": "name", "tagValue": "button-2"}, {"tagName": "floor", "tagValue": "4F"}})
	mustStatus(t, res, 200)
	res = c.Do("PUT", "/v1/devices/"+bare.DeviceID+"/tags", []map[string]string{{"tagName": "floor", "tagValue": "3F-east"}})
	mustStatus(t, res, 200)
	got = decode[device](res)
	if got.Tags["name"] != "button-2" || got.Tags["floor"] != "3F-east" {
		t.Fatalf("tags: %v", got.Tags)
	}
	mustStatus(t, c.Do("DELETE", "/v1/devices/"+bare.DeviceID+"/tags/name", nil), 204)
	res = c.Do("GET", "/v1/devices/"+bare.DeviceID, nil)
	got = decode[device](res)
	if _, ok := got.Tags["name"]; ok || got.Tags["floor"] != "3F-east" {
		t.Fatalf("after deleting a tag: %v", got.Tags)
	}

	// Listing with tag filters and pages.
	ids, _ := listAll(t, c, "/v1/devices?tag_name=floor&tag_value=3F", "device_id")
	if len(ids) != 1 || ids[0] != full.DeviceID {
		t.Fatalf("exact tag filter: %v", ids)
	}
	ids, _ = listAll(t, c, "/v1/devices?tag_name=floor&tag_value=3F&tag_value_match_mode=prefix", "device_id")
	if len(ids) != 2 {
		t.Fatalf("prefix tag filter: %v", ids)
	}
	for i := 0; i < 3; i++ {
		createDevice(t, c, map[string]any{"tags": map[string]string{"floor": "3F"}})
	}
	ids, pages := listAll(t, c, "/v1/devices?limit=2", "device_id")
	if len(ids) != 5 || pages != 3 || !sortedUnique(ids) {
		t.Fatalf("paged list: %d ids %v in %d pages", len(ids), ids, pages)
	}
	ids, pages = listAll(t, c, "/v1/devices?limit=1&tag_name=floor&tag_value=3F", "device_id")
	if len(ids) != 4 || pages != 4 || !sortedUnique(ids) {
		t.Fatalf("paged filtered list: %v in %d pages", ids, pages)
	}

	// Secrets rotate.
	res = c.Do("POST", "/v1/devices/"+full.DeviceID+"/secret", nil)
	mustStatus(t, res, 200)
	var sec struct{ DeviceSecret string }
	res.JSON(&sec)
	if sec.DeviceSecret == "" || sec.DeviceSecret == full.DeviceSecret {
		t.Fatalf("new secret: %s", res.Body)
	}
	ctx := context.Background()
	if _, err := ts.Inventory.AuthenticateDevice(ctx, full.DeviceID, full.DeviceSecret); err == nil {
		t.Fatal("the old secret still works")
	}
	if d, err := ts.Inventory.AuthenticateDevice(ctx, full.DeviceID, sec.DeviceSecret); err != nil || d.DeviceID != full.DeviceID {
		t.Fatalf("new secret: %v", err)
	}

	runCalls(t, c, []call{
		{"bad json", "POST", "/v1/devices", `{"manufacturer":`, 400, "BAD0001"},
		{"unknown field", "POST", "/v1/devices", map[string]any{"manufacturerr": "x"}, 400, "BAD0001"},
		{"wrong type", "POST", "/v1/devices", map[string]any{"tags": []string{"x"}}, 400, "BAD0001"},
		{"unknown group on create", "POST", "/v1/devices", map[string]any{"groupId": "nope"}, 400, "BAD0002"},
		{"empty tag name", "POST", "/v1/devices", map[string]any{"tags": map[string]string{"": "x"}}, 400, "BAD0002"},
		{"get unknown", "GET", "/v1/devices/d-unknown", nil, 404, "NTF0001"},
		{"delete unknown", "DELETE", "/v1/devices/d-unknown", nil, 404, "NTF0001"},
		{"tags of unknown", "PUT", "/v1/devices/d-unknown/tags", []map[string]string{{"tagName": "a", "tagValue": "b"}}, 404, "NTF0001"},
		{"tag without name", "PUT", "/v1/devices/" + full.DeviceID + "/tags", []map[string]string{{"tagValue": "b"}}, 400, "BAD0002"},
		{"tags not an array", "PUT", "/v1/devices/" + full.DeviceID + "/tags", map[string]string{"a": "b"}, 400, "BAD0001"},
		{"delete missing tag", "DELETE", "/v1/devices/" + full.DeviceID + "/tags/nope", nil, 404, "NTF0001"},
		{"set unknown group", "POST", "/v1/devices/" + full.DeviceID + "/set_group", map[string]string{"groupId": "nope"}, 404, "NTF0001"},
		{"set group without id", "POST", "/v1/devices/" + full.DeviceID + "/set_group", map[string]string{}, 400, "BAD0002"},
		{"set group of unknown device", "POST", "/v1/devices/d-unknown/set_group", map[string]string{"groupId": "nope"}, 404, "NTF0001"},
		{"unset group of unknown device", "POST", "/v1/devices/d-unknown/unset_group", nil, 404, "NTF0001"},
		{"secret of unknown device", "POST", "/v1/devices/d-unknown/secret", nil, 404, "NTF0001"},
		{"bad match mode", "GET", "/v1/devices?tag_name=a&tag_value_match_mode=regex", nil, 400, "BAD0001"},
		{"bad limit", "GET", "/v1/devices?limit=x", nil, 400, "BAD0001"},
	})
	if res := ts.Anon().Do("GET", "/v1/devices", nil); res.Status != 401 {
		t.Fatalf("anonymous list: %d", res.Status)
	}

	mustStatus(t, c.Do("DELETE", "/v1/devices/"+full.DeviceID, nil), 204)
	mustStatus(t, c.Do("GET", "/v1/devices/"+full.DeviceID, nil), 404)
	if _, err := ts.Inventory.AuthenticateDevice(ctx, full.DeviceID, sec.DeviceSecret); err == nil {
		t.Fatal("a deleted device still authenticates")
	}
}

func sortedUnique(ids []string) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			return false
		}
	}
	return true
}

func TestGroups(t *testing.T) {
	ts := servertest.Start(t)
	c := ts.Root

	g := createGroup(t, c, map[string]any{
		"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}},
		"tags":          map[string]string{"name": "buttons"},
	})
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(g.GroupID) ||
		g.OperatorID != ts.OperatorID || g.CreatedTime < 1e12 || g.LastModifiedTime != g.CreatedTime ||
		g.Configuration["SoracomHarvest"]["enabled"] != true || g.Tags["name"] != "buttons" {
		t.Fatalf("created group: %+v", g)
	}
	empty := createGroup(t, c, nil)
	if empty.Configuration == nil || empty.Tags == nil {
		t.Fatalf("empty group: %+v", empty)
	}

	// Configuration parameters merge per namespace.
	res := c.Do("PUT", "/v1/groups/"+g.GroupID+"/configuration/SoracomHarvest", []map[string]any{
		{"key": "customTimestamp", "value": map[string]any{"type": "jsonpointer", "value": "/time", "format": "iso-8601"}},
	})
	mustStatus(t, res, 200)
	res = c.Do("PUT", "/v1/groups/"+g.GroupID+"/configuration/SoracomHarvestFiles", []map[string]any{
		{"key": "enabled", "value": true}, {"key": "defaultPath", "value": "/test/"},
	})
	mustStatus(t, res, 200)
	var got group
	got = decode[group](res)
	if got.Configuration["SoracomHarvest"]["enabled"] != true || got.Configuration["SoracomHarvest"]["customTimestamp"] == nil ||
		got.Configuration["SoracomHarvestFiles"]["defaultPath"] != "/test/" || got.LastModifiedTime < got.CreatedTime {
		t.Fatalf("configuration: %s", res.Body)
	}
	grp, err := ts.Inventory.GetGroup(context.Background(), ts.OperatorID, g.GroupID)
	if err != nil || !grp.Enabled(inventory.NamespaceHarvest) || !grp.Enabled(inventory.NamespaceHarvestFiles) || grp.Enabled("SoracomAir") {
		t.Fatalf("GetGroup: %+v %v", grp, err)
	}
	mustStatus(t, c.Do("DELETE", "/v1/groups/"+g.GroupID+"/configuration/SoracomHarvestFiles/defaultPath", nil), 204)
	res = c.Do("GET", "/v1/groups/"+g.GroupID, nil)
	mustStatus(t, res, 200)
	got = decode[group](res)
	if _, ok := got.Configuration["SoracomHarvestFiles"]["defaultPath"]; ok {
		t.Fatalf("deleted parameter still there: %s", res.Body)
	}

	// Tags.
	res = c.Do("PUT", "/v1/groups/"+g.GroupID+"/tags", []map[string]string{{"tagName": "site", "tagValue": "tokyo"}})
	mustStatus(t, res, 200)
	got = decode[group](res)
	if got.Tags["name"] != "buttons" || got.Tags["site"] != "tokyo" {
		t.Fatalf("group tags: %v", got.Tags)
	}
	mustStatus(t, c.Do("DELETE", "/v1/groups/"+g.GroupID+"/tags/site", nil), 204)
	ids, _ := listAll(t, c, "/v1/groups?tag_name=name&tag_value=butt&tag_value_match_mode=prefix", "groupId")
	if len(ids) != 1 || ids[0] != g.GroupID {
		t.Fatalf("group tag filter: %v", ids)
	}
	ids, pages := listAll(t, c, "/v1/groups?limit=1", "groupId")
	if len(ids) != 2 || pages != 2 {
		t.Fatalf("group pages: %v in %d", ids, pages)
	}

	// Members.
	d := createDevice(t, c, nil)
	res = c.Do("POST", "/v1/devices/"+d.DeviceID+"/set_group", map[string]string{"groupId": g.GroupID})
	mustStatus(t, res, 200)
	var dev device
	dev = decode[device](res)
	if dev.GroupID != g.GroupID {
		t.Fatalf("set_group: %s", res.Body)
	}
	d2 := createDevice(t, c, map[string]any{"groupId": g.GroupID})
	if d2.GroupID != g.GroupID {
		t.Fatalf("create in group: %+v", d2)
	}

	bad := "/v1/groups/" + g.GroupID + "/configuration/"
	runCalls(t, c, []call{
		{"bad namespace on create", "POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomNope": map[string]any{}}}, 400, "BAD0002"},
		{"namespace not an object", "POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomAir": true}}, 400, "BAD0001"},
		{"harvest enabled not a boolean", "POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": "yes"}}}, 400, "BAD0002"},
		{"unknown field", "POST", "/v1/groups", map[string]any{"config": map[string]any{}}, 400, "BAD0001"},
		{"bad json", "POST", "/v1/groups", "{", 400, "BAD0001"},
		{"bad namespace on put", "PUT", bad + "Nope", []map[string]any{{"key": "a", "value": 1}}, 400, "BAD0002"},
		{"files enabled not a boolean", "PUT", bad + "SoracomHarvestFiles", []map[string]any{{"key": "enabled", "value": 1}}, 400, "BAD0002"},
		{"parameter without value", "PUT", bad + "SoracomAir", []map[string]any{{"key": "metadata"}}, 400, "BAD0002"},
		{"parameter without key", "PUT", bad + "SoracomAir", []map[string]any{{"value": 1}}, 400, "BAD0002"},
		{"parameters not an array", "PUT", bad + "SoracomAir", map[string]any{"key": "a"}, 400, "BAD0001"},
		{"put on unknown group", "PUT", "/v1/groups/nope/configuration/SoracomAir", []map[string]any{{"key": "a", "value": 1}}, 404, "NTF0001"},
		{"delete missing parameter", "DELETE", bad + "SoracomAir/nope", nil, 404, "NTF0001"},
		{"delete parameter bad namespace", "DELETE", bad + "Nope/enabled", nil, 400, "BAD0002"},
		{"get unknown", "GET", "/v1/groups/nope", nil, 404, "NTF0001"},
		{"delete unknown", "DELETE", "/v1/groups/nope", nil, 404, "NTF0001"},
		{"tags of unknown", "PUT", "/v1/groups/nope/tags", []map[string]string{{"tagName": "a"}}, 404, "NTF0001"},
		{"delete missing tag", "DELETE", "/v1/groups/" + g.GroupID + "/tags/nope", nil, 404, "NTF0001"},
		{"delete group with devices", "DELETE", "/v1/groups/" + g.GroupID, nil, 400, "BAD0002"},
	})
	// A failed update changes nothing.
	res = c.Do("GET", "/v1/groups/"+g.GroupID, nil)
	got = decode[group](res)
	if got.Configuration["SoracomHarvestFiles"]["enabled"] != true {
		t.Fatalf("a rejected update changed the group: %s", res.Body)
	}

	mustStatus(t, c.Do("POST", "/v1/devices/"+d.DeviceID+"/unset_group", nil), 200)
	mustStatus(t, c.Do("DELETE", "/v1/devices/"+d2.DeviceID, nil), 204)
	mustStatus(t, c.Do("DELETE", "/v1/groups/"+g.GroupID, nil), 204)
	mustStatus(t, c.Do("GET", "/v1/groups/"+g.GroupID, nil), 404)
	res = c.Do("GET", "/v1/devices/"+d.DeviceID, nil)
	dev = decode[device](res)
	if dev.GroupID != "" {
		t.Fatalf("unset_group: %s", res.Body)
	}
}

func TestSims(t *testing.T) {
	ts := servertest.Start(t)
	c := ts.Root

	res := c.Do("POST", "/v1/sims", map[string]any{"simId": "8981100000000000001", "name": "camera-1", "ipAddress": "10.128.0.5"})
	mustStatus(t, res, 201)
	var m sim
	m = decode[sim](res)
	if m.SimID != "8981100000000000001" || m.Name != "camera-1" || m.IPAddress != "10.128.0.5" || m.Tags == nil || m.CreatedTime < 1e12 || m.GroupID != "" {
		t.Fatalf("created SIM: %s", res.Body)
	}
	for _, body := range []map[string]any{
		{"simId": "cam_2", "ipAddress": "camera.local"},
		{"simId": "cam-3", "ipAddress": "fd00::1", "tags": map[string]string{"site": "a"}},
		{"simId": "cam-4"},
	} {
		mustStatus(t, c.Do("POST", "/v1/sims", body), 201)
	}
	s, err := ts.Inventory.GetSim(context.Background(), ts.OperatorID, "cam_2")
	if err != nil || s.IPAddress != "camera.local" {
		t.Fatalf("GetSim: %+v %v", s, err)
	}

	res = c.Do("PUT", "/v1/sims/cam-4", map[string]any{"ipAddress": "192.168.1.20"})
	mustStatus(t, res, 200)
	res = c.Do("PUT", "/v1/sims/cam-4", map[string]any{"name": "renamed"})
	mustStatus(t, res, 200)
	m = decode[sim](res)
	if m.Name != "renamed" || m.IPAddress != "192.168.1.20" {
		t.Fatalf("update: %s", res.Body)
	}

	g := createGroup(t, c, nil)
	res = c.Do("POST", "/v1/sims/cam-4/set_group", map[string]string{"groupId": g.GroupID})
	mustStatus(t, res, 200)
	m = decode[sim](res)
	if m.GroupID != g.GroupID {
		t.Fatalf("set_group: %s", res.Body)
	}
	mustStatus(t, c.Do("DELETE", "/v1/groups/"+g.GroupID, nil), 400)
	res = c.Do("POST", "/v1/sims/cam-4/unset_group", nil)
	mustStatus(t, res, 200)
	m = decode[sim](res)
	if m.GroupID != "" {
		t.Fatalf("unset_group: %s", res.Body)
	}
	mustStatus(t, c.Do("PUT", "/v1/sims/cam-4/tags", []map[string]string{{"tagName": "site", "tagValue": "b"}}), 200)
	ids, _ := listAll(t, c, "/v1/sims?tag_name=site", "simId")
	if strings.Join(ids, ",") != "cam-3,cam-4" {
		t.Fatalf("tag filter: %v", ids)
	}
	mustStatus(t, c.Do("DELETE", "/v1/sims/cam-4/tags/site", nil), 204)
	ids, pages := listAll(t, c, "/v1/sims?limit=3", "simId")
	if len(ids) != 4 || pages != 2 || !sortedUnique(ids) {
		t.Fatalf("paged SIMs: %v in %d", ids, pages)
	}

	runCalls(t, c, []call{
		{"duplicate", "POST", "/v1/sims", map[string]any{"simId": "cam_2"}, 409, "CNF0001"},
		{"bad id", "POST", "/v1/sims", map[string]any{"simId": "cam/5"}, 400, "BAD0002"},
		{"missing id", "POST", "/v1/sims", map[string]any{"name": "x"}, 400, "BAD0002"},
		{"too long id", "POST", "/v1/sims", map[string]any{"simId": strings.Repeat("a", 65)}, 400, "BAD0002"},
		{"bad address", "POST", "/v1/sims", map[string]any{"simId": "cam-6", "ipAddress": "rtsp://camera"}, 400, "BAD0002"},
		{"unknown group", "POST", "/v1/sims", map[string]any{"simId": "cam-6", "groupId": "nope"}, 400, "BAD0002"},
		{"unknown field", "POST", "/v1/sims", map[string]any{"simId": "cam-6", "imsi": "1"}, 400, "BAD0001"},
		{"empty body", "POST", "/v1/sims", nil, 400, "BAD0001"},
		{"update bad address", "PUT", "/v1/sims/cam_2", map[string]any{"ipAddress": "a b"}, 400, "BAD0002"},
		{"update unknown", "PUT", "/v1/sims/nope", map[string]any{"name": "x"}, 404, "NTF0001"},
		{"get unknown", "GET", "/v1/sims/nope", nil, 404, "NTF0001"},
		{"set unknown group", "POST", "/v1/sims/cam_2/set_group", map[string]string{"groupId": "nope"}, 404, "NTF0001"},
		{"delete unknown", "DELETE", "/v1/sims/nope", nil, 404, "NTF0001"},
	})
	// The rejected update left the SIM alone; the failed create left nothing.
	if s, _ := ts.Inventory.GetSim(context.Background(), ts.OperatorID, "cam_2"); s.IPAddress != "camera.local" {
		t.Fatalf("rejected update changed the SIM: %+v", s)
	}
	mustStatus(t, c.Do("GET", "/v1/sims/cam-6", nil), 404)

	mustStatus(t, c.Do("DELETE", "/v1/sims/cam_2", nil), 204)
	mustStatus(t, c.Do("GET", "/v1/sims/cam_2", nil), 404)
}

// TestOperatorScope checks that another operator sees none of the first
// operator's resources.
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

	d := createDevice(t, ts.Root, nil)
	g := createGroup(t, ts.Root, nil)
	mustStatus(t, ts.Root.Do("POST", "/v1/sims", map[string]any{"simId": "sim-1"}), 201)

	runCalls(t, c2, []call{
		{"device", "GET", "/v1/devices/" + d.DeviceID, nil, 404, "NTF0001"},
		{"device secret", "POST", "/v1/devices/" + d.DeviceID + "/secret", nil, 404, "NTF0001"},
		{"delete device", "DELETE", "/v1/devices/" + d.DeviceID, nil, 404, "NTF0001"},
		{"group", "GET", "/v1/groups/" + g.GroupID, nil, 404, "NTF0001"},
		{"sim", "GET", "/v1/sims/sim-1", nil, 404, "NTF0001"},
	})
	// Its own device cannot join the first operator's group.
	d2 := createDevice(t, c2, nil)
	mustStatus(t, c2.Do("POST", "/v1/devices/"+d2.DeviceID+"/set_group", map[string]string{"groupId": g.GroupID}), 404)
	for _, p := range []string{"/v1/devices", "/v1/groups", "/v1/sims"} {
		res := c2.Do("GET", p, nil)
		mustStatus(t, res, 200)
		var items []map[string]any
		res.JSON(&items)
		if p == "/v1/devices" && (len(items) != 1 || items[0]["device_id"] != d2.DeviceID) || p != "/v1/devices" && len(items) != 0 {
			t.Fatalf("%s for the other operator: %s", p, res.Body)
		}
	}
}

// decode unmarshals a response into a fresh value.
func decode[T any](res *servertest.Response) T {
	var v T
	res.JSON(&v)
	return v
}
