package harvest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/auth"
	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/servertest"
)

// filesS3 starts an in-process S3 fake and returns an s3:// store URL.
func filesS3(t *testing.T) (storeURL, endpoint string) {
	t.Helper()
	faker := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
	return "s3://harvest-files?region=us-east-1&endpoint=" + url.QueryEscape(srv.URL) + "&use_path_style=true&disable_https=true", srv.URL
}

// filesFetch GETs an absolute URL without credentials.
func filesFetch(t *testing.T, u string) (int, http.Header, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func filesNames(t *testing.T, res *servertest.Response) []string {
	t.Helper()
	var es []harvest.FileEntry
	res.JSON(&es)
	out := []string{}
	for _, e := range es {
		n := e.Filename
		if e.IsDirectory {
			n += "/"
		}
		out = append(out, n)
	}
	return out
}

func filesPaths(t *testing.T, res *servertest.Response) []string {
	t.Helper()
	var es []harvest.FileEntry
	res.JSON(&es)
	out := []string{}
	for _, e := range es {
		out = append(out, e.FilePath)
	}
	return out
}

// filesLongPath returns a path (without its leading slash) that is n bytes
// long with the slash, in segments of the longest allowed size.
func filesLongPath(n int) string {
	var b strings.Builder
	for b.Len()+1 < n {
		seg := min(harvest.MaxSegmentBytes, n-1-b.Len())
		if b.Len() > 0 {
			b.WriteByte('/')
			seg = min(seg, n-1-b.Len())
		}
		b.WriteString(strings.Repeat("y", seg))
	}
	return b.String()
}

// filesListen picks a free loopback port up front: signed links name the
// public URL, which the server fixes before it binds.
func filesListen(t *testing.T) func(*config.Config) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return func(c *config.Config) { c.Listen = addr }
}

func TestFilesLocal(t *testing.T) {
	ts := servertest.Start(t, filesListen(t))
	filesSuite(t, ts, "")
	filesSignedURLLocal(t, ts)
}

func TestFilesS3(t *testing.T) {
	storeURL, endpoint := filesS3(t)
	ts := servertest.Start(t, func(c *config.Config) { c.Files = storeURL })
	filesSuite(t, ts, endpoint)
}

