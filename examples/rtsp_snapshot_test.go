package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/servertest"
)

// rtspSeedURL is the seed's request URL; the README writes
// rtspReadmeURL for it and changes nothing else.
const (
	rtspSeedURL   = `"https://api.soracom.io/v1/sims/{sim_id}/downlink/rtsp"`
	rtspReadmeURL = `"$API/sims/$SIM_ID/downlink/rtsp"`
	rtspSimID     = "8942310022000012345" // setup.sh's default
	rtspPassword  = "password123"         // the seed's
)

// Seed 002 end to end: a camera streaming real footage (H.264, Basic auth)
// on the RTSP port 554 of a loopback address, set up with setup.sh exactly
// as the README says, then the seed's three curl requests read from the
// README (and checked to be the seed's own, apart from the base URL) —
// two JPEG answers and one picture stored in Harvest Files — and the
// errors a user meets: a wrong credential ID or password, a device that is
// down or silent, something that is not an RTSP H.264 camera.
func TestRtspSnapshotSeed002(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run setup.sh")
	}
	footage := camtest.Fixture(t, camsim.KindVtest)
	cam, port := rtspCamera(t, camsim.Config{Path: "/live/stream", File: footage, User: "user", Pass: rtspPassword, Methods: []string{"basic"}})
	camHost, _, _ := net.SplitHostPort(cam.Addr())
	ts := servertest.Start(t)
	nagare := rtspBuildNagare(t)

	// Set up as the README says; twice, since it must be idempotent.
	rtspSetup(t, ts, nagare, map[string]string{"CAMERA_HOST": "192.0.2.1", "RTSP_PASSWORD": "an old password"})
	env := rtspSetup(t, ts, nagare, map[string]string{"CAMERA_HOST": camHost})
	if env["API"] != ts.URL+"/v1" || env["SIM_ID"] != rtspSimID || env["X_SORACOM_API_KEY"] == "" || env["X_SORACOM_TOKEN"] == "" {
		t.Fatalf("setup.sh exported %v", env)
	}
	var sim struct{ SimID, IPAddress string }
	ts.Root.Do("GET", "/v1/sims/"+rtspSimID, nil).JSON(&sim)
	if sim.IPAddress != camHost {
		t.Fatalf("SIM after setup.sh: %+v", sim)
	}
	var sims []struct{ SimID string }
	ts.Root.Do("GET", "/v1/sims", nil).JSON(&sims)
	var cred struct{ Type string }
	ts.Root.Do("GET", "/v1/credentials/credential-id", nil).JSON(&cred)
	if len(sims) != 1 || cred.Type != "psk" {
		t.Fatalf("after setup.sh twice: sims %+v, credential type %q", sims, cred.Type)
	}

	// The three requests, as the README writes them and as the seed does.
	readme, err := os.ReadFile("rtsp-snapshot/README.md")
	if err != nil {
		t.Fatal(err)
	}
	seedFiles, _ := filepath.Glob(shared + "seeds/002_*.txt")
	if len(seedFiles) != 1 {
		t.Fatalf("seed 002 not found under %s", shared)
	}
	seed, err := os.ReadFile(seedFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	reqs := rtspCurls(t, string(readme))
	seedReqs := rtspCurls(t, string(seed))
	if len(reqs) != 3 || len(seedReqs) != 3 {
		t.Fatalf("%d requests in the README, %d in the seed; want 3 and 3", len(reqs), len(seedReqs))
	}
	for i := range reqs {
		if got := strings.Replace(reqs[i], rtspReadmeURL, rtspSeedURL, 1); got != seedReqs[i] {
			t.Errorf("README request %d differs from the seed's beyond the base URL:\n%s\n--- seed ---\n%s", i+1, reqs[i], seedReqs[i])
		}
	}
	send := func(i int, env map[string]string, edit func(body map[string]any)) (*http.Response, []byte, rtspRequest) {
		t.Helper()
		r := rtspParseCurl(t, reqs[i], env)
		var body map[string]any
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Fatalf("request %d: body %q: %v", i+1, r.Body, err)
		}
		if port != 554 { // the camera could not listen on 554 here
			body["port"] = port
		}
		if edit != nil {
			edit(body)
		}
		b, _ := json.Marshal(body)
		if port == 554 && edit == nil {
			b = []byte(r.Body) // the README's bytes
		}
		res, out := rtspDo(t, r, b)
		return res, out, r
	}
	if port != 554 {
		t.Logf("port 554 is not available here: the camera listens on %d and the requests say so", port)
	}

	// 1. Basic authentication, the password in the request.
	res, img, r := send(0, env, nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" || r.Output != "snapshot.jpg" {
		t.Fatalf("request 1: %d %s %q: %.300s", res.StatusCode, res.Header.Get("Content-Type"), r.Output, img)
	}
	rtspCheckPicture(t, "request 1", footage, img)
	t.Logf("request 1: a %d-byte JPEG", len(img))
	if _, err := strconv.ParseInt(res.Header.Get("X-Nagare-Capture-Time"), 10, 64); err != nil {
		t.Errorf("request 1: X-Nagare-Capture-Time %q", res.Header.Get("X-Nagare-Capture-Time"))
	}
	// The camera saw the seed's path and Basic credentials.
	basic := false
	for _, q := range cam.Requests() {
		if q.Method == "DESCRIBE" && q.Path == "/live/stream" && strings.HasPrefix(q.Authorization, "Basic ") {
			basic = true
		}
	}
	if !basic {
		t.Errorf("the camera got no DESCRIBE of /live/stream with Basic credentials: %+v", cam.Requests())
	}

	// 2. The password from the credentials store.
	res, img, r = send(1, env, nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" || r.Output != "snapshot.jpg" {
		t.Fatalf("request 2: %d %s: %.300s", res.StatusCode, res.Header.Get("Content-Type"), img)
	}
	rtspCheckPicture(t, "request 2", footage, img)

	// 3. Stored in Harvest Files at /camera/snapshots/{sim_id}_{time}.jpg.
	before := time.Now().UnixMilli()
	res, out, _ := send(2, env, nil)
	after := time.Now().UnixMilli()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("request 3: %d %s: %.300s", res.StatusCode, res.Header.Get("Content-Type"), out)
	}
	var entry struct {
		FilePath, Filename, Directory, ContentType string
		ContentLength                              int64
		IsDirectory                                bool
	}
	if err := json.Unmarshal(out, &entry); err != nil {
		t.Fatalf("request 3: %s: %v", out, err)
	}
	m := regexp.MustCompile(`^/camera/snapshots/` + rtspSimID + `_(\d{13})\.jpg$`).FindStringSubmatch(entry.FilePath)
	if m == nil || entry.ContentType != "image/jpeg" || entry.Directory != "/camera/snapshots/" || entry.IsDirectory ||
		entry.Filename != strings.TrimPrefix(entry.FilePath, "/camera/snapshots/") {
		t.Fatalf("request 3: file entry %s", out)
	}
	// {time} is the picture's time (UNIX ms), taken during the request.
	if at, _ := strconv.ParseInt(m[1], 10, 64); at < before-1000 || at > after {
		t.Errorf("request 3: {time} %d is not within the request (%d…%d)", at, before, after)
	}
	stored := ts.Root.Do("GET", "/v1/files/private"+entry.FilePath, nil)
	if stored.Status != 302 {
		t.Fatalf("the stored snapshot: %d %s", stored.Status, stored.Body)
	}
	dl, err := http.Get(stored.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	img, _ = io.ReadAll(dl.Body)
	dl.Body.Close()
	if dl.StatusCode != 200 || int64(len(img)) != entry.ContentLength {
		t.Fatalf("download of the stored snapshot: %d, %d bytes (entry says %d)", dl.StatusCode, len(img), entry.ContentLength)
	}
	rtspCheckPicture(t, "stored snapshot", footage, img)
	var listing []struct{ FilePath string }
	ts.Root.Do("GET", "/v1/files/private/camera/snapshots/", nil).JSON(&listing)
	if len(listing) != 1 || listing[0].FilePath != entry.FilePath {
		t.Errorf("/camera/snapshots/ holds %+v", listing)
	}

	// A least-privilege caller: a SAM user allowed only Sim:sendDownlinkRtsp
	// sends request 3; one without it is refused.
	for _, tc := range []struct {
		user, allow string
		status      int
	}{{"snapshot-bot", "Sim:sendDownlinkRtsp", 200}, {"sim-reader", "Sim:getSim", 403}} {
		c := rtspUser(t, ts, tc.user, tc.allow)
		userEnv := map[string]string{"API": env["API"], "SIM_ID": env["SIM_ID"], "X_SORACOM_API_KEY": c.APIKey, "X_SORACOM_TOKEN": c.Token}
		res, out, _ := send(2, userEnv, nil)
		if res.StatusCode != tc.status {
			t.Errorf("user %s (%s): %d %s; want %d", tc.user, tc.allow, res.StatusCode, out, tc.status)
		}
	}

	// Errors: clear statuses, {code, message}, never the password.
	silent := rtspSilentDevice(t)
	closedPort := rtspClosedPort(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<html>a web server</html>") }))
	t.Cleanup(web.Close)
	webPort := web.Listener.Addr().(*net.TCPAddr).Port
	mjpeg := camtest.Camera(t, camsim.Config{Codec: "MJPEG", Path: "/live/stream"})
	_, mp, _ := net.SplitHostPort(mjpeg.Addr())
	mjpegPort, _ := strconv.Atoi(mp)
	noKeyframes := camtest.Camera(t, camsim.Config{File: footage, Path: "/live/stream", NoKeyframes: true})
	_, nkp, _ := net.SplitHostPort(noKeyframes.Addr())
	noKeyframesPort, _ := strconv.Atoi(nkp)
	// A SIM's address is an address, not a URL.
	if res := ts.Root.Do("POST", "/v1/sims", map[string]any{"simId": "rtsp-url", "ipAddress": "rtsp://127.0.0.1:554/live/stream"}); res.Status != 400 {
		t.Errorf("a URL as a SIM's ipAddress: %d %s", res.Status, res.Body)
	}
	ts.Root.Do("POST", "/v1/sims", map[string]any{"simId": "rtsp-loopback", "ipAddress": "127.0.0.1"})
	ts.Root.Do("POST", "/v1/sims", map[string]any{"simId": "rtsp-no-address"})
	ts.Root.Do("POST", "/v1/credentials/rtsp-api-token", map[string]any{"type": "api-token-credentials", "credentials": map[string]string{"token": "password123"}})

	set := func(kv ...any) func(map[string]any) {
		return func(b map[string]any) {
			for i := 0; i+1 < len(kv); i += 2 {
				b[kv[i].(string)] = kv[i+1]
			}
		}
	}
	onSim := func(id string) map[string]string {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		e["SIM_ID"] = id
		return e
	}
	for _, tc := range []struct {
		name    string
		req     int
		env     map[string]string
		edit    func(map[string]any)
		status  int
		message string
	}{
		{"unknown credentials id", 1, env, func(b map[string]any) {
			b["authentication"].(map[string]any)["passwordCredentialsId"] = "no-such-credential"
		}, 400, "no-such-credential"},
		{"credential not a psk", 1, env, func(b map[string]any) {
			b["authentication"].(map[string]any)["passwordCredentialsId"] = "rtsp-api-token"
		}, 400, "must be a psk credential"},
		{"wrong password", 0, env, func(b map[string]any) {
			b["authentication"].(map[string]any)["password"] = "not-the-password"
		}, 403, "refused the credentials"},
		{"no credentials", 0, env, func(b map[string]any) { delete(b, "authentication") }, 403, "refused the credentials"},
		{"not a path", 0, env, set("path", "http://192.0.2.1/live/stream"), 400, "path must start with /"},
		{"a file path that cannot be", 2, env, func(b map[string]any) {
			b["options"].(map[string]any)["destinations"].(map[string]any)["harvestFiles"].(map[string]any)["filePath"] = "/camera/../{sim_id}.jpg"
		}, 400, ".."},
		{"unknown command", 0, env, set("command", "reboot"), 400, "snapshot"},
		{"unknown SIM", 0, onSim("8942310022000099999"), nil, 404, "8942310022000099999"},
		{"SIM without an address", 0, onSim("rtsp-no-address"), nil, 422, "no IP address"},
		{"device down", 0, onSim("rtsp-loopback"), set("port", closedPort), 502, "unreachable"},
		{"device silent", 0, onSim("rtsp-loopback"), set("port", silent), 502, "timed out"},
		{"no keyframe within 10 s", 0, onSim("rtsp-loopback"), set("port", noKeyframesPort), 504, "time limit"},
		{"a web server, not RTSP", 0, onSim("rtsp-loopback"), set("port", webPort), 502, "rtsp://127.0.0.1:"},
		{"not H.264", 0, onSim("rtsp-loopback"), set("port", mjpegPort), 422, "not H.264"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res, out, _ := send(tc.req, tc.env, tc.edit)
			t.Logf("%d in %s: %s", res.StatusCode, time.Since(start).Round(time.Millisecond), out)
			rtspCheckError(t, res, out, tc.status, tc.message)
		})
	}

	// The camera goes away: the seed's request 1 is a clear 502, not a hang.
	cam.Close()
	res, out, _ = send(0, env, nil)
	rtspCheckError(t, res, out, 502, "unreachable")
}

