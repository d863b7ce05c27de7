package flow

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/s3blob"

	"github.com/nagare-iot/nagare/internal/credentials"
)

const (
	blobSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYBLOBSECRET"
	// Azurite's published development key: fine to have in a test.
	blobAzureKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// blobYAML is an app with one blob action configured by fields (YAML
// flow-mapping text).
func blobYAML(fields string) string {
	return "name: a\nchannels:\n  c:\n    actions:\n      - name: up\n        blob: {" + fields + "}\n"
}

// The blob action's config is checked offline: every problem named with
// its position, before any event.
func TestBlobValidation(t *testing.T) {
	lookup := Lookup{Credential: func(id string) bool { return id == "aws" || id == "az" }}
	ok := []string{
		`url: "s3://soracam-images?region=ap-northeast-1", key: "a/b.jpg", content: x, credentials: aws`,
		`url: "s3://soracam-images?region=us-east-1&endpoint=http://127.0.0.1:9000&use_path_style=true", key: k, from: "https://x/y.jpg", credentials: aws`,
		`url: "azblob://soracam-images", key: "${payload.k}", filesPath: /a.jpg, credentials: az, metadata: {capture_time: "${now()}", device_id: x}, sizeMetadata: file_size`,
		`url: "azblob://soracam-images?domain=127.0.0.1:10000&protocol=http", key: k, content: {a: 1}, credentials: az`,
		`url: "file:///srv/archive", key: "2025/01/28/x.jpg", content: x`,
		`url: "${payload.store}", key: k, content: x`, // checked when it runs
	}
	for _, f := range ok {
		if _, err := Parse("a.yaml", []byte(blobYAML(f)), lookup); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	bad := []struct{ fields, want string }{
		{`key: k, content: x`, `blob needs "url"`},
		{`url: "file:///a", content: x`, `blob needs "key"`},
		{`url: "file:///a", key: k`, "needs exactly one of from, content, filesPath (got 0)"},
		{`url: "file:///a", key: k, content: x, from: "http://x"`, "needs exactly one of from, content, filesPath (got 2)"},
		{`url: "s3://soracam-images", key: k, content: x, credentials: aws`, "url: s3:// needs ?region="},
		{`url: "s3://soracam-images?region=x", key: k, content: x`, "credentials: s3:// needs an aws-credentials credential"},
		{`url: "azblob://soracam-images", key: k, content: x`, "credentials: azblob:// needs an azure-storage credential"},
		{`url: "s3://soracam-images?region=x&profile=p", key: k, content: x, credentials: aws`, `url: unknown parameter "profile" for s3:// (known: region, endpoint, use_path_style, disable_https)`},
		{`url: "s3://Bad_Bucket?region=x", key: k, content: x, credentials: aws`, `bucket "Bad_Bucket"`},
		{`url: "s3://b-1?region=x&endpoint=ftp://h", key: k, content: x, credentials: aws`, "endpoint must be an http(s) URL"},
		{`url: "s3://b-1/prefix?region=x", key: k, content: x, credentials: aws`, "a path does not go in the URL; put it in key"},
		{`url: "azblob://soracam-images?storage_account=acct", key: k, content: x, credentials: az`, "the account comes from the credential"},
		{`url: "azblob://Images", key: k, content: x, credentials: az`, `container "Images"`},
		{`url: "azblob://imgs?protocol=ftp", key: k, content: x, credentials: az`, "protocol must be http or https"},
		{`url: "azblob://imgs?localemu=maybe", key: k, content: x, credentials: az`, "localemu must be true or false"},
		{`url: "file://./rel", key: k, content: x`, "file:// needs an absolute directory"},
		{`url: "file:///a?create_dir=1", key: k, content: x`, "file:// takes no parameters"},
		{`url: "gs://bucket", key: k, content: x`, `"gs://bucket" is not a store URL`},
		{`url: "s3://user:pw@bucket?region=x", key: k, content: x, credentials: aws`, "no user or password in the URL"},
		{`url: "file:///a", key: /abs.jpg, content: x`, "must not start with /"},
		{`url: "file:///a", key: "a/../b", content: x`, "empty, . or .. segment"},
		{`url: "file:///a", key: "a//b", content: x`, "empty, . or .. segment"},
		{`url: "file:///a", key: "dir/", content: x`, "ends with /"},
		{`url: "file:///a", key: k, from: "ftp://x/y"`, "from must be an http or https URL"},
		{`url: "file:///a", key: k, content: x, metadata: {CaptureTime: x}`, `metadata: key "CaptureTime": use lower-case letters`},
		{`url: "file:///a", key: k, content: x, metadata: {1st: x}`, `metadata: key "1st"`},
		{`url: "file:///a", key: k, content: x, metadata: {file_size: x}, sizeMetadata: file_size`, `sizeMetadata: "file_size" is also set in metadata`},
		{`url: "file:///a", key: k, content: x, sizeMetadata: File-Size`, `sizeMetadata: key "File-Size"`},
		{`url: "s3://b-1?region=x", key: k, content: x, credentials: nope`, `credentials: no credential "nope"`},
		{`url: "file:///a", key: k, content: x, maxBytes: 0`, "maxBytes: 0"},
		{`url: "file:///a", key: k, content: x, bucket: b`, `unknown field "bucket" in blob`},
	}
	for _, c := range bad {
		_, err := Parse("a.yaml", []byte(blobYAML(c.fields)), lookup)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.fields, err, c.want)
		} else if !strings.Contains(err.Error(), "a.yaml:6:") {
			t.Errorf("%s: no position in %v", c.fields, err)
		}
	}
}