// filesSuite runs the HTTP behaviour common to every store; s3Endpoint is
// set when downloads must come from the S3 fake's own presigned URLs.
func filesSuite(t *testing.T, ts *servertest.TS, s3Endpoint string) {
	c := ts.Root

	t.Run("empty root", func(t *testing.T) {
		res := c.Do("GET", "/v1/files/private//", nil)
		if res.Status != 200 || string(res.Body) != "[]\n" {
			t.Fatalf("empty root: %d %q", res.Status, res.Body)
		}
		if res := c.Do("GET", "/v1/files/private/nope/", nil); res.Status != 404 || res.ErrorCode() != api.CodeNotFound {
			t.Fatalf("missing dir: %d %s", res.Status, res.Body)
		}
	})

	t.Run("put get metadata", func(t *testing.T) {
		res := c.Do("PUT", "/v1/files/private/cams/front/a.jpg", []byte("JPEG-1"), "Content-Type", "image/jpeg")
		if res.Status != 201 {
			t.Fatalf("put: %d %s", res.Status, res.Body)
		}
		var e1 harvest.FileEntry
		res.JSON(&e1)
		want := harvest.FileEntry{FilePath: "/cams/front/a.jpg", Filename: "a.jpg", Directory: "/cams/front/", ContentType: "image/jpeg", ContentLength: 6}
		if e1.FilePath != want.FilePath || e1.Filename != want.Filename || e1.Directory != want.Directory || e1.IsDirectory ||
			e1.ContentType != want.ContentType || e1.ContentLength != 6 || e1.ETag == "" || e1.CreatedTime == 0 || e1.LastModifiedTime < e1.CreatedTime {
			t.Fatalf("put entry: %+v", e1)
		}
		if now := time.Now().UnixMilli(); e1.CreatedTime > now || e1.CreatedTime < now-60_000 {
			t.Fatalf("createdTime %d is not in ms around now", e1.CreatedTime)
		}
		time.Sleep(20 * time.Millisecond)
		res = c.Do("PUT", "/v1/files/private/cams/front/a.jpg", []byte("JPEG-two"), "Content-Type", "image/jpeg")
		if res.Status != 200 {
			t.Fatalf("overwrite: %d %s", res.Status, res.Body)
		}
		var e2 harvest.FileEntry
		res.JSON(&e2)
		if e2.CreatedTime != e1.CreatedTime || e2.ContentLength != 8 {
			t.Fatalf("overwrite entry %+v, first %+v", e2, e1)
		}

		res = c.Do("GET", "/v1/files/private/cams/front/a.jpg", nil)
		if res.Status != 302 {
			t.Fatalf("get: %d %s", res.Status, res.Body)
		}
		loc := res.Header.Get("Location")
		if s3Endpoint != "" {
			if !strings.HasPrefix(loc, s3Endpoint+"/") || !strings.Contains(loc, "X-Amz-Signature") {
				t.Fatalf("Location %s is not the S3 store's presigned URL", loc)
			}
		} else if !strings.HasPrefix(loc, ts.URL+blob.SignedPath+"?") {
			t.Fatalf("Location %s is not nagare's signed URL", loc)
		}
		code, hdr, body := filesFetch(t, loc)
		if code != 200 || body != "JPEG-two" || hdr.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("download: %d %s %q", code, hdr.Get("Content-Type"), body)
		}

		// Default content type.
		if res := c.Do("PUT", "/v1/files/private/raw.bin", []byte{0, 1, 2}); res.Status != 201 {
			t.Fatalf("put raw: %d %s", res.Status, res.Body)
		} else if e := (harvest.FileEntry{}); true {
			res.JSON(&e)
			if e.ContentType != "application/octet-stream" || e.Directory != "/" {
				t.Fatalf("raw entry %+v", e)
			}
		}

		// Metadata: GET ?metadata and HEAD.
		res = c.Do("GET", "/v1/files/private/cams/front/a.jpg?metadata", nil)
		var m harvest.FileEntry
		if res.Status != 200 {
			t.Fatalf("metadata: %d %s", res.Status, res.Body)
		}
		res.JSON(&m)
		if m.FilePath != "/cams/front/a.jpg" || m.ContentLength != 8 || m.CreatedTime != e1.CreatedTime || m.ETag != e2.ETag {
			t.Fatalf("metadata %+v", m)
		}
		if res := c.Do("HEAD", "/v1/files/private/cams/front/a.jpg", nil); res.Status != 200 || res.Header.Get("ETag") == "" {
			t.Fatalf("HEAD: %d %v", res.Status, res.Header)
		}
		if res := c.Do("HEAD", "/v1/files/private/cams/front/none.jpg", nil); res.Status != 404 {
			t.Fatalf("HEAD missing: %d", res.Status)
		}
		res = c.Do("GET", "/v1/files/private/cams?metadata", nil)
		res.JSON(&m)
		if res.Status != 200 || !m.IsDirectory || m.FilePath != "/cams/" || m.Directory != "/" || m.Filename != "cams" {
			t.Fatalf("directory metadata: %d %s", res.Status, res.Body)
		}

		if res := c.Do("GET", "/v1/files/private/cams/front/none.jpg", nil); res.Status != 404 || res.ErrorCode() != api.CodeNotFound {
			t.Fatalf("get missing: %d %s", res.Status, res.Body)
		}
		// A directory redirects to its listing.
		res = c.Do("GET", "/v1/files/private/cams/front", nil)
		if res.Status != 302 || res.Header.Get("Location") != "/v1/files/private/cams/front/" {
			t.Fatalf("get directory: %d %v", res.Status, res.Header)
		}
		// Public scope is empty and read-only.
		if res := c.Do("GET", "/v1/files/public/cams/front/a.jpg", nil); res.Status != 404 {
			t.Fatalf("public get: %d", res.Status)
		}
		if res := c.Do("GET", "/v1/files/public/", nil); res.Status != 200 || string(res.Body) != "[]\n" {
			t.Fatalf("public list: %d %s", res.Status, res.Body)
		}
		for _, scope := range []string{"public", "secret"} {
			if res := c.Do("PUT", "/v1/files/"+scope+"/x.txt", "x"); res.Status != 400 || res.ErrorCode() != api.CodeInvalid {
				t.Fatalf("put to %s: %d %s", scope, res.Status, res.Body)
			}
		}
		if res := ts.Anon().Do("GET", "/v1/files/private/cams/front/a.jpg", nil); res.Status != 401 {
			t.Fatalf("anonymous get: %d", res.Status)
		}
	})

	t.Run("file and directory conflicts", func(t *testing.T) {
		if res := c.Do("PUT", "/v1/files/private/cams/front/a.jpg/x", "x"); res.Status != 409 {
			t.Fatalf("file below a file: %d %s", res.Status, res.Body)
		}
		if res := c.Do("PUT", "/v1/files/private/cams/front", "x"); res.Status != 409 {
			t.Fatalf("file over a directory: %d %s", res.Status, res.Body)
		}
	})

	t.Run("list", func(t *testing.T) {
		for _, p := range []string{"/p/a/1.txt", "/p/a-b.txt", "/p/a.txt", "/p/b.txt", "/p/c/d/e.txt", "/p/f.txt"} {
			if res := c.Do("PUT", "/v1/files/private"+p, p, "Content-Type", "text/plain"); res.Status != 201 {
				t.Fatalf("put %s: %d %s", p, res.Status, res.Body)
			}
		}
		res := c.Do("GET", "/v1/files/private//", nil)
		if got, want := filesNames(t, res), []string{"cams/", "p/", "raw.bin"}; res.Status != 200 || !reflect.DeepEqual(got, want) {
			t.Fatalf("root: %d %v, want %v", res.Status, got, want)
		}
		res = c.Do("GET", "/v1/files/private/p/", nil)
		want := []string{"a/", "a-b.txt", "a.txt", "b.txt", "c/", "f.txt"}
		if got := filesNames(t, res); !reflect.DeepEqual(got, want) || res.Header.Get("x-soracom-next-key") != "" {
			t.Fatalf("p/: %v %v, want %v", got, res.Header, want)
		}
		var es []harvest.FileEntry
		res.JSON(&es)
		if d := es[0]; d.FilePath != "/p/a/" || d.Directory != "/p/" || !d.IsDirectory {
			t.Fatalf("directory entry %+v", d)
		}
		if f := es[1]; f.FilePath != "/p/a-b.txt" || f.ContentType != "text/plain" || f.ContentLength != int64(len("/p/a-b.txt")) || f.CreatedTime == 0 {
			t.Fatalf("file entry %+v", f)
		}
		// Page through one entry at a time.
		var got []string
		key := ""
		for i := 0; i < 10; i++ {
			q := "?limit=1"
			if key != "" {
				q += "&last_evaluated_key=" + url.QueryEscape(key)
			}
			res := c.Do("GET", "/v1/files/private/p/"+q, nil)
			if res.Status != 200 {
				t.Fatalf("page: %d %s", res.Status, res.Body)
			}
			got = append(got, filesNames(t, res)...)
			key = res.Header.Get("x-soracom-next-key")
			if key == "" {
				break
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("paged %v, want %v", got, want)
		}
		res = c.Do("GET", "/v1/files/private/p/?limit=4", nil)
		if got := filesNames(t, res); !reflect.DeepEqual(got, want[:4]) || res.Header.Get("x-soracom-next-key") != "b.txt" {
			t.Fatalf("limit 4: %v next %q", got, res.Header.Get("x-soracom-next-key"))
		}
		res = c.Do("GET", "/v1/files/private/p/?last_evaluated_key=f.txt", nil)
		if res.Status != 200 || string(res.Body) != "[]\n" {
			t.Fatalf("past the end: %d %s", res.Status, res.Body)
		}
		res = c.Do("GET", "/v1/files/private/p/c/", nil)
		if got := filesNames(t, res); !reflect.DeepEqual(got, []string{"d/"}) {
			t.Fatalf("p/c/: %v", got)
		}
		for _, q := range []string{"limit=0", "limit=1001", "limit=x", "last_evaluated_key=a/b"} {
			if res := c.Do("GET", "/v1/files/private/p/?"+q, nil); res.Status != 400 {
				t.Fatalf("%s: %d %s", q, res.Status, res.Body)
			}
		}
		if res := c.Do("GET", "/v1/files/private/p/a.txt/", nil); res.Status != 404 {
			t.Fatalf("file listed as a directory: %d %s", res.Status, res.Body)
		}
	})

	t.Run("list order", func(t *testing.T) {
		// Names around '/' in byte order: keys list "a-b" before "a/z",
		// but the directory "a" sorts before the file "a-b".
		for _, p := range []string{"z", "a!", "a-b", "a.c", "a0", "b", "b.1/z", "b-/z", "a/z", "a.c.d/z"} {
			if res := c.Do("PUT", "/v1/files/private/q/"+p, "x"); res.Status != 201 {
				t.Fatalf("put %s: %d %s", p, res.Status, res.Body)
			}
		}
		want := []string{"a/", "a!", "a-b", "a.c", "a.c.d/", "a0", "b", "b-/", "b.1/", "z"}
		for limit := 1; limit <= 4; limit++ {
			var got []string
			key := ""
			for i := 0; i < 20; i++ {
				q := fmt.Sprintf("?limit=%d&last_evaluated_key=%s", limit, url.QueryEscape(key))
				res := c.Do("GET", "/v1/files/private/q/"+q, nil)
				got = append(got, filesNames(t, res)...)
				if key = res.Header.Get("x-soracom-next-key"); key == "" {
					break
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("limit %d: %v, want %v", limit, got, want)
			}
		}
		for _, p := range []string{"z", "a!", "a-b", "a.c", "a0", "b", "b.1/z", "b-/z", "a/z", "a.c.d/z"} {
			if res := c.Do("DELETE", "/v1/files/private/q/"+p, nil); res.Status != 204 {
				t.Fatalf("delete %s: %d %s", p, res.Status, res.Body)
			}
		}
	})

	t.Run("find", func(t *testing.T) {
		res := c.Do("GET", "/v1/files?scope=private&prefix=/p/a", nil)
		want := []string{"/p/a-b.txt", "/p/a.txt", "/p/a/1.txt"}
		if got := filesPaths(t, res); res.Status != 200 || !reflect.DeepEqual(got, want) {
			t.Fatalf("find /p/a: %d %v, want %v", res.Status, got, want)
		}
		var got []string
		key := ""
		for i := 0; i < 10; i++ {
			q := "/v1/files?scope=private&prefix=%2Fp%2F&limit=2"
			if key != "" {
				q += "&last_evaluated_key=" + url.QueryEscape(key)
			}
			res := c.Do("GET", q, nil)
			if res.Status != 200 {
				t.Fatalf("find page: %d %s", res.Status, res.Body)
			}
			got = append(got, filesPaths(t, res)...)
			key = res.Header.Get("x-soracom-next-key")
			if key == "" {
				break
			}
		}
		want = []string{"/p/a-b.txt", "/p/a.txt", "/p/a/1.txt", "/p/b.txt", "/p/c/d/e.txt", "/p/f.txt"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("find paged %v, want %v", got, want)
		}
		res = c.Do("GET", "/v1/files?scope=private", nil)
		if got := filesPaths(t, res); len(got) != 8 || got[0] != "/cams/front/a.jpg" || got[7] != "/raw.bin" {
			t.Fatalf("find all: %v", got)
		}
		if res := c.Do("GET", "/v1/files?scope=private&prefix=/zzz", nil); res.Status != 200 || string(res.Body) != "[]\n" {
			t.Fatalf("find none: %d %s", res.Status, res.Body)
		}
		if res := c.Do("GET", "/v1/files?scope=nope", nil); res.Status != 400 {
			t.Fatalf("find bad scope: %d", res.Status)
		}
		if res := c.Do("GET", "/v1/files?scope=private&prefix=/a/../b", nil); res.Status != 400 || res.ErrorCode() != api.CodeBadPath {
			t.Fatalf("find dot prefix: %d %s", res.Status, res.Body)
		}
	})

	t.Run("traversal and limits", func(t *testing.T) {
		deep := strings.Repeat("d/", 17) + "f.txt"
		ok16 := strings.Repeat("d/", 16) + "f.txt"
		cases := []string{
			"/v1/files/private/../x.txt",
			"/v1/files/private/%2e%2e/x.txt",
			"/v1/files/private/a/%2E%2E/%2E%2E/x.txt",
			"/v1/files/private/a%2F..%2Fx.txt",
			"/v1/files/private/./x.txt",
			"/v1/files/private/a%5Cb.txt",
			"/v1/files/private/a%01b.txt",
			"/v1/files/private/x.txt.attrs",
			"/v1/files/private/a.attrs/x.txt",
			"/v1/files/private/" + strings.Repeat("x/", 512),
			"/v1/files/private/" + strings.Repeat("x", harvest.MaxSegmentBytes+1),
			"/v1/files/private/" + filesLongPath(1024),
			"/v1/files/private/" + deep,
			"/v1/files/private/trailing/",
		}
		for _, p := range cases {
			res := c.Do("PUT", p, "evil")
			if res.Status != 400 || res.ErrorCode() != api.CodeBadPath {
				t.Errorf("PUT %.80s: %d %s", p, res.Status, res.Body)
			}
		}
		if res := c.Do("GET", "/v1/files/private/"+deep, nil); res.Status != 400 {
			t.Errorf("GET deep: %d", res.Status)
		}
		if res := c.Do("GET", "/v1/files/private/"+strings.Repeat("d/", 17), nil); res.Status != 400 {
			t.Errorf("list deep: %d", res.Status)
		}
		if res := c.Do("DELETE", "/v1/files/private/a%5Cb.txt", nil); res.Status != 400 {
			t.Errorf("DELETE backslash: %d", res.Status)
		}
		// Nothing was written anywhere.
		res := c.Do("GET", "/v1/files?scope=private&limit=1000", nil)
		for _, p := range filesPaths(t, res) {
			if strings.Contains(p, "x.txt") || strings.Contains(p, "/d/d/") || strings.Contains(p, "evil") {
				t.Errorf("written: %s", p)
			}
		}
		// The limits themselves are allowed.
		if res := c.Do("PUT", "/v1/files/private/"+ok16, "deep"); res.Status != 201 {
			t.Fatalf("16 levels: %d %s", res.Status, res.Body)
		}
		// The longest path is 1024 bytes less the operator prefix.
		long := "/v1/files/private/" + filesLongPath(harvest.MaxKeyBytes-len(ts.OperatorID))
		if res := c.Do("PUT", long, "long"); res.Status != 201 {
			t.Fatalf("longest path: %d %s", res.Status, res.Body)
		}
		if res := c.Do("DELETE", long, nil); res.Status != 204 {
			t.Fatalf("delete long: %d", res.Status)
		}
		if res := c.Do("DELETE", "/v1/files/private/"+ok16, nil); res.Status != 204 {
			t.Fatalf("delete deep: %d", res.Status)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if res := c.Do("DELETE", "/v1/files/private/p/c/", nil); res.Status != 400 || res.ErrorCode() != api.CodeInvalid {
			t.Fatalf("delete non-empty dir: %d %s", res.Status, res.Body)
		}
		if res := c.Do("DELETE", "/v1/files/private/p/c/d/e.txt", nil); res.Status != 204 {
			t.Fatalf("delete file: %d %s", res.Status, res.Body)
		}
		if res := c.Do("DELETE", "/v1/files/private/p/c/d/e.txt", nil); res.Status != 404 {
			t.Fatalf("delete file again: %d %s", res.Status, res.Body)
		}
		// The directory is gone with its last file.
		if res := c.Do("DELETE", "/v1/files/private/p/c/", nil); res.Status != 404 {
			t.Fatalf("delete empty dir: %d %s", res.Status, res.Body)
		}
		if res := c.Do("GET", "/v1/files/private/p/c/", nil); res.Status != 404 {
			t.Fatalf("list deleted dir: %d %s", res.Status, res.Body)
		}
		if res := c.Do("DELETE", "/v1/files/private//", nil); res.Status != 400 {
			t.Fatalf("delete root: %d %s", res.Status, res.Body)
		}
		// A file can take the removed directory's name.
		if res := c.Do("PUT", "/v1/files/private/p/c", "now a file"); res.Status != 201 {
			t.Fatalf("file where a directory was: %d %s", res.Status, res.Body)
		}
		res := c.Do("GET", "/v1/files/private/p/", nil)
		if got, want := filesNames(t, res), []string{"a/", "a-b.txt", "a.txt", "b.txt", "c", "f.txt"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("after delete: %v, want %v", got, want)
		}
	})
}

// filesSignedURLLocal checks nagare's own signed URLs (file:// store).
func filesSignedURLLocal(t *testing.T, ts *servertest.TS) {
	c := ts.Root
	res := c.Do("GET", "/v1/files/private/cams/front/a.jpg", nil)
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.Status != 302 || err != nil {
		t.Fatalf("get: %d %v", res.Status, err)
	}
	for name, mod := range map[string]func(url.Values){
		"signature": func(q url.Values) { q.Set("signature", "x"+q.Get("signature")) },
		"object":    func(q url.Values) { q.Set("obj", ts.OperatorID+"/raw.bin") },
		"expiry":    func(q url.Values) { q.Set("expiry", fmt.Sprint(time.Now().Add(time.Hour).Unix())) },
	} {
		u := *loc
		q := u.Query()
		mod(q)
		u.RawQuery = q.Encode()
		if code, _, _ := filesFetch(t, u.String()); code != 403 {
			t.Errorf("tampered %s: %d", name, code)
		}
	}
	expired, err := ts.Files.SignedURL(context.Background(), ts.OperatorID+"/cams/front/a.jpg", -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := filesFetch(t, expired); code != 403 {
		t.Errorf("expired: %d", code)
	}
	// Files survive a restart.
	ts.Restart()
	res = ts.Root.Do("GET", "/v1/files/private/cams/front/a.jpg", nil)
	if res.Status != 302 {
		t.Fatalf("after restart: %d", res.Status)
	}
	if code, _, body := filesFetch(t, res.Header.Get("Location")); code != 200 || body != "JPEG-two" {
		t.Fatalf("download after restart: %d %q", code, body)
	}
}

func TestFilesTooLarge(t *testing.T) {
	ts := servertest.Start(t, filesListen(t), func(c *config.Config) { c.MaxFileBytes = 1000 })
	c := ts.Root
	if res := c.Do("PUT", "/v1/files/private/keep.bin", strings.Repeat("k", 1000), "Content-Type", "text/plain"); res.Status != 201 {
		t.Fatalf("max-size put: %d %s", res.Status, res.Body)
	}
	big := strings.Repeat("B", 1001)
	if res := c.Do("PUT", "/v1/files/private/big/one.bin", big); res.Status != 413 || res.ErrorCode() != api.CodeTooLarge {
		t.Fatalf("oversized: %d %s", res.Status, res.Body)
	}
	// Without Content-Length (chunked) the limit is found while streaming.
	chunked := func(path string) int {
		req, err := http.NewRequest("PUT", ts.URL+path, io.MultiReader(strings.NewReader(big), strings.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		req.Header.Set("X-Soracom-API-Key", c.APIKey)
		req.Header.Set("X-Soracom-Token", c.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := chunked("/v1/files/private/big/two.bin"); code != 413 {
		t.Fatalf("chunked oversized: %d", code)
	}
	if code := chunked("/v1/files/private/keep.bin"); code != 413 {
		t.Fatalf("chunked oversized overwrite: %d", code)
	}
	for _, p := range []string{"big/one.bin", "big/two.bin"} {
		if res := c.Do("GET", "/v1/files/private/"+p+"?metadata", nil); res.Status != 404 {
			t.Errorf("%s stored: %d %s", p, res.Status, res.Body)
		}
	}
	if res := c.Do("GET", "/v1/files/private/big/", nil); res.Status != 404 {
		t.Errorf("directory of failed uploads exists: %d %s", res.Status, res.Body)
	}
	res := c.Do("GET", "/v1/files/private/keep.bin", nil)
	if code, _, body := filesFetch(t, res.Header.Get("Location")); code != 200 || body != strings.Repeat("k", 1000) {
		t.Fatalf("previous file damaged: %d %d bytes", code, len(body))
	}
	// A file may take the name of the failed uploads' directory.
	if res := c.Do("PUT", "/v1/files/private/big", "small"); res.Status != 201 {
		t.Fatalf("put after failed uploads: %d %s", res.Status, res.Body)
	}
}

// TestFilesPermissions checks that operations sharing a path are
// authorized under their own names.
func TestFilesPermissions(t *testing.T) {
	ts := servertest.Start(t, filesListen(t))
	if res := ts.Root.Do("PUT", "/v1/files/private/d/f.txt", "f", "Content-Type", "text/plain"); res.Status != 201 {
		t.Fatalf("put: %d %s", res.Status, res.Body)
	}
	user := func(name string, apis ...string) *servertest.Client {
		t.Helper()
		hash, err := auth.HashPassword("password-" + name)
		if err != nil {
			t.Fatal(err)
		}
		perm, _ := json.Marshal(map[string]any{"statements": []any{map[string]any{"effect": "allow", "api": apis}}})
		now := time.Now().UnixMilli()
		if _, err := ts.DB.ExecContext(context.Background(), `INSERT INTO users (operator_id, user_name, password_hash, permission, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			ts.OperatorID, name, hash, string(perm), now, now); err != nil {
			t.Fatal(err)
		}
		return ts.Login(map[string]any{"operatorId": ts.OperatorID, "userName": name, "password": "password-" + name})
	}
	lister := user("lister", "FileEntry:listFiles", "FileEntry:getFileMetadata")
	getter := user("getter", "FileEntry:getFile")
	cases := []struct {
		c            *servertest.Client
		method, path string
		status       int
	}{
		{lister, "GET", "/v1/files/private//", 200},
		{lister, "GET", "/v1/files/private/d/", 200},
		{lister, "GET", "/v1/files/private/d/f.txt?metadata", 200},
		{lister, "HEAD", "/v1/files/private/d/f.txt", 200},
		{lister, "GET", "/v1/files/private/d/f.txt", 403},
		{lister, "DELETE", "/v1/files/private/d/f.txt", 403},
		{lister, "DELETE", "/v1/files/private/d/", 403},
		{lister, "PUT", "/v1/files/private/d/g.txt", 403},
		{lister, "GET", "/v1/files?prefix=/d", 403},
		{getter, "GET", "/v1/files/private/d/f.txt", 302},
		{getter, "GET", "/v1/files/private/d/", 403},
		{getter, "GET", "/v1/files/private/d/f.txt?metadata", 403},
	}
	for _, tc := range cases {
		if res := tc.c.Do(tc.method, tc.path, nil); res.Status != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, res.Status, res.Body, tc.status)
		}
	}
}

type filesFailingReader struct{ n int }

func (r *filesFailingReader) Read(p []byte) (int, error) {
	if r.n >= 3 {
		return 0, io.ErrUnexpectedEOF
	}
	r.n++
	return copy(p, "da"), nil
}

// TestFilesGoAPI uses Files directly, as exports and remote commands do.
func TestFilesGoAPI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := blob.Open(ctx, "file://"+dir+"/files", dir, []byte("0123456789abcdef0123456789abcdef"), "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := harvest.NewFiles(st, harvest.FilesOptions{MaxFileBytes: 10, SignedURLTTL: time.Minute})

	_, _, err = f.Put(ctx, "OP1", "/cams/x.jpg", "image/jpeg", &filesFailingReader{})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("failing body: %v", err)
	}
	if _, _, err := f.Put(ctx, "OP1", "/cams/x.jpg", "image/jpeg", strings.NewReader("01234567890")); !errors.As(err, &ae) || ae.Status != 413 {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := f.Stat(ctx, "OP1", "/cams/x.jpg"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("stored after failures: %v", err)
	}
	if _, _, err := f.Put(ctx, "OP1", "/cams/x.jpg", "not a type", strings.NewReader("x")); !errors.As(err, &ae) || ae.Code != api.CodeInvalid {
		t.Fatalf("bad content type: %v", err)
	}
	e, created, err := f.Put(ctx, "OP1", "cams/x.jpg", "image/jpeg", strings.NewReader("0123456789"))
	if err != nil || !created || e.FilePath != "/cams/x.jpg" || e.ContentLength != 10 {
		t.Fatalf("put: %+v %v %v", e, created, err)
	}
	if _, created, err := f.Put(ctx, "OP1", "/cams/x.jpg", "image/jpeg", strings.NewReader("y")); err != nil || created {
		t.Fatalf("overwrite: %v %v", created, err)
	}
	// Operators are separate.
	if _, err := f.Stat(ctx, "OP2", "/cams/x.jpg"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("other operator: %v", err)
	}
	if u, err := f.SignedURL(ctx, "OP1", "/cams/x.jpg", 0); err != nil || !strings.HasPrefix(u, "http://127.0.0.1:1"+blob.SignedPath+"?") {
		t.Fatalf("signed URL: %s %v", u, err)
	}
	if err := f.Delete(ctx, "OP1", "/cams/x.jpg"); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(ctx, "OP1", "/cams/x.jpg"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("delete again: %v", err)
	}
	for _, p := range []string{"", "/", "/a//b", "/a/./b", "/../b", `/a\b`} {
		if _, err := harvest.CleanPath(p, false); !errors.As(err, &ae) || ae.Code != api.CodeBadPath {
			t.Errorf("CleanPath(%q): %v", p, err)
		}
	}
	if p, err := harvest.CleanPath("/a/b/", true); err != nil || p != "a/b" {
		t.Errorf("CleanPath dir: %q %v", p, err)
	}
}
