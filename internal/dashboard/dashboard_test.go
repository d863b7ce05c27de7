package dashboard

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseExample(t *testing.T) {
	src, err := os.ReadFile("../../examples/crowding/dashboard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse("dashboard.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "crowding" || d.Time != (TimeRange{"now-6m", "now"}) || d.Refresh != time.Minute || len(d.Panels) != 5 || string(d.Source) != string(src) {
		t.Fatalf("%+v", d)
	}
	kinds := []string{}
	for _, p := range d.Panels {
		kinds = append(kinds, p.Kind)
		if p.Resource != (Resource{"SoraCam", "7CDDDEADBEEF"}) {
			t.Fatalf("panel %q resource %+v", p.Title, p.Resource)
		}
	}
	if strings.Join(kinds, ",") != "logs,stat,stat,timeseries,image" {
		t.Fatal(kinds)
	}
	logs, level, people, series, img := d.Panels[0], d.Panels[1], d.Panels[2], d.Panels[3], d.Panels[4]
	if logs.Field != "state" || level.Keys[0] != "crowding_level" || level.Unit != "%" || len(level.Thresholds) != 3 ||
		level.Thresholds[2] != (Threshold{80, "red"}) || level.Aggregate != "last" || *level.Decimals != 0 || people.Keys[0] != "person_count" {
		t.Fatalf("%+v %+v %+v", logs, level, people)
	}
	if len(series.Keys) != 2 || series.Aggregate != "avg" || series.Time == nil || series.Time.From != "now-6h" || series.Time.To != "now" {
		t.Fatalf("%+v", series)
	}
	if img.Mode != ModeFiles || img.Field != "image_path" || img.Grid != (Grid{12, 0, 12, 20}) {
		t.Fatalf("%+v", img)
	}
}

// TestParseBadGolden: every problem is reported at once, with positions.
func TestParseBadGolden(t *testing.T) {
	src, _ := os.ReadFile("testdata/bad.yaml")
	_, err := Parse("bad.yaml", src)
	if err == nil {
		t.Fatal("bad.yaml accepted")
	}
	got := err.Error() + "\n"
	if *update {
		os.WriteFile("testdata/bad.golden", []byte(got), 0o644)
	}
	want, _ := os.ReadFile("testdata/bad.golden")
	if got != string(want) {
		t.Fatalf("got:\n%s\nwant (go test ./internal/dashboard -update):\n%s", got, want)
	}
}

func TestParseProblems(t *testing.T) {
	const res = "    resource: {type: Device, id: d}\n"
	cases := []struct{ name, src, want string }{
		{"empty", ``, "1:1: the file is empty"},
		{"not yaml", "name: [", "did not find expected node content"},
		{"not a mapping", "- a\n", "1:1: the dashboard must be a mapping"},
		{"no panels", "name: a\n", "1:1: the dashboard needs panels"},
		{"zero panels", "name: a\npanels: []\n", "2:9: a dashboard has 1 to 100 panels, not 0"},
		{"twice", "name: a\nname: b\npanels: []\n", `2:1: "name" is set twice`},
		{"did you mean", "name: a\npanels:\n  - kind: stat\n" + res + "    keys: [k]\n    unti: '%'\n", `6:5: unknown field "unti" in panel 1 (did you mean "unit"?)`},
		{"wrong kind field", "name: a\npanels:\n  - kind: logs\n" + res + "    field: t\n    keys: [k]\n", `6:5: panel 1: "keys" does not apply to a logs panel`},
		{"empty range", "name: a\ntime: {from: now, to: now-1h}\npanels: []\n", "2:7: time: the range is empty"},
		{"series keys", "name: a\npanels:\n  - kind: timeseries\n" + res + "    keys: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]\n", "5:11: panel 1: keys needs 1 to 16 keys, not 17"},
		{"url image", "name: a\npanels:\n  - kind: image\n" + res + "    mode: url\n", "3:5: panel 1 needs a field: the key holding the image URL"},
		{"refresh", "name: a\nrefresh: soon\npanels: []\n", `2:10: refresh: "soon" is not a duration`},
		{"undeclared param", "name: a\npanels:\n  - kind: logs\n" + res + "    field: t\n    where: {u: \"${user}\"}\n", "6:16: panel 1: where u: ${user} is not a declared param (declare it under params:"},
		{"param kind", "name: a\nparams: {user: maybe}\npanels: []\n", `2:16: params: user "maybe" must be one of required, optional`},
		{"mixed where", "name: a\npanels:\n  - kind: logs\n" + res + "    field: t\n    where: {u: \"id-${user}\"}\n", "a value is literal text or one ${param}"},
		{"public series", "name: a\npublic: true\npanels:\n  - kind: timeseries\n" + res + "    keys: [k]\n", "4:11: a public dashboard cannot have timeseries panels"},
		{"ranking field", "name: a\npanels:\n  - kind: ranking\n" + res + "    group: u\n", "3:5: panel 1 needs a field: the number to rank by"},
		{"ranking limit", "name: a\npanels:\n  - kind: ranking\n" + res + "    field: s\n    limit: 1000\n", "6:12: panel 1: limit: 1000 is out of range [1, 100]"},
		{"bars both", "name: a\npanels:\n  - kind: bars\n" + res + "    field: e\n    keys: [a]\n", "3:5: panel 1 needs either a field"},
		{"gallery image", "name: a\npanels:\n  - kind: gallery\n" + res, "3:5: panel 1 needs an image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant %q", err, c.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		err  string
	}{
		{"now", now, ""},
		{"now-30s", now.Add(-30 * time.Second), ""},
		{"now-6m", now.Add(-6 * time.Minute), ""},
		{"now-6h", now.Add(-6 * time.Hour), ""},
		{"now-7d", now.Add(-7 * 24 * time.Hour), ""},
		{"now-3650d", now.Add(-3650 * 24 * time.Hour), ""},
		{"now-3651d", time.Time{}, "more than 3650 days"},
		{"now-99999999999999999999s", time.Time{}, "more than 3650 days"},
		{"2026-11-22T05:00:00Z", now.Add(-time.Hour), ""},
		{"2026-11-22T14:00:00+09:00", now.Add(-time.Hour), ""},
		{"2026-11-22T06:00:00.250Z", now.Add(250 * time.Millisecond), ""},
		{"1795327200000", time.UnixMilli(1795327200000), ""},
		{"now-6", time.Time{}, "a relative time is now or now-<number>"},
		{"now+1h", time.Time{}, "a relative time"},
		{"now-1w", time.Time{}, "a relative time"},
		{"yesterday", time.Time{}, "is not a time"},
		{"", time.Time{}, "is not a time"},
		{"2026-11-22", time.Time{}, "is not a time"},
	}
	for _, c := range cases {
		got, err := ParseTime(c.in, now)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: err %v, want %q", c.in, err, c.err)
		case c.err == "" && (err != nil || !got.Equal(c.want)):
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
	}
	from, to, err := TimeRange{"now-6m", "now"}.Resolve(now)
	if err != nil || to.Sub(from) != 6*time.Minute || !to.Equal(now) {
		t.Fatal(from, to, err)
	}
	if _, _, err := (TimeRange{"now", "now-1s"}).Resolve(now); err == nil {
		t.Fatal("empty range accepted")
	}
}

// keyAuth authenticates the API key as the operator's id and allows all.
type keyAuth struct{}

func (keyAuth) Authenticate(_ context.Context, key, _ string) (*api.Principal, error) {
	if key == "" {
		return nil, api.Unauthenticated("no key")
	}
	return &api.Principal{OperatorID: key, APIKey: key}, nil
}
func (keyAuth) Authorize(context.Context, *api.Principal, string, *http.Request) error { return nil }

type client struct {
	t   *testing.T
	srv *httptest.Server
	op  string
}

func (c client) do(method, path, body string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-Soracom-API-Key", c.op)
	if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (c client) want(method, path, body string, status int, contains ...string) string {
	c.t.Helper()
	got, out := c.do(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, got, out, status)
	}
	for _, s := range contains {
		if !strings.Contains(out, s) {
			c.t.Fatalf("%s %s: %s\nmissing %s", method, path, out, s)
		}
	}
	return out
}

// TestAPI runs on SQLite, or on PostgreSQL with NAGARE_TEST_POSTGRES set.
func TestAPI(t *testing.T) {
	svc := New(storetest.Open(t))
	rt := api.NewRouter(keyAuth{}, nil)
	svc.Register(rt)
	srv := httptest.NewServer(rt)
	defer srv.Close()
	a, b := client{t, srv, "OP0000000001"}, client{t, srv, "OP0000000002"}
	example, _ := os.ReadFile("../../examples/crowding/dashboard.yaml")
	src := string(example)

	a.want("GET", "/v1/dashboards", "", 200, "[]")
	a.want("POST", "/v1/dashboards/validate", src, 200, `"valid":true`)
	a.want("POST", "/v1/dashboards/validate", "name: X\npanels: []\n", 200, `"valid":false`, `{"line":1,"column":7,"message":"name \"X\" must be`)
	a.want("POST", "/v1/dashboards", "name: x\npanels: 3\n", 400, `"code":"BAD0002"`, `"problems":[{"line":2,"column":9,"message":"panels must be a list"}]`)
	a.want("POST", "/v1/dashboards", src, 201, `"name":"crowding"`, `"version":1`, `"refresh":"1m"`, `"time":{"from":"now-6m","to":"now"}`,
		`"kind":"image","resource":{"type":"SoraCam","id":"7CDDDEADBEEF"},"mode":"files","field":"image_path"`, `"thresholds":[{"value":0,"color":"green"}`)
	a.want("POST", "/v1/dashboards", src, 409, "already exists")
	if got := a.want("GET", "/v1/dashboards/crowding?format=yaml", "", 200); got != src {
		t.Fatalf("source changed:\n%s", got)
	}
	a.want("GET", "/v1/dashboards/crowding", "", 200, `"title":"混雑度 (Crowding)"`, `"decimals":0`)
	b.want("GET", "/v1/dashboards/crowding", "", 404, "NTF0001")
	b.want("GET", "/v1/dashboards", "", 200, "[]")

	replaced := strings.Replace(src, "refresh: 1m", "refresh: 30s", 1)
	a.want("PUT", "/v1/dashboards/crowding", replaced, 200, `"version":2`, `"refresh":"30s"`)
	a.want("PUT", "/v1/dashboards/other", replaced, 400, `names \"other\"`)
	b.want("PUT", "/v1/dashboards/crowding", replaced, 201, `"version":1`)
	a.want("GET", "/v1/dashboards", "", 200, `"refresh":"30s"`)

	req, _ := http.NewRequest("POST", srv.URL+"/v1/dashboards", strings.NewReader(src))
	req.Header.Set("X-Soracom-API-Key", a.op)
	req.Header.Set("Content-Type", "image/png")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 415 {
		t.Fatal(res, err)
	}

	a.want("DELETE", "/v1/dashboards/crowding", "", 204)
	a.want("DELETE", "/v1/dashboards/crowding", "", 404)
	a.want("GET", "/v1/dashboards", "", 200, "[]")
	b.want("GET", "/v1/dashboards/crowding", "", 200, `"version":1`)

	// The service API directly.
	ctx := context.Background()
	if _, err := svc.Get(ctx, a.op, "crowding"); err == nil {
		t.Fatal("deleted dashboard found")
	} else if ae := (*api.Error)(nil); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatal(err)
	}
	list, err := svc.List(ctx, b.op)
	if err != nil || len(list) != 1 || list[0].Name != "crowding" || len(list[0].Panels) != 5 {
		t.Fatal(list, err)
	}
}