// rtspCamera starts the simulated camera on port 554 of a random loopback
// address (127.x.y.z, so parallel runs do not collide), as the seed's
// requests expect. Where 554 cannot be bound (no privilege, or not Linux)
// it falls back to a free port on 127.0.0.1, which it returns.
func rtspCamera(t *testing.T, cfg camsim.Config) (*camsim.Server, int) {
	t.Helper()
	var errs []error
	for range 5 {
		cfg.Addr = fmt.Sprintf("127.%d.%d.%d:554", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
		s, err := camsim.Start(cfg)
		if err == nil {
			t.Cleanup(func() { _ = s.Close() })
			return s, 554
		}
		errs = append(errs, err)
	}
	t.Logf("no loopback address with port 554: %v", errors.Join(errs...))
	cfg.Addr = "127.0.0.1:0"
	s := camtest.Camera(t, cfg)
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return s, n
}

// rtspBuildNagare builds bin/nagare for setup.sh.
func rtspBuildNagare(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nagare")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/nagare")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building nagare: %v\n%s", err, out)
	}
	return bin
}

// rtspSetup runs setup.sh from the repository root the README's way,
// eval "$(examples/rtsp-snapshot/setup.sh)", against the test server
// with its root auth key, and returns the variables it exported.
func rtspSetup(t *testing.T, ts *servertest.TS, nagare string, vars map[string]string) map[string]string {
	t.Helper()
	names := []string{"API", "SIM_ID", "X_SORACOM_API_KEY", "X_SORACOM_TOKEN"}
	script := `eval "$(examples/rtsp-snapshot/setup.sh)"` + "\n"
	for _, n := range names {
		script += fmt.Sprintf("printf '%%s\\0' \"$%s\"\n", n)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "NAGARE="+nagare, "NAGARE_ENDPOINT="+ts.URL,
		"NAGARE_AUTH_KEY_ID="+servertest.RootKeyID, "NAGARE_AUTH_KEY="+servertest.RootKey)
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("setup.sh: %v\n%s", err, stderr.String())
	}
	t.Logf("setup.sh: %s", strings.TrimSpace(stderr.String()))
	vals := strings.Split(stdout.String(), "\x00")
	if len(vals) != len(names)+1 {
		t.Fatalf("setup.sh exported %q", stdout.String())
	}
	env := map[string]string{}
	for i, n := range names {
		env[n] = vals[i]
	}
	return env
}

