package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// The seed 000 example dashboard through the real server: applied, read
// back unchanged, and permission-checked.
func TestExampleDashboardOnTheServer(t *testing.T) {
	src, err := os.ReadFile("../../examples/crowding/dashboard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ts := servertest.Start(t)
	res := ts.Root.Do("PUT", "/v1/dashboards/crowding", src, "Content-Type", "application/yaml")
	if res.Status != 201 {
		t.Fatalf("put: %d %s", res.Status, res.Body)
	}
	if res := ts.Root.Do("GET", "/v1/dashboards/crowding?format=yaml", nil); res.Status != 200 || string(res.Body) != string(src) {
		t.Errorf("read back: %d", res.Status)
	}
	var list []struct{ Name string }
	ts.Root.Do("GET", "/v1/dashboards", nil).JSON(&list)
	if len(list) != 1 || list[0].Name != "crowding" {
		t.Errorf("list: %+v", list)
	}
	if res := ts.Anon().Do("GET", "/v1/dashboards", nil); res.Status != 401 {
		t.Errorf("anonymous: %d", res.Status)
	}
}

// A public dashboard without login: only entries its where and URL
// parameters select, images as signed URLs, private dashboards hidden.
func TestPublicDashboard(t *testing.T) {
	ts := servertest.Start(t)
	op := ts.OperatorID
	ctx := context.Background()
	put := func(content string) {
		t.Helper()
		if _, err := ts.Data.Put(ctx, op, "App", "scores", "application/json", []byte(content), time.Now()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct entry times
	}
	put(`{"user":"u1","msg":"1","score":10,"img":"/p/a.jpg","kind":"photo"}`)
	put(`{"user":"u2","msg":"2","score":30,"img":"/p/b.jpg","kind":"photo"}`)
	put(`{"user":"u1","msg":"3","score":20,"img":"/p/c.jpg","kind":"photo"}`)
	put(`{"user":"u1","msg":"4","score":99,"img":"/p/secret.jpg","kind":"draft"}`)
	put(`not JSON`)
	for _, f := range []string{"/p/a.jpg", "/p/c.jpg", "/p/secret.jpg", "/p/note.txt"} {
		ct := "image/jpeg"
		if strings.HasSuffix(f, ".txt") {
			ct = "text/plain"
		}
		if res := ts.Root.Do("PUT", "/v1/files/private"+f, "bytes of "+f, "Content-Type", ct); res.Status != 201 {
			t.Fatalf("put %s: %d %s", f, res.Status, res.Body)
		}
	}
	page := `name: page
public: true
params: {user: required, msg: optional}
panels:
  - kind: image
    resource: {type: App, id: scores}
    where: {user: "${user}", msg: "${msg}", kind: photo}
    mode: files
    field: img
  - kind: table
    resource: {type: App, id: scores}
    where: {user: "${user}"}
    columns: [score]
`
	for name, src := range map[string]string{"page": page, "private": strings.Replace(page, "public: true", "public: false", 1)} {
		if res := ts.Root.Do("PUT", "/v1/dashboards/"+name, strings.Replace(src, "name: page", "name: "+name, 1), "Content-Type", "application/yaml"); res.Status != 201 {
			t.Fatalf("put %s: %d %s", name, res.Status, res.Body)
		}
	}
	type view struct {
		Panels []struct {
			Entries []struct {
				Content map[string]any
			}
			Files map[string]string
		}
	}
	get := func(q string) (*servertest.Response, *view) {
		res := ts.Anon().Do("GET", "/v1/public/dashboards/"+op+"/page"+q, nil)
		var v view
		if res.Status == 200 {
			res.JSON(&v)
		}
		return res, &v
	}
	msgs := func(v *view, i int) string {
		var out []string
		for _, e := range v.Panels[i].Entries {
			out = append(out, fmt.Sprint(e.Content["msg"]))
		}
		return strings.Join(out, ",")
	}
	// u1's photos, newest first; the draft (kind) and u2 are left out.
	res, v := get("?user=u1")
	if res.Status != 200 || msgs(v, 0) != "3,1" || msgs(v, 1) != "4,3,1" {
		t.Fatalf("user u1: %d %s", res.Status, res.Body)
	}
	if len(v.Panels[0].Files) != 2 || v.Panels[0].Files["/p/secret.jpg"] != "" || len(v.Panels[1].Files) != 0 {
		t.Errorf("files %+v", v.Panels[0].Files)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
	}
	// The signed URL works without login.
	if r, err := http.Get(v.Panels[0].Files["/p/c.jpg"]); err != nil || r.StatusCode != 200 {
		t.Errorf("signed URL: %v %v", err, r)
	} else {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if string(b) != "bytes of /p/c.jpg" {
			t.Errorf("signed URL body %q", b)
		}
	}
	// One message.
	if _, v := get("?user=u1&msg=1"); msgs(v, 0) != "1" {
		t.Errorf("msg 1: %s", msgs(v, 0))
	}
	// The image of the newest matching entry, served.
	img := ts.Anon().Do("GET", "/v1/public/dashboards/"+op+"/page/image?user=u1", nil)
	if img.Status != 200 || string(img.Body) != "bytes of /p/c.jpg" || img.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("image: %d %s", img.Status, img.Body)
	}
	for q, want := range map[string]int{
		"":                                  400, // user is required
		"?user=" + strings.Repeat("x", 300): 400,
		"?user=nobody":                      200,
	} {
		if res, _ := get(q); res.Status != want {
			t.Errorf("%.40s: %d %s; want %d", q, res.Status, res.Body, want)
		}
	}
	for _, path := range []string{"/v1/public/dashboards/" + op + "/private?user=u1", "/v1/public/dashboards/OPother/page?user=u1",
		"/v1/public/dashboards/" + op + "/nope?user=u1", "/v1/public/dashboards/" + op + "/page/image?user=nobody",
		"/v1/public/dashboards/" + op + "/private/image?user=u1"} {
		if res := ts.Anon().Do("GET", path, nil); res.Status != 404 {
			t.Errorf("%s: %d %s", path, res.Status, res.Body)
		}
	}
	if res := ts.Anon().Do("GET", "/v1/public/dashboards/"+op+"/page/image?user=u1&panel=2", nil); res.Status != 400 {
		t.Errorf("image of a table panel: %d %s", res.Status, res.Body)
	}

	// One client address cannot keep the server scanning: past the burst
	// it gets 429 with Retry-After; another client (behind the same local
	// proxy) is still served.
	limited := false
	for i := 0; i < 200 && !limited; i++ {
		res := ts.Anon().Do("GET", "/v1/public/dashboards/"+op+"/page?user=u1", nil)
		if res.Status == 429 {
			if res.ErrorCode() != "LIM0001" || res.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without its code or Retry-After: %s %v", res.Body, res.Header)
			}
			limited = true
		}
	}
	if !limited {
		t.Error("200 requests in a row from one address were all served")
	}
	if res := ts.Anon().Do("GET", "/v1/public/dashboards/"+op+"/page?user=u1", nil, "X-Forwarded-For", "198.51.100.20"); res.Status != 200 {
		t.Errorf("another client behind the proxy: %d %s", res.Status, res.Body)
	}
}
