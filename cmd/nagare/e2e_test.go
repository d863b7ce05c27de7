package main_test

// End-to-end tests of the real binary: they build nagare, start
// `nagare serve` on loopback, and talk to it over HTTP like a user would.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/store/storetest"
	"github.com/nagare-iot/nagare/internal/testaddr"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nagare-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "nagare")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building nagare: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
}

// start runs `nagare serve` and waits for /readyz.
func start(t *testing.T, data, addr, db string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--data", data, "--listen", addr)
	cmd.Env = append(os.Environ(), env...)
	if db != "" {
		cmd.Env = append(cmd.Env, "NAGARE_DB="+db)
	}
	p := &proc{t: t, cmd: cmd, addr: addr, done: make(chan struct{})}
	so, _ := cmd.StdoutPipe()
	se, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	copyTo := func(r io.Reader, b *bytes.Buffer) {
		defer wg.Done()
		s := bufio.NewScanner(r)
		for s.Scan() {
			p.mu.Lock()
			b.WriteString(s.Text() + "\n")
			p.mu.Unlock()
		}
	}
	go copyTo(so, &p.stdout)
	go copyTo(se, &p.stderr)
	go func() { wg.Wait(); _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("nagare exited early:\n%s%s", p.out(), p.errs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("nagare not ready:\n%s", p.errs())
	return nil
}

func (p *proc) out() string  { p.mu.Lock(); defer p.mu.Unlock(); return p.stdout.String() }
func (p *proc) errs() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stderr.String() }

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatal("nagare did not stop within 20s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.errs())
	}
}

type api struct {
	t             *testing.T
	base          string
	apiKey, token string
}