// rtspUser creates a SAM user allowed only the given operation and logs in
// with an auth key of its own.
func rtspUser(t *testing.T, ts *servertest.TS, name, allow string) *servertest.Client {
	t.Helper()
	p := "/v1/operators/" + ts.OperatorID + "/users/" + name
	if res := ts.Root.Do("POST", p, map[string]any{}); res.Status != 201 {
		t.Fatalf("user %s: %d %s", name, res.Status, res.Body)
	}
	perm := `{"statements":[{"effect":"allow","api":["` + allow + `"]}]}`
	if res := ts.Root.Do("PUT", p+"/permission", map[string]any{"permission": perm}); res.Status != 200 {
		t.Fatalf("permission: %d %s", res.Status, res.Body)
	}
	var key struct{ AuthKeyID, AuthKey string }
	ts.Root.Do("POST", p+"/auth_keys", nil).JSON(&key)
	return ts.LoginKey(key.AuthKeyID, key.AuthKey)
}

// rtspCurls returns the text of every curl command in src that calls
// downlink/rtsp, from "curl" to the end of the command.
func rtspCurls(t *testing.T, src string) []string {
	t.Helper()
	var out []string
	for i := 0; ; {
		j := strings.Index(src[i:], "curl -X POST ")
		if j < 0 {
			return out
		}
		i += j
		line := src[i:]
		if k := strings.IndexByte(line, '\n'); k >= 0 {
			line = line[:k]
		}
		if !strings.Contains(line, "/downlink/rtsp") {
			i += len("curl")
			continue
		}
		_, n, err := rtspWords(src[i:], func(string) (string, bool) { return "", true })
		if err != nil {
			t.Fatalf("curl command at %.60q: %v", src[i:], err)
		}
		out = append(out, src[i:i+n])
		i += n
	}
}