func TestCheckBlobKey(t *testing.T) {
	for _, k := range []string{"a.jpg", "2025/01/28/soracam_20250128_120500_123.jpg", "日本/画像.jpg", "a b/c+d=e.jpg"} {
		if msg := checkBlobKey(k); msg != "" {
			t.Errorf("%q: %s", k, msg)
		}
	}
	for _, k := range []string{"", "/a", "a/", "a//b", "./a", "a/..", "a\\b", "a\nb", "\xff", strings.Repeat("a", 1025)} {
		if msg := checkBlobKey(k); msg == "" {
			t.Errorf("%q accepted", k)
		}
	}
}

// testJPEG is a small real JPEG.
func testJPEG(t *testing.T) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// blobServer serves the picture a camera export would: with a length,
// chunked (no length), or failing.
func blobServer(t *testing.T, pic []byte) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/export.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(pic)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		for i := 0; i < len(pic); i += 100 {
			w.Write(pic[i:min(i+100, len(pic))])
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "export expired", 403) })
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "try later", 503) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func (e *actEnv) credential(t *testing.T, id, typ string, vals map[string]any) {
	t.Helper()
	if _, err := e.creds.Create(t.Context(), e.op, id, &credentials.Input{Type: typ, Credentials: vals}); err != nil {
		t.Fatal(err)
	}
}