func (a *api) do(method, path string, body any, hdr ...string) (int, http.Header, []byte) {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if a.apiKey != "" {
		req.Header.Set("X-Soracom-API-Key", a.apiKey)
		req.Header.Set("X-Soracom-Token", a.token)
	}
	if _, ok := body.(string); !ok && body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func (a *api) must(status int, method, path string, body any, out any, hdr ...string) {
	a.t.Helper()
	got, _, b := a.do(method, path, body, hdr...)
	if got != status {
		a.t.Fatalf("%s %s: got %d %s, want %d", method, path, got, b, status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

func login(t *testing.T, addr, keyID, key string) *api {
	a := &api{t: t, base: "http://" + addr}
	var lr struct{ APIKey, Token string }
	a.must(200, "POST", "/v1/auth", map[string]string{"authKeyId": keyID, "authKey": key}, &lr)
	a.apiKey, a.token = lr.APIKey, lr.Token
	return a
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "nagare ") {
		t.Fatalf("version: %v %s", err, out)
	}
	out, _ = exec.Command(binary, "serve", "-h").CombinedOutput()
	for _, want := range []string{"-listen", "-data", "-db", "-nats", "-files", "NAGARE_ROOT_AUTH_KEY_ID", "-t"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("serve -h lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(binary, "nosuch").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown command "nosuch"`) {
		t.Fatalf("unknown command: %v %s", err, out)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: nowhere\nlisten_addr: x\ntoken-timeout: forever\nlog-format: xml\n"), 0o600)
	cmd := exec.Command(binary, "serve", "-t", "-c", bad, "--db", "mysql://x")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve -t accepted a bad config:\n%s", out)
	}
	for _, want := range []string{
		"bad.yaml:2:1: unknown setting \"listen_addr\"",
		"bad.yaml:3:16: token-timeout: \"forever\" is not a duration",
		"listen: \"nowhere\" is not host:port",
		"log-format: \"xml\" must be text or json",
		"db: unsupported database URL scheme",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("serve -t output lacks %q:\n%s", want, out)
		}
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("listen: 127.0.0.1:9999\nlog-format: json\n"), 0o600)
	out, err = exec.Command(binary, "serve", "-t", "-c", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration OK") {
		t.Fatalf("good config: %v\n%s", err, out)
	}
}

// TestWalkthrough follows the README: start with nothing, use the printed
// root key, create a Harvest group and a device, publish, read back, put
// and get a file; then stop with SIGTERM, restart, and find it all again;
// then SIGKILL right after acknowledged publishes and find them all.
func TestWalkthrough(t *testing.T) {
	data := t.TempDir()
	addr := testaddr.Loopback(t)
	db := storetest.DSN(t)
	p := start(t, data, addr, db)

	// The root key is printed once and saved 0600.
	st, err := os.Stat(filepath.Join(data, "root-auth-key.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("root-auth-key.json: %v %v", err, st)
	}
	var key struct{ AuthKeyID, AuthKey, OperatorID string }
	b, _ := os.ReadFile(filepath.Join(data, "root-auth-key.json"))
	json.Unmarshal(b, &key)
	if !strings.Contains(p.out(), key.AuthKey) {
		t.Fatalf("root key not printed on first start:\n%s", p.out())
	}
	if strings.Contains(p.errs(), key.AuthKey) {
		t.Fatal("root key secret appeared in the log")
	}
	a := login(t, addr, key.AuthKeyID, key.AuthKey)

	var g struct{ GroupID string }
	a.must(201, "POST", "/v1/groups", map[string]any{"tags": map[string]string{"name": "lab"},
		"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}}, &g)
	var d struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string `json:"deviceSecret"`
	}
	a.must(201, "POST", "/v1/devices", map[string]any{"tags": map[string]string{"name": "sensor-1"}}, &d)
	a.must(200, "POST", "/v1/devices/"+d.DeviceID+"/set_group", map[string]string{"groupId": g.GroupID}, nil)

	dev := &api{t: t, base: a.base}
	dev.must(201, "POST", "/v1/devices/"+d.DeviceID+"/publish?device_secret="+d.DeviceSecret, `{"temperature":21.5}`, nil, "Content-Type", "application/json")
	if code, _, _ := dev.do("POST", "/v1/devices/"+d.DeviceID+"/publish?device_secret=wrong", `{}`); code != 403 {
		t.Fatalf("wrong device secret: %d", code)
	}
	var entries []struct {
		Time        int64
		ContentType string
		Content     string
	}
	a.must(200, "GET", "/v1/data/Device/"+d.DeviceID, nil, &entries)
	if len(entries) != 1 || entries[0].Content != `{"temperature":21.5}` || entries[0].ContentType != "application/json" {
		t.Fatalf("entries: %+v", entries)
	}

	a.must(201, "PUT", "/v1/files/private/images/hello.txt", "hello nagare", nil, "Content-Type", "text/plain")
	code, hdr, _ := a.do("GET", "/v1/files/private/images/hello.txt", nil)
	_ = hdr
	if code != 200 { // http.DefaultClient follows the 302 to the signed URL
		t.Fatalf("get file: %d", code)
	}
	_, _, body := a.do("GET", "/v1/files/private/images/hello.txt", nil)
	if string(body) != "hello nagare" {
		t.Fatalf("file body %q", body)
	}

	// Graceful stop and restart: everything is still there, the key is not
	// printed again, and the old token still works.
	p.stop()
	if !strings.Contains(p.errs(), "stopped") {
		t.Errorf("no graceful stop in log:\n%s", p.errs())
	}
	p = start(t, data, addr, db)
	if strings.Contains(p.out(), "authKey") {
		t.Fatalf("root key printed again on restart:\n%s", p.out())
	}
	a.must(200, "GET", "/v1/data/Device/"+d.DeviceID, nil, &entries)
	if len(entries) != 1 {
		t.Fatalf("after restart: %+v", entries)
	}
	_, _, body = a.do("GET", "/v1/files/private/images/hello.txt", nil)
	if string(body) != "hello nagare" {
		t.Fatalf("file after restart %q", body)
	}

	// Acknowledged publishes survive SIGKILL.
	const n = 50
	for i := 0; i < n; i++ {
		dev.must(201, "POST", "/v1/devices/"+d.DeviceID+"/publish", fmt.Sprintf(`{"i":%d}`, i), nil, "x-device-secret", d.DeviceSecret, "Content-Type", "application/json")
	}
	p.kill()
	p = start(t, data, addr, db)
	a.must(200, "GET", "/v1/data/Device/"+d.DeviceID+"?limit=1000", nil, &entries)
	if len(entries) != n+1 {
		t.Fatalf("after SIGKILL: %d entries, want %d", len(entries), n+1)
	}
	p.stop()
}

// TestRootKeyFromEnv: automation sets the root key by environment.
func TestRootKeyFromEnv(t *testing.T) {
	data := t.TempDir()
	addr := testaddr.Loopback(t)
	p := start(t, data, addr, storetest.DSN(t), "NAGARE_ROOT_AUTH_KEY_ID=keyId-automation", "NAGARE_ROOT_AUTH_KEY=secret-automation-0123456789")
	if _, err := os.Stat(filepath.Join(data, "root-auth-key.json")); !os.IsNotExist(err) {
		t.Fatalf("a key file was written although the key came from env: %v", err)
	}
	if strings.Contains(p.out(), "authKey") {
		t.Fatal("printed a generated key although one was given")
	}
	login(t, addr, "keyId-automation", "secret-automation-0123456789")

	// The client commands read NAGARE_ENDPOINT / NAGARE_AUTH_KEY_ID / NAGARE_AUTH_KEY.
	env := append(os.Environ(), "NAGARE_ENDPOINT=http://"+addr,
		"NAGARE_AUTH_KEY_ID=keyId-automation", "NAGARE_AUTH_KEY=secret-automation-0123456789")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("api", "-d", `{"tags":{"name":"cli"}}`, "POST", "/v1/groups"); err != nil || !strings.Contains(out, `"name":"cli"`) {
		t.Fatalf("nagare api POST: %v %s", err, out)
	}
	if out, err := run("api", "GET", "/v1/groups"); err != nil || !strings.Contains(out, `"cli"`) {
		t.Fatalf("nagare api GET: %v %s", err, out)
	}
	if out, err := run("api", "GET", "/v1/devices/nope"); err == nil || !strings.Contains(out, "NTF0001") {
		t.Fatalf("nagare api 404: %v %s", err, out)
	}
	out, err := run("bench", "publish", "-duration", "1s", "-devices", "2", "-concurrency", "2")
	if err != nil || !strings.Contains(out, "publishes/s") || !strings.Contains(out, " 0 failed") {
		t.Fatalf("nagare bench publish: %v %s", err, out)
	}
	env = append(env, "NAGARE_AUTH_KEY=secret-wrong-0123456789")
	if out, err := run("api", "GET", "/v1/groups"); err == nil || !strings.Contains(out, "AUT0003") {
		t.Fatalf("wrong key: %v %s", err, out)
	}
	p.stop()
}

func TestMissingSecretKeyIsFatal(t *testing.T) {
	data := t.TempDir()
	addr := testaddr.Loopback(t)
	p := start(t, data, addr, "")
	p.stop()
	os.Remove(filepath.Join(data, "secret.key"))
	out, err := exec.Command(binary, "serve", "--data", data, "--listen", addr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "secret key missing") {
		t.Fatalf("start without the key: %v\n%s", err, out)
	}
}