// rtspRequest is a curl command as an HTTP request.
type rtspRequest struct {
	Method, URL, Body, Output string
	Header                    http.Header
}

// rtspParseCurl expands a curl command with env as the shell would and
// reads the curl options the README uses; anything else fails the test.
func rtspParseCurl(t *testing.T, cmd string, env map[string]string) rtspRequest {
	t.Helper()
	words, _, err := rtspWords(cmd, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("%v in %q", err, cmd)
	}
	r := rtspRequest{Method: "GET", Header: http.Header{}}
	if len(words) == 0 || words[0] != "curl" {
		t.Fatalf("not a curl command: %q", words)
	}
	for i := 1; i < len(words); i++ {
		w := words[i]
		arg := func() string {
			if i+1 >= len(words) {
				t.Fatalf("curl %s needs an argument", w)
			}
			i++
			return words[i]
		}
		switch {
		case w == "-X":
			r.Method = arg()
		case w == "-H":
			k, v, ok := strings.Cut(arg(), ":")
			if !ok {
				t.Fatalf("header %q", words[i])
			}
			r.Header.Set(k, strings.TrimSpace(v))
		case w == "-d":
			r.Body = arg()
			if r.Method == "GET" {
				r.Method = "POST"
			}
		case w == "--output" || w == "-o":
			r.Output = arg()
		case !strings.HasPrefix(w, "-") && r.URL == "":
			r.URL = w
		default:
			t.Fatalf("curl option %q is not understood by this test", w)
		}
	}
	return r
}