// TestBlobActionFile writes to a local directory from each kind of
// content, with metadata, and refuses directories the server did not
// allow.
func TestBlobActionFile(t *testing.T) {
	e := newActEnv(t, false)
	ctx := t.Context()
	pic := testJPEG(t)
	srv := blobServer(t, pic)
	root := t.TempDir()
	e.deps.BlobFileRoots = []string{root, "/nonexistent/other"}
	dir := filepath.Join(root, "lake")
	if _, _, err := e.files.Put(ctx, e.op, "/cams/latest.jpg", "image/jpeg", bytes.NewReader(pic)); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"capture_time": "2025-01-28T03:05:00.123Z", "content_type": "image/jpeg", "device_id": "7CDDDEADBEEF", "source": "soracom_api"}
	cases := []struct {
		name     string
		cfg      map[string]any
		want     []byte
		wantType string
	}{
		{"download", map[string]any{"from": srv.URL + "/export.jpg", "metadata": meta, "sizeMetadata": "file_size"}, pic, "image/jpeg"},
		{"chunked download", map[string]any{"from": srv.URL + "/chunked", "metadata": meta, "sizeMetadata": "file_size"}, pic, "image/jpeg"},
		{"chunked, streamed", map[string]any{"from": srv.URL + "/chunked"}, pic, "image/jpeg"},
		{"harvest file", map[string]any{"filesPath": "/cams/latest.jpg", "sizeMetadata": "file_size"}, pic, "image/jpeg"},
		{"text", map[string]any{"content": "hello"}, []byte("hello"), "text/plain; charset=utf-8"},
		{"json", map[string]any{"content": map[string]any{"a": 1.0}}, []byte(`{"a":1}`), "application/json"},
		{"type given", map[string]any{"content": "x,y", "contentType": "text/csv"}, []byte("x,y"), "text/csv"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := fmt.Sprintf("2025/01/28/soracam_20250128_030500_%03d.jpg", i)
			c.cfg["url"], c.cfg["key"] = "file://"+dir, key
			out, err := e.run(ctx, "blob", c.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			res := out.(map[string]any)
			if res["url"] != "file://"+dir || res["key"] != key || res["size"] != int64(len(c.want)) || res["contentType"] != c.wantType || res["etag"] == "" {
				t.Errorf("result %v", res)
			}
			got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
			if err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("stored %d bytes, %v", len(got), err)
			}
			b, err := fileblob.OpenBucket(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			a, err := b.Attributes(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if a.ContentType != c.wantType {
				t.Errorf("content type %q", a.ContentType)
			}
			if _, sized := c.cfg["sizeMetadata"]; sized && a.Metadata["file_size"] != fmt.Sprint(len(c.want)) {
				t.Errorf("metadata %v", a.Metadata)
			}
			if m, ok := c.cfg["metadata"].(map[string]string); ok && (a.Metadata["capture_time"] != m["capture_time"] || a.Metadata["device_id"] != m["device_id"]) {
				t.Errorf("metadata %v", a.Metadata)
			}
		})
	}

	fails := []struct {
		name      string
		cfg       map[string]any
		permanent bool
		want      []string
	}{
		{"too large", map[string]any{"from": srv.URL + "/export.jpg", "maxBytes": 100}, true, []string{"exceeds maxBytes (100 bytes)", "nothing was stored"}},
		{"too large chunked", map[string]any{"from": srv.URL + "/chunked", "maxBytes": 100}, true, []string{"exceeds maxBytes (100 bytes)"}},
		{"too large chunked, sized", map[string]any{"from": srv.URL + "/chunked", "maxBytes": 100, "sizeMetadata": "file_size"}, true, []string{"exceeds maxBytes (100 bytes)"}},
		{"download refused", map[string]any{"from": srv.URL + "/gone"}, true, []string{"download: 403", "export expired"}},
		{"download busy", map[string]any{"from": srv.URL + "/busy"}, false, []string{"download: 503"}},
		{"no such file", map[string]any{"filesPath": "/cams/none.jpg"}, true, []string{"/cams/none.jpg", "not found"}},
		{"not allowed", map[string]any{"url": "file:///etc/nagare", "content": "x"}, true, []string{"file:///etc/nagare is not below a directory allowed by blob-file-roots"}},
		{"sibling of a root", map[string]any{"url": "file://" + root + "-evil", "content": "x"}, true, []string{"is not below a directory allowed"}},
		{"missing everything", map[string]any{"url": "", "key": "", "content": "x"}, true, []string{"blob: missing configuration: url (rendered empty), key (rendered empty)"}},
		{"rendered key", map[string]any{"key": "/x.jpg", "content": "x"}, true, []string{"must not start with /"}},
		{"metadata too big", map[string]any{"content": "x", "metadata": map[string]string{"a": strings.Repeat("x", 3000)}}, true, []string{"metadata is 3001 bytes; at most 2048"}},
	}
	for _, c := range fails {
		t.Run(c.name, func(t *testing.T) {
			cfg := map[string]any{"url": "file://" + dir, "key": "fail/" + strings.ReplaceAll(c.name, " ", "-") + ".jpg"}
			for k, v := range c.cfg {
				cfg[k] = v
			}
			_, err := e.run(ctx, "blob", cfg, nil)
			mustFail(t, err, c.permanent, c.want...)
		})
	}
	// Nothing of a failed upload stays (an empty folder may).
	filepath.WalkDir(filepath.Join(dir, "fail"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("a failed upload left %s", p)
		}
		return nil
	})
	e.deps.BlobFileRoots = nil
	_, err := e.run(ctx, "blob", map[string]any{"url": "file://" + dir, "key": "k", "content": "x"}, nil)
	mustFail(t, err, true, "file:// is not allowed on this server: set blob-file-roots")
}

// s3Fake is gofakes3 in process; its URL is for the endpoint parameter.
func s3Fake(t *testing.T, autoBucket bool) string {
	t.Helper()
	faker := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(autoBucket))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

