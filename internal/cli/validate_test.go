package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("name: ok\nchannels:\n  in:\n    sources:\n      - webhook: {}\n    actions:\n      - name: fwd\n        webhook: {url: 'http://127.0.0.1/x', body: {t: '${now()}'}}\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nchannels:\n  in:\n    actions:\n      - name: a\n        api: {operation: 'Nope:nope', user: u}\n        output: {channel: out}\n"), 0o600)

	var out, errb bytes.Buffer
	if code := Main([]string{"validate", "-f", good}, &out, &errb); code != 0 || !strings.Contains(out.String(), "OK (app ok: 1 channel(s), 1 action(s))") {
		t.Fatalf("good: %d %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code := Main([]string{"validate", "-f", good, "-f", bad}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), `bad.yaml:6:26: operation: no API operation "Nope:nope"`) ||
		!strings.Contains(errb.String(), `bad.yaml:7:27: unknown channel "out"`) || !strings.Contains(out.String(), "good.yaml: OK") {
		t.Fatalf("bad: %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
	if code := Main([]string{"validate"}, &out, &errb); code != 2 {
		t.Fatalf("no files: %d", code)
	}
}