// rtspWords splits the shell command at the start of s into words the way
// bash would (quotes, backslash-newline, $VAR and ${VAR} expanded with
// lookup) and returns how many bytes of s the command took. Anything it
// does not handle (pipes, substitutions, redirections) is an error.
func rtspWords(s string, lookup func(string) (string, bool)) ([]string, int, error) {
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // s[i] == '$'
		j, name := i+1, ""
		if j < len(s) && s[j] == '{' {
			k := strings.IndexByte(s[j:], '}')
			if k < 0 {
				return 0, errors.New("unterminated ${")
			}
			name, j = s[j+1:j+k], j+k+1
		} else {
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			name = s[i+1 : j]
		}
		if name == "" {
			return 0, fmt.Errorf("unsupported $ at %d", i)
		}
		v, ok := lookup(name)
		if !ok {
			return 0, fmt.Errorf("$%s is not set", name)
		}
		w.WriteString(v)
		return j, nil
	}
	end := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\n':
			end()
			return words, i, nil
		case c == ' ' || c == '\t':
			end()
			i++
		case c == '\\':
			if i+1 < len(s) && s[i+1] == '\n' {
				i += 2
				continue
			}
			if i+1 >= len(s) {
				return nil, 0, errors.New("trailing backslash")
			}
			w.WriteByte(s[i+1])
			inWord = true
			i += 2
		case c == '\'':
			k := strings.IndexByte(s[i+1:], '\'')
			if k < 0 {
				return nil, 0, errors.New("unterminated '")
			}
			w.WriteString(s[i+1 : i+1+k])
			inWord = true
			i += k + 2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(s) {
					return nil, 0, errors.New(`unterminated "`)
				}
				c := s[i]
				if c == '"' {
					i++
					break
				}
				switch {
				case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0:
					if s[i+1] != '\n' {
						w.WriteByte(s[i+1])
					}
					i += 2
				case c == '$':
					j, err := expand(i)
					if err != nil {
						return nil, 0, err
					}
					i = j
				case c == '`':
					return nil, 0, errors.New("command substitution is not supported")
				default:
					w.WriteByte(c)
					i++
				}
			}
		case c == '$':
			inWord = true
			j, err := expand(i)
			if err != nil {
				return nil, 0, err
			}
			i = j
		case c == '#' && !inWord:
			k := strings.IndexByte(s[i:], '\n')
			if k < 0 {
				k = len(s) - i
			}
			end()
			return words, i + k, nil
		case strings.IndexByte("|&;<>()`", c) >= 0:
			return nil, 0, fmt.Errorf("shell syntax %q is not supported", c)
		default:
			w.WriteByte(c)
			inWord = true
			i++
		}
	}
	end()
	return words, len(s), nil
}

