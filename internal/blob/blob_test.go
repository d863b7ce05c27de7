package blob_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	gblob "gocloud.dev/blob"

	"github.com/nagare-iot/nagare/internal/blob"
)

var signKey = []byte("0123456789abcdef0123456789abcdef")

// StartS3 runs an in-process S3 fake and returns an s3:// URL for a bucket
// on it (created on first use). It sets dummy AWS credentials for the test.
func startS3(t *testing.T, bucket string) string {
	t.Helper()
	faker := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
	t.Setenv("AWS_REGION", "us-east-1")
	return "s3://" + bucket + "?region=us-east-1&endpoint=" + url.QueryEscape(srv.URL) + "&use_path_style=true&disable_https=true"
}

// openFile opens a file:// store whose signed URLs are served by an
// httptest server.
func openFile(t *testing.T) (*blob.Store, *httptest.Server) {
	t.Helper()
	var st *blob.Store
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != blob.SignedPath {
			http.NotFound(w, r)
			return
		}
		st.ServeSigned(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := filepath.Join(t.TempDir(), "files")
	st, err := blob.Open(context.Background(), "file://"+dir, t.TempDir(), signKey, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, srv
}

func fetch(t *testing.T, u string) (int, string, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), string(b)
}

// exercise runs the operations Harvest Files relies on against st.
func exercise(t *testing.T, st *blob.Store) {
	ctx := context.Background()
	b := st.Bucket
	put := func(key, ctype, body string, md map[string]string) {
		t.Helper()
		if err := b.Upload(ctx, key, strings.NewReader(body), &gblob.WriterOptions{ContentType: ctype, Metadata: md}); err != nil {
			t.Fatalf("upload %s: %v", key, err)
		}
	}
	put("OP1/cams/a.jpg", "image/jpeg", "jpeg-bytes", map[string]string{"created_ms": "1700000000000"})
	put("OP1/cams/b.txt", "text/plain", "hello", nil)
	put("OP1/cams/sub/c.bin", "application/octet-stream", "c", nil)
	put("OP1/cams-x", "text/plain", "x", nil)
	put("OP1/root.txt", "text/plain", "r", nil)
	put("OP2/secret.txt", "text/plain", "s", nil)

	a, err := b.Attributes(ctx, "OP1/cams/a.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if a.ContentType != "image/jpeg" || a.Size != 10 || a.Metadata["created_ms"] != "1700000000000" || a.ETag == "" {
		t.Fatalf("attributes: %+v", a)
	}
	if _, err := b.Attributes(ctx, "OP1/nope"); !blob.IsNotFound(err) {
		t.Fatalf("missing object: %v", err)
	}
	if _, err := b.Attributes(ctx, "OP1/cams"); !blob.IsNotFound(err) {
		t.Fatalf("directory as object: %v", err)
	}

	list := func(prefix, delim, after string) []string {
		t.Helper()
		var out []string
		it := b.List(st.ListOptions(prefix, delim, after))
		for {
			o, err := it.Next(ctx)
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatalf("list %s: %v", prefix, err)
			}
			if after == "" || o.Key > after {
				out = append(out, o.Key)
			}
		}
	}
	if got, want := list("OP1/", "/", ""), []string{"OP1/cams-x", "OP1/cams/", "OP1/root.txt"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("root listing %v, want %v", got, want)
	}
	if got, want := list("OP1/cams/", "/", ""), []string{"OP1/cams/a.jpg", "OP1/cams/b.txt", "OP1/cams/sub/"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("dir listing %v, want %v", got, want)
	}
	if got, want := list("OP1/cams/", "/", "OP1/cams/a.jpg"), []string{"OP1/cams/b.txt", "OP1/cams/sub/"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("listing after a.jpg %v, want %v", got, want)
	}
	got := list("OP1/cams", "", "")
	if !st.Ordered() {
		sort.Strings(got)
	}
	if want := []string{"OP1/cams-x", "OP1/cams/a.jpg", "OP1/cams/b.txt", "OP1/cams/sub/c.bin"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("prefix listing %v, want %v", got, want)
	}

	u, err := st.SignedURL(ctx, "OP1/cams/a.jpg", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, ctype, body := fetch(t, u); code != 200 || ctype != "image/jpeg" || body != "jpeg-bytes" {
		t.Fatalf("signed GET: %d %s %q", code, ctype, body)
	}

	if err := b.Delete(ctx, "OP1/cams/sub/c.bin"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "OP1/cams/sub/c.bin"); !blob.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
	st.PruneDirs("OP1/cams/sub/c.bin")
	if got, want := list("OP1/cams/", "/", ""), []string{"OP1/cams/a.jpg", "OP1/cams/b.txt"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after delete %v, want %v", got, want)
	}
	// A file may now take the place of the removed directory.
	put("OP1/cams/sub", "text/plain", "now a file", nil)
}

func TestFileStore(t *testing.T) {
	st, _ := openFile(t)
	exercise(t, st)
	ctx := context.Background()

	u, err := st.SignedURL(ctx, "OP1/cams/b.txt", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Content-Security-Policy") != "sandbox" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("signed download headers: %v", res.Header)
	}
	pu, _ := url.Parse(u)
	if pu.Path != blob.SignedPath {
		t.Fatalf("signed URL %s is not served by nagare", u)
	}
	tamper := func(name, value string) string {
		q := pu.Query()
		q.Set(name, value)
		v := *pu
		v.RawQuery = q.Encode()
		return v.String()
	}
	for name, bad := range map[string]string{
		"other object":   tamper("obj", "OP2/secret.txt"),
		"bad signature":  tamper("signature", "AAAA"),
		"later expiry":   tamper("expiry", "99999999999"),
		"signed for PUT": tamper("method", "PUT"),
	} {
		if code, _, body := fetch(t, bad); code != 403 {
			t.Errorf("%s: %d %q", name, code, body)
		}
	}
	expired, err := st.SignedURL(ctx, "OP1/cams/b.txt", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := fetch(t, expired); code != 403 {
		t.Fatalf("expired URL: %d", code)
	}
	res, err = http.Post(u, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 {
		t.Fatalf("POST to signed URL: %d", res.StatusCode)
	}
	// Signed URL of a deleted object.
	if err := st.Bucket.Delete(ctx, "OP1/cams/b.txt"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := fetch(t, u); code != 404 {
		t.Fatalf("deleted object: %d", code)
	}
}

func TestPruneDirs(t *testing.T) {
	st, _ := openFile(t)
	ctx := context.Background()
	dir := strings.TrimPrefix(st.URL, "file://")
	if err := st.Bucket.Upload(ctx, "OP/a/b/c/d.txt", strings.NewReader("d"), &gblob.WriterOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Bucket.Upload(ctx, "OP/a/keep.txt", strings.NewReader("k"), &gblob.WriterOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Bucket.Delete(ctx, "OP/a/b/c/d.txt"); err != nil {
		t.Fatal(err)
	}
	st.PruneDirs("OP/a/b/c/d.txt")
	if _, err := os.Stat(filepath.Join(dir, "OP/a/b")); !os.IsNotExist(err) {
		t.Fatalf("empty directories left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "OP/a/keep.txt")); err != nil {
		t.Fatalf("pruned too much: %v", err)
	}
	// Pruning at an existing file's key leaves it alone; keys escaping the
	// bucket are ignored.
	st.PruneDirs("OP/a/keep.txt")
	st.PruneDirs("../../etc")
	if _, err := os.Stat(filepath.Join(dir, "OP/a/keep.txt")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("bucket root removed: %v", err)
	}
}

func TestS3Store(t *testing.T) {
	raw := startS3(t, "nagare-test")
	st, err := blob.Open(context.Background(), raw, t.TempDir(), signKey, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if strings.Contains(st.URL, "endpoint") {
		t.Fatalf("store URL not redacted: %s", st.URL)
	}
	if !st.Ordered() {
		t.Fatal("S3 lists in key order")
	}
	exercise(t, st)

	// The S3 store signs its own URLs (not nagare's /_blob).
	u, err := st.SignedURL(context.Background(), "OP1/root.txt", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, blob.SignedPath+"?") || !strings.Contains(u, "X-Amz-Signature") {
		t.Fatalf("not an S3 presigned URL: %s", u)
	}
	// ListOptions pages through more than one S3 page with a start key.
	ctx := context.Background()
	for i := 0; i < 25; i++ {
		k := "OP3/d/" + string(rune('a'+i)) + ".txt"
		if err := st.Bucket.Upload(ctx, k, strings.NewReader("x"), &gblob.WriterOptions{ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
	}
	objs, _, err := st.Bucket.ListPage(ctx, gblob.FirstPageToken, 5, st.ListOptions("OP3/d/", "/", "OP3/d/t.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if want := []string{"OP3/d/u.txt", "OP3/d/v.txt", "OP3/d/w.txt", "OP3/d/x.txt", "OP3/d/y.txt"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("start-after page %v, want %v", keys, want)
	}
}