func openS3(t *testing.T, endpoint, bucket string) *blob.Bucket {
	t.Helper()
	cl := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: awscreds.NewStaticCredentialsProvider("AKIDBLOBTEST", blobSecretKey, "")})
	b, err := s3blob.OpenBucket(t.Context(), cl, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestBlobActionS3 uploads to an in-process S3, and classifies the
// store's refusals and failures without ever quoting the secret key.
func TestBlobActionS3(t *testing.T) {
	e := newActEnv(t, false)
	ctx := t.Context()
	pic := testJPEG(t)
	srv := blobServer(t, pic)
	e.credential(t, "lake-aws", "aws-credentials", map[string]any{"accessKeyId": "AKIDBLOBTEST", "secretAccessKey": blobSecretKey})
	e.credential(t, "lake-az", "azure-storage", map[string]any{"accountName": "devstoreaccount1", "accountKey": blobAzureKey})
	fake := s3Fake(t, true)
	storeURL := "s3://soracam-images?region=us-east-1&endpoint=" + url.QueryEscape(fake)
	key := "2025/01/28/soracam_20250128_030500_123.jpg"
	out, err := e.run(ctx, "blob", map[string]any{"url": storeURL, "key": key, "from": srv.URL + "/export.jpg", "credentials": "lake-aws",
		"metadata": map[string]string{"device_id": "7CDDDEADBEEF", "capture_time": "2025-01-28T12:05:00.123+09:00"}, "sizeMetadata": "file_size"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := out.(map[string]any)
	if res["url"] != "s3://soracam-images" || res["key"] != key || res["size"] != int64(len(pic)) || res["contentType"] != "image/jpeg" || res["etag"] == nil {
		t.Errorf("result %v", res)
	}
	b := openS3(t, fake, "soracam-images")
	got, err := b.ReadAll(ctx, key)
	if err != nil || !bytes.Equal(got, pic) {
		t.Fatalf("read back %d bytes: %v", len(got), err)
	}
	a, err := b.Attributes(ctx, key)
	if err != nil || a.ContentType != "image/jpeg" || a.Metadata["file_size"] != fmt.Sprint(len(pic)) ||
		a.Metadata["device_id"] != "7CDDDEADBEEF" || a.Metadata["capture_time"] != "2025-01-28T12:05:00.123+09:00" {
		t.Fatalf("attributes %+v %v", a, err)
	}

	// A store that answers with errors.
	var status int
	var body string
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(failing.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	noBucket := s3Fake(t, false)
	cases := []struct {
		name      string
		cfg       map[string]any
		status    int
		body      string
		permanent bool
		want      []string
	}{
		{"no credentials", map[string]any{"credentials": ""}, 0, "", true, []string{"blob: missing configuration: credentials (s3:// needs an aws-credentials credential"}},
		{"unknown credential", map[string]any{"credentials": "nope"}, 0, "", true, []string{`"nope" not found in the credentials store`}},
		{"wrong credential type", map[string]any{"credentials": "lake-az"}, 0, "", true, []string{`"lake-az" is of type azure-storage; aws-credentials is needed`}},
		{"no region", map[string]any{"url": "s3://soracam-images"}, 0, "", true, []string{"s3:// needs ?region="}},
		{"no bucket", map[string]any{"url": "s3://missing-bucket?region=us-east-1&endpoint=" + url.QueryEscape(noBucket)}, 0, "", true,
			[]string{"404", "NoSuchBucket", `does the bucket "missing-bucket" exist? create it first`}},
		{"denied", map[string]any{"url": "s3://b-1?region=us-east-1&endpoint=" + url.QueryEscape(failing.URL)}, 403,
			`<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>`, true,
			[]string{"403 Forbidden (SignatureDoesNotMatch)", "check the credential"}},
		{"server error", map[string]any{"url": "s3://b-1?region=us-east-1&endpoint=" + url.QueryEscape(failing.URL)}, 503,
			`<Error><Code>SlowDown</Code><Message>Reduce your request rate</Message></Error>`, false, []string{"503", "SlowDown"}},
		{"unreachable", map[string]any{"url": "s3://b-1?region=us-east-1&endpoint=" + url.QueryEscape(closed.URL)}, 0, "", false, []string{"connection refused"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body = c.status, c.body
			cfg := map[string]any{"url": storeURL, "key": "k.jpg", "content": "x", "credentials": "lake-aws"}
			for k, v := range c.cfg {
				cfg[k] = v
			}
			_, err := e.run(ctx, "blob", cfg, nil)
			mustFail(t, err, c.permanent, c.want...)
			t.Log(err)
			if strings.Contains(err.Error(), blobSecretKey) || strings.Contains(err.Error(), "wJalrXUtnFEMI") {
				t.Errorf("the secret is in %q", err)
			}
		})
	}
}

// TestBlobActionAzureErrors: answers of Azure Blob Storage (the real
// service is tested against Azurite in examples/) are classified, and the
// account key and SAS token are never in an error.
func TestBlobActionAzureErrors(t *testing.T) {
	e := newActEnv(t, false)
	ctx := t.Context()
	e.credential(t, "az-key", "azure-storage", map[string]any{"accountName": "devstoreaccount1", "accountKey": blobAzureKey})
	e.credential(t, "az-sas", "azure-storage", map[string]any{"accountName": "devstoreaccount1", "sasToken": "sv=2024-11-04&sp=cw&sig=SASSECRETSIGNATURE%3D"})
	e.credential(t, "az-cs", "azure-storage", map[string]any{"connectionString": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + blobAzureKey + ";BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"})
	var status int
	var code string
	var gotQuery []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		gotQuery = append(gotQuery, r.URL.RawQuery)
		w.Header().Set("x-ms-error-code", code)
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>nope</Message></Error>`, code)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	storeURL := "azblob://soracam-images?protocol=http&domain=" + host
	cases := []struct {
		name      string
		cred      string
		url       string
		status    int
		code      string
		permanent bool
		want      []string
	}{
		{"wrong key", "az-key", storeURL, 403, "AuthenticationFailed", true, []string{"403 Forbidden (AuthenticationFailed)", "check the credential"}},
		{"no container", "az-key", storeURL, 404, "ContainerNotFound", true, []string{"404 Not Found (ContainerNotFound)", `does the container "soracam-images" exist`}},
		{"sas refused", "az-sas", storeURL, 403, "AuthorizationPermissionMismatch", true, []string{"403", "AuthorizationPermissionMismatch"}},
		{"busy", "az-key", storeURL, 503, "ServerBusy", false, []string{"503", "ServerBusy"}},
		{"internal", "az-key", storeURL, 500, "InternalError", false, []string{"500"}},
		{"unreachable", "az-cs", "azblob://soracam-images", 0, "", false, []string{"connection refused"}},
		{"connection string and domain", "az-cs", storeURL, 0, "", true, []string{"do not go with a connectionString credential"}},
		{"no credentials", "", storeURL, 0, "", true, []string{"missing configuration: credentials (azblob:// needs an azure-storage credential"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, code = c.status, c.code
			_, err := e.run(ctx, "blob", map[string]any{"url": c.url, "key": "2025/01/28/a.jpg", "content": "x", "credentials": c.cred}, nil)
			mustFail(t, err, c.permanent, c.want...)
			t.Log(err)
			for _, secret := range []string{blobAzureKey, "Eby8vdM02", "SASSECRETSIGNATURE"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("secret %q in %q", secret, err)
				}
			}
		})
	}
	// The SAS token went to the store as the query (and nowhere else).
	if !strings.Contains(strings.Join(gotQuery, " "), "sig=SASSECRETSIGNATURE") {
		t.Errorf("queries %v", gotQuery)
	}
}

func TestFailAction(t *testing.T) {
	e := newActEnv(t, false)
	_, err := e.run(t.Context(), "fail", map[string]any{"message": "export e1 not completed after 10 tries"}, nil)
	mustFail(t, err, true, "export e1 not completed after 10 tries")
	_, err = e.run(t.Context(), "fail", map[string]any{"message": " "}, nil)
	mustFail(t, err, true, "message rendered empty")
}

// The download honours the action's deadline like the other actions.
func TestBlobActionDeadline(t *testing.T) {
	e := newActEnv(t, false)
	root := t.TempDir()
	e.deps.BlobFileRoots = []string{root}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.run(ctx, "blob", map[string]any{"url": "file://" + root, "key": "k", "from": srv.URL}, nil)
	mustFail(t, err, false, "download")
}