// rtspDo sends r with the given body, as curl would (no redirects followed),
// bounded so a hanging server fails the test instead of stalling it.
func rtspDo(t *testing.T, r rtspRequest, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(r.Method, r.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.Header.Clone()
	hc := &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res, out
}

// rtspCheckPicture checks img is a JPEG of a plausible size showing a frame
// of the camera's footage.
func rtspCheckPicture(t *testing.T, what, footage string, img []byte) {
	t.Helper()
	if len(img) < 5<<10 || len(img) > 2<<20 {
		t.Errorf("%s: %d bytes is not a plausible 640×480 JPEG", what, len(img))
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width != 640 || cfg.Height != 480 {
		t.Fatalf("%s: not a 640×480 JPEG: %v %+v", what, err, cfg)
	}
	if idx, diff := camtest.MatchFrame(t, footage, img); diff > 10 {
		t.Errorf("%s: does not show the footage (closest frame %d, mean difference %.1f)", what, idx, diff)
	}
}

// rtspCheckError checks an error answer: the status, {code, message} with
// the message naming want, and no password.
func rtspCheckError(t *testing.T, res *http.Response, out []byte, status int, want string) {
	t.Helper()
	var e struct{ Code, Message string }
	if err := json.Unmarshal(out, &e); err != nil || res.StatusCode != status || e.Code == "" || e.Message == "" ||
		!strings.Contains(e.Message, want) || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("%d %s %s; want %d with {code, message} naming %q", res.StatusCode, res.Header.Get("Content-Type"), out, status, want)
	}
	if bytes.Contains(out, []byte(rtspPassword)) || bytes.Contains(out, []byte("not-the-password")) {
		t.Errorf("the answer shows a password: %s", out)
	}
}

// rtspSilentDevice listens on a free loopback port and accepts connections
// without ever answering; it returns the port.
func rtspSilentDevice(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			close(done)
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}

// rtspClosedPort returns a loopback port nothing listens on.
func rtspClosedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}
