package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// TestApplyAndRemoteValidate runs apply and validate -remote against a
// real server, through a proxy that counts the requests sent.
func TestApplyAndRemoteValidate(t *testing.T) {
	ts := servertest.Start(t)
	target, _ := url.Parse(ts.URL)
	var requests atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	t.Setenv("NAGARE_ENDPOINT", front.URL)
	t.Setenv("NAGARE_AUTH_KEY_ID", servertest.RootKeyID)
	t.Setenv("NAGARE_AUTH_KEY", servertest.RootKey)

	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	app := func(name, url string) string {
		return "name: " + name + "\nchannels:\n  in:\n    sources:\n      - webhook: {}\n    actions:\n      - name: fwd\n        webhook: {url: '" + url + "'}\n"
	}
	v1 := write("v1.yaml", app("thermo", "http://127.0.0.1:9/a"))
	v2 := write("v2.yaml", app("thermo", "http://127.0.0.1:9/b"))
	other := write("other.yaml", app("other", "http://127.0.0.1:9/c"))
	bad := write("bad.yaml", "name: never\nchannels:\n  in:\n    actions:\n      - name: a\n        webhok: {url: 'http://x'}\n        output: {channel: out}\n")
	badDash := write("baddash.yaml", "name: d\npanels:\n  - title: x\n    kind: gauge\n")
	// Valid offline; only the server knows the credential is missing.
	noCred := write("nocred.yaml", "name: needs-cred\nchannels:\n  in:\n    actions:\n      - name: post\n        webhook:\n          url: http://127.0.0.1:9/x\n          basicAuth: sink-login\n")

	for _, tc := range []struct {
		name     string
		args     []string
		stdin    string
		code     int
		out, err []string // substrings expected in stdout / stderr
		sent     bool     // whether any request reaches the server
	}{
		{name: "create", args: []string{"apply", "-f", v1}, out: []string{"app thermo created (version 1)"}, sent: true},
		{name: "update", args: []string{"apply", "-f", v2}, out: []string{"app thermo updated (version 2)"}, sent: true},
		{name: "stdin and a second file", args: []string{"apply", "-f", "-", "-f", other}, stdin: app("piped", "http://127.0.0.1:9/d"),
			out: []string{"app piped created (version 1)", "app other created (version 1)"}, sent: true},
		{name: "invalid file: nothing sent", args: []string{"apply", "-f", v1, "-f", bad}, code: 1,
			err: []string{"bad.yaml: 3 problem(s)", `bad.yaml:6:9: unknown field "webhok" in an action`, `bad.yaml:7:27: unknown channel "out"`, "nothing was applied"}},
		{name: "invalid stdin: positions under <stdin>", args: []string{"apply", "-f", "-"}, stdin: "name: x\nchannels: {in: {actions: [{name: a, delay: {duration: 1h}}]}}\n", code: 1,
			err: []string{"<stdin>:2:"}},
		{name: "same app twice", args: []string{"apply", "-f", v1, "-f", v2}, code: 1, err: []string{"both define app thermo"}},
		{name: "missing file", args: []string{"apply", "-f", filepath.Join(dir, "nope.yaml")}, code: 1, err: []string{"nope.yaml: no such file"}},
		{name: "missing credential on apply", args: []string{"apply", "-f", noCred}, code: 1, sent: true,
			err: []string{`nocred.yaml:8:22: basicAuth: no credential "sink-login" in the credentials store`}},
		{name: "validate offline misses the credential", args: []string{"validate", "-f", noCred}, out: []string{"nocred.yaml: OK"}},
		{name: "validate -remote reports it", args: []string{"validate", "-remote", "-f", noCred}, code: 1, sent: true,
			err: []string{"nocred.yaml: 1 problem(s)", `nocred.yaml:8:22: basicAuth: no credential "sink-login"`}},
		{name: "validate -remote: local and server problems together", args: []string{"validate", "-remote", "-f", bad}, code: 1, sent: true,
			err: []string{"bad.yaml: 3 problem(s)", "bad.yaml:5:9:", "bad.yaml:6:9:", "bad.yaml:7:27:"}},
		{name: "validate -remote OK", args: []string{"validate", "-remote", "-f", v1}, out: []string{"v1.yaml: OK (app thermo: 1 channel(s), 1 action(s))"}, sent: true},
		{name: "a dashboard", args: []string{"apply", "-f", "../../examples/crowding/dashboard.yaml"}, out: []string{"dashboard crowding created (version 1)"}, sent: true},
		{name: "an invalid dashboard: nothing sent", args: []string{"apply", "-f", badDash}, code: 1,
			err: []string{"baddash.yaml:", "nothing was applied"}},
		{name: "no files", args: []string{"apply"}, code: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdin = strings.NewReader(tc.stdin)
			t.Cleanup(func() { stdin = os.Stdin })
			before := requests.Load()
			var out, errb bytes.Buffer
			code := Main(tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			for _, s := range tc.out {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q", s)
				}
			}
			for _, s := range tc.err {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q", s)
				}
			}
			if sent := requests.Load() > before; sent != tc.sent {
				t.Errorf("requests sent: %v, want %v", sent, tc.sent)
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
			}
		})
	}

	// The server holds what was applied, and nothing from failed runs.
	var got struct {
		Version  int64
		Channels []struct{ Actions []struct{ Name string } }
	}
	ts.Root.Do("GET", "/v1/flux/apps/thermo", nil).JSON(&got)
	if got.Version != 2 {
		t.Errorf("thermo version %d, want 2", got.Version)
	}
	src := ts.Root.Do("GET", "/v1/flux/apps/thermo?format=yaml", nil)
	if !strings.Contains(string(src.Body), "127.0.0.1:9/b") {
		t.Errorf("thermo source: %s", src.Body)
	}
	for _, name := range []string{"never", "needs-cred", "x"} {
		if res := ts.Root.Do("GET", "/v1/flux/apps/"+name, nil); res.Status != 404 {
			t.Errorf("app %s: %d, want 404", name, res.Status)
		}
	}
}
