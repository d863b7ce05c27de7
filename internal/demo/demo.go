// Package demo owns `nagare demo`: one server with every example system
// (examples/) loaded and running on its own — a simulated RTSP camera
// streaming real footage, simulated call buttons and LINE guests, shortened
// timers — and an outbox standing in for Slack and LINE that shows in the
// console what would have been sent. Nothing leaves the machine.
package demo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nagare-iot/nagare/examples"
	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/client"
	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/server"
)

// Options are the demo's own settings.
type Options struct {
	// Period is the timer period of every example (5 minutes in the
	// seeds) and how often the simulated guests and buttons act.
	Period time.Duration
	// Photos is a directory of JPEGs the simulated LINE guests send
	// (../shared/testdata/vision); empty or missing: camera stills.
	Photos string
	// Out receives the welcome text (URLs and login).
	Out io.Writer
}

// Demo credentials: they only ever reach the outbox.
const (
	lineSecret     = "demo-line-channel-secret-0123456"
	lineToken      = "demo-line-channel-access-token"
	slackToken     = "demo-outgoing-webhook-token"
	staffSlackID   = "U0DEMOSTAFF"
	cameraID       = "7CDDDEADBEEF"
	simID          = "8942310022000012345"
	simCamPassword = "password123"
)

// Prepare adjusts a loaded configuration for the demo: the outbox as
// LINE's API, a root password if none is set, and a fresh root auth key
// the demo uses to set itself up.
func Prepare(cfg *config.Config) (password string) {
	base := loopbackBase(cfg)
	cfg.LineAPIURL, cfg.LineDataURL = base+lineBase, base+lineBase
	if cfg.RootPassword == "" {
		cfg.RootPassword = "nagare-demo"
	}
	if cfg.BlobFileRoots == "" {
		cfg.BlobFileRoots = lakeDir(cfg) // seed 001's data lake, as local files
	}
	if cfg.RootAuthKeyID == "" {
		cfg.RootAuthKeyID, cfg.RootAuthKey = "keyId-demo-"+randomHex(4), "secret-"+randomHex(16)
	}
	return cfg.RootPassword
}

// lakeDir is where the demo's data lake lives.
func lakeDir(cfg *config.Config) string {
	dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "datalake"))
	if err != nil {
		return filepath.Join(cfg.DataDir, "datalake")
	}
	return dir
}

// loopbackBase is how the demo reaches its own server.
func loopbackBase(cfg *config.Config) string {
	c := *cfg
	c.PublicURL = ""
	return c.PublicBase()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run starts the simulated camera and the server, sets every example up,
// runs the simulators and serves until ctx ends.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	if opts.Period < 5*time.Second {
		return fmt.Errorf("demo period %s: at least 5s", opts.Period)
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	video, err := camsim.Fixture(ctx, camsim.KindVtest)
	if err != nil {
		slog.Warn("demo: real footage unavailable; using a test pattern", "err", err)
		if video, err = camsim.Fixture(ctx, camsim.KindTestsrc); err != nil {
			return fmt.Errorf("demo camera: %w", err)
		}
	}
	cam, err := camsim.Start(camsim.Config{Addr: "127.0.0.1:0", Path: "/cam", File: video})
	if err != nil {
		return fmt.Errorf("demo camera: %w", err)
	}
	defer cam.Close()
	// Seed 002's device: the seed's path and Basic credentials.
	simCam, err := camsim.Start(camsim.Config{Addr: "127.0.0.1:0", Path: "/live/stream", File: video, User: "user", Pass: simCamPassword, Methods: []string{"basic"}})
	if err != nil {
		return fmt.Errorf("demo camera: %w", err)
	}
	defer simCam.Close()

	srv, err := server.New(ctx, cfg, server.Options{Stdout: io.Discard})
	if err != nil {
		return err
	}
	d := &demo{cfg: cfg, opts: opts, srv: srv, camURL: cam.URL(), simCamAddr: simCam.Addr(), base: loopbackBase(cfg)}
	d.outbox = newOutbox(lineToken, logRecorder(func(ctx context.Context, b []byte) error {
		_, err := srv.Data.Put(context.WithoutCancel(ctx), srv.OperatorID, harvest.ResourceApp, OutboxResource, "application/json", b, time.Now())
		return err
	}))
	srv.Router.HandleHTTP(outboxPath, d.outbox.handler())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	if err := d.waitReady(ctx, served); err != nil {
		return err
	}
	if err := d.setup(ctx); err != nil {
		return fmt.Errorf("demo set-up: %w", err)
	}
	d.welcome()
	var wg sync.WaitGroup
	for _, sim := range d.sims {
		wg.Add(1)
		go func() { defer wg.Done(); sim(ctx) }()
	}
	err = <-served
	wg.Wait()
	return err
}

type demo struct {
	cfg    *config.Config
	opts   Options
	srv    *server.Server
	outbox *outbox
	camURL string
	// simCamAddr is seed 002's camera (host:port).
	simCamAddr string
	base       string
	api        *client.Client
	sims       []func(context.Context)
	links      []string // lines for the welcome text
}

func (d *demo) waitReady(ctx context.Context, served chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-served:
			if err == nil {
				err = errors.New("the server stopped")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if res, err := http.Get(d.base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the server was not ready within 60s")
		}
	}
	d.api = client.New(d.base)
	return d.api.Login(ctx, map[string]any{"authKeyId": d.cfg.RootAuthKeyID, "authKey": d.cfg.RootAuthKey})
}

// call is an API call that must succeed (409 Conflict counts: the demo was
// set up before in the same data directory).
func (d *demo) call(ctx context.Context, method, path string, in, out any) error {
	err := d.api.JSON(ctx, method, path, in, out)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// upsert creates something with POST, or, when it exists (a --data
// directory an earlier demo set up), replaces it with PUT: what it names,
// such as this run's outbox URL or camera port, must be current.
func (d *demo) upsert(ctx context.Context, create string, createBody any, update string, updateBody any) error {
	err := d.api.JSON(ctx, "POST", create, createBody, nil)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		if err = d.api.JSON(ctx, "PUT", update, updateBody, nil); err != nil {
			return fmt.Errorf("PUT %s: %w", update, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("POST %s: %w", create, err)
	}
	return nil
}

// credential creates or replaces a credential.
func (d *demo) credential(ctx context.Context, id string, body any) error {
	return d.upsert(ctx, "/v1/credentials/"+id, body, "/v1/credentials/"+id, body)
}

// tagged returns the ID (field idField) of the first group or device
// (kind "groups", "devices") whose tag name is value, or "".
func (d *demo) tagged(ctx context.Context, kind, idField, value string) (string, error) {
	var found []map[string]any
	if err := d.call(ctx, "GET", "/v1/"+kind+"?tag_name=name&tag_value="+value, nil, &found); err != nil || len(found) == 0 {
		return "", err
	}
	id, _ := found[0][idField].(string)
	return id, nil
}

// apply applies an example file after textual edits (shortened timers,
// IDs created by the demo), pairs of old, new.
func (d *demo) apply(ctx context.Context, file string, edits ...string) error {
	b, err := fs.ReadFile(examples.Files, file)
	if err != nil {
		return err
	}
	src := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(src, edits[i]) {
			return fmt.Errorf("%s: %q not found (the example changed; update the demo)", file, edits[i])
		}
		src = strings.ReplaceAll(src, edits[i], edits[i+1])
	}
	coll := "/v1/flux/apps/"
	if strings.Contains(src, "\npanels:") {
		coll = "/v1/dashboards/"
	}
	name := ""
	for _, line := range strings.Split(src, "\n") {
		if v, ok := strings.CutPrefix(line, "name: "); ok {
			name = strings.TrimSpace(v)
			break
		}
	}
	_, _, err = d.api.Do(ctx, "PUT", coll+name, strings.NewReader(src), http.Header{"Content-Type": {"application/yaml"}})
	if err != nil {
		return fmt.Errorf("apply %s: %w", file, err)
	}
	return nil
}

// hookURL is an app channel's secret webhook URL, as the demo reaches it
// (its own loopback address, whatever public-url says).
func (d *demo) hookURL(ctx context.Context, app, channel string) (string, error) {
	var v struct {
		Channels []struct{ Name, WebhookURL string }
	}
	if err := d.call(ctx, "GET", "/v1/flux/apps/"+app, nil, &v); err != nil {
		return "", err
	}
	for _, c := range v.Channels {
		if c.Name == channel && c.WebhookURL != "" {
			u, err := url.Parse(c.WebhookURL)
			if err != nil {
				return "", err
			}
			return d.base + u.Path, nil
		}
	}
	return "", fmt.Errorf("app %s has no webhook URL for channel %s", app, channel)
}

// period is the demo period as a YAML duration.
func (d *demo) period() string { return d.opts.Period.String() }

func (d *demo) setup(ctx context.Context) error {
	for _, step := range []func(context.Context) error{d.setupOutbox, d.setupCrowding, d.setupDatalake, d.setupRTSPSnapshot, d.setupCallButton, d.setupHappiness} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) setupOutbox(ctx context.Context) error {
	_, _, err := d.api.Do(ctx, "PUT", "/v1/dashboards/demo-outbox", strings.NewReader(outboxDashboard), http.Header{"Content-Type": {"application/yaml"}})
	if err != nil {
		return fmt.Errorf("the outbox dashboard: %w", err)
	}
	d.links = append(d.links, "Outbox (what Slack and LINE would have received): "+d.console("#/dashboards/demo-outbox"))
	return nil
}

const outboxDashboard = `# What the demo's Slack and LINE would have received (nagare demo).
name: demo-outbox
title: Outbox (Slack, LINE)
time: {from: now-1d, to: now}
panels:
  - title: Messages
    kind: table
    resource: {type: App, id: demo-outbox}
    columns: [service, operation, to, text]
    grid: {x: 0, y: 0, w: 24, h: 14}
`

func (d *demo) console(hash string) string { return d.cfg.PublicBase() + "/" + hash }

// --- seed 000: crowding monitor ---------------------------------------------

// bot creates a SAM user allowed exactly ops (on cameraID's path when
// camera is set), as the examples' READMEs do.
func (d *demo) bot(ctx context.Context, name string, ops []string, camera string) error {
	users := "/v1/operators/" + d.srv.OperatorID + "/users/" + name
	if err := d.call(ctx, "POST", users, map[string]any{}, nil); err != nil {
		return err
	}
	st := map[string]any{"effect": "allow", "api": ops}
	if camera != "" {
		st["condition"] = "pathVariable('device_id') == '" + camera + "'"
	}
	perm, _ := json.Marshal(map[string]any{"statements": []any{st}})
	return d.call(ctx, "PUT", users+"/permission", map[string]any{"permission": string(perm)}, nil)
}

func (d *demo) setupCrowding(ctx context.Context) error {
	cam := map[string]any{"name": "Office seats (simulated)", "rtspUrl": d.camURL, "recording": true}
	create := maps.Clone(cam)
	create["deviceId"] = cameraID
	if err := d.upsert(ctx, "/v1/sora_cam/devices", create, "/v1/sora_cam/devices/"+cameraID, cam); err != nil {
		return err
	}
	if err := d.bot(ctx, "crowding-bot", []string{"SoraCam:exportSoraCamDeviceRecordedImage", "SoraCam:getSoraCamDeviceExportedImage"}, cameraID); err != nil {
		return err
	}
	if err := d.apply(ctx, "crowding/app.yaml", `timer: {cron: "0 */5 * * * *", timezone: Asia/Tokyo}`, "timer: {interval: "+d.period()+"}"); err != nil {
		return err
	}
	if err := d.apply(ctx, "crowding/dashboard.yaml"); err != nil {
		return err
	}
	d.links = append(d.links, "Crowding monitor (seed 000), dashboard: "+d.console("#/dashboards/crowding"))
	return nil
}

// --- seed 001: camera archive to a data lake ---------------------------------

func (d *demo) setupDatalake(ctx context.Context) error {
	if err := d.bot(ctx, "datalake-bot", []string{"SoraCam:exportSoraCamDeviceRecordedImage", "SoraCam:getSoraCamDeviceExportedImage"}, cameraID); err != nil {
		return err
	}
	lake := lakeDir(d.cfg)
	if err := d.apply(ctx, "datalake-archive/app.yaml", `cron: "0 */5 * * * *"`, "interval: "+d.period(),
		"url: azblob://soracam-images", "url: file://"+filepath.ToSlash(lake)+"/soracam-images",
		"credentials: datalake-store", ""); err != nil {
		return err
	}
	d.links = append(d.links, "Camera archive to a data lake (seed 001): "+lake+"/soracam-images/YYYY/MM/DD/…; runs: "+d.console("#/apps/datalake-archive"))
	return nil
}

// --- seed 002: RTSP snapshot by remote command ------------------------------

func (d *demo) setupRTSPSnapshot(ctx context.Context) error {
	host, port, _ := strings.Cut(d.simCamAddr, ":")
	if err := d.call(ctx, "POST", "/v1/sims", map[string]any{"simId": simID, "name": "rtsp-snapshot camera", "ipAddress": host}, nil); err != nil {
		return err
	}
	if err := d.credential(ctx, "credential-id", map[string]any{"type": "psk",
		"description": "RTSP password (examples/rtsp-snapshot)", "credentials": map[string]string{"key": simCamPassword}}); err != nil {
		return err
	}
	// The seed's third request, every period: snapshots pile up in Files.
	req := fmt.Sprintf(`{"command":"snapshot","port":%s,"path":"/live/stream",`+
		`"authentication":{"type":"basic","username":"user","passwordCredentialsId":"credential-id"},`+
		`"options":{"destinations":{"harvestFiles":{"filePath":"/camera/snapshots/{sim_id}_{time}.jpg"}}}}`, port)
	d.sims = append(d.sims, func(ctx context.Context) {
		every(ctx, time.Second, d.opts.Period, func() {
			if _, _, err := d.api.Do(ctx, "POST", "/v1/sims/"+simID+"/downlink/rtsp", strings.NewReader(req), http.Header{"Content-Type": {"application/json"}}); err != nil {
				slog.Warn("demo: RTSP snapshot", "err", err)
			}
		})
	})
	d.links = append(d.links,
		"RTSP snapshot (seed 002): snapshots in Files: "+d.console("#/files/camera/snapshots"),
		fmt.Sprintf("  or ask yourself (examples/rtsp-snapshot/README.md, with port %s):", port),
		fmt.Sprintf(`  curl -X POST %s/v1/sims/%s/downlink/rtsp -H "X-Soracom-API-Key: …" -H "X-Soracom-Token: …" \
       -H 'Content-Type: application/json' -d '{"command":"snapshot","port":%s,"path":"/live/stream",
       "authentication":{"type":"basic","username":"user","password":"%s"}}' --output snapshot.jpg`, d.cfg.PublicBase(), simID, port, simCamPassword))
	return nil
}

// --- seed 003: call button -------------------------------------------------

func (d *demo) setupCallButton(ctx context.Context) error {
	// A --data directory an earlier demo set up has the group and the
	// button already: the button gets a new secret (shown only once).
	var group struct{ GroupID string }
	var err error
	if group.GroupID, err = d.tagged(ctx, "groups", "groupId", "call-buttons"); err != nil {
		return err
	}
	if group.GroupID == "" {
		if err := d.call(ctx, "POST", "/v1/groups", map[string]any{"tags": map[string]string{"name": "call-buttons"},
			"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}}, &group); err != nil {
			return err
		}
	}
	var dev struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string `json:"deviceSecret"`
	}
	if dev.DeviceID, err = d.tagged(ctx, "devices", "device_id", "booth-1"); err != nil {
		return err
	}
	if dev.DeviceID == "" {
		if err := d.call(ctx, "POST", "/v1/devices", map[string]any{"tags": map[string]string{"name": "booth-1"}}, &dev); err != nil {
			return err
		}
	} else if err := d.call(ctx, "POST", "/v1/devices/"+dev.DeviceID+"/secret", nil, &dev); err != nil {
		return err
	}
	if err := d.call(ctx, "POST", "/v1/devices/"+dev.DeviceID+"/set_group", map[string]any{"groupId": group.GroupID}, nil); err != nil {
		return err
	}
	creds := map[string]any{
		"call-button-slack":       map[string]any{"type": "slack-incoming-webhook", "credentials": map[string]string{"url": d.base + slackBase + "call-button"}},
		"call-button-slack-token": map[string]any{"type": "api-token-credentials", "credentials": map[string]string{"token": slackToken}},
	}
	for id, c := range creds {
		if err := d.credential(ctx, id, c); err != nil {
			return err
		}
	}
	if err := d.bot(ctx, "call-button-bot", []string{"Shadow:getThingShadow"}, ""); err != nil {
		return err
	}
	if err := d.call(ctx, "POST", "/v1/things/call-button-registry/shadow", map[string]any{"state": map[string]any{"reported": map[string]any{
		"buttons": map[string]string{dev.DeviceID: "tanaka"}, "slackUsers": map[string]string{staffSlackID: "tanaka"}}}}, nil); err != nil {
		return err
	}
	if err := d.call(ctx, "POST", "/v1/things/tanaka/shadow", map[string]any{"state": map[string]any{"reported": map[string]any{
		"name": "田中", "slackUserId": staffSlackID, "state": "idle"}}}, nil); err != nil {
		return err
	}
	p := d.opts.Period
	if err := d.apply(ctx, "call-button/app.yaml", "groupId: call-buttons", "groupId: "+group.GroupID,
		"delay: 5m", "delay: "+(2*p).String(), "delay: 1m", "delay: "+(p/2).String()); err != nil {
		return err
	}
	answer, err := d.hookURL(ctx, "call-button", "answer")
	if err != nil {
		return err
	}
	// The staff member answers "ok" in Slack a few seconds after a mention.
	d.outbox.onSlack = func(text string) {
		if !strings.Contains(text, "<@"+staffSlackID+">") {
			return
		}
		time.Sleep(d.opts.Period / 4)
		form := url.Values{"token": {slackToken}, "team_id": {"T0DEMO"}, "channel_id": {"C0DEMO"}, "channel_name": {"duty"},
			"timestamp": {fmt.Sprint(time.Now().Unix())}, "user_id": {staffSlackID}, "user_name": {"tanaka"},
			"text": {"ok 向かいます"}, "trigger_word": {"ok"}}
		res, err := http.PostForm(answer, form)
		if err != nil {
			slog.Warn("demo: staff answer", "err", err)
			return
		}
		res.Body.Close()
	}
	// A visitor presses the button every few periods.
	d.sims = append(d.sims, func(ctx context.Context) {
		every(ctx, 0, 3*p, func() {
			body := `{"clickType":1,"clickTypeName":"SINGLE","batteryLevel":0.75,"binaryParserEnabled":true}`
			req, _ := http.NewRequestWithContext(ctx, "POST", d.base+"/v1/devices/"+dev.DeviceID+"/publish", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Device-Secret", dev.DeviceSecret)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		})
	})
	d.links = append(d.links, "Call button (seed 003), staff board: "+d.console("#/boards"))
	return nil
}

// --- seed 004: happiness bot -----------------------------------------------

var guests = []struct{ id, name string }{
	{"U1a2b3c4d5e6f708192a3b4c5d6e7f801", "さくら"},
	{"U2b3c4d5e6f708192a3b4c5d6e7f80912", "れん"},
	{"U3c4d5e6f708192a3b4c5d6e7f8091a23", "ひなた"},
	{"U4d5e6f708192a3b4c5d6e7f8091a2b34", "そうた"},
}

func (d *demo) setupHappiness(ctx context.Context) error {
	if err := d.credential(ctx, "happiness-line", map[string]any{"type": "line-channel",
		"credentials": map[string]string{"channelSecret": lineSecret, "channelAccessToken": lineToken}}); err != nil {
		return err
	}
	for _, f := range []string{"happiness-bot/app.yaml", "happiness-bot/board.yaml", "happiness-bot/result.yaml"} {
		if err := d.apply(ctx, f); err != nil {
			return err
		}
	}
	for _, g := range guests {
		d.outbox.profile(g.id, g.name)
	}
	hook, err := d.hookURL(ctx, "happiness-bot", "line")
	if err != nil {
		return err
	}
	photos := d.photos()
	n := 0
	d.sims = append(d.sims, func(ctx context.Context) {
		every(ctx, 2*time.Second, d.opts.Period, func() {
			g := guests[n%len(guests)]
			var img []byte
			if len(photos) > 0 {
				img = photos[n%len(photos)]
			} else if _, b, err := d.api.Do(ctx, "GET", "/v1/sora_cam/devices/"+cameraID+"/snapshot", nil, nil); err == nil {
				img = b
			}
			n++
			if img == nil {
				return
			}
			id := fmt.Sprintf("%d", 500000000000000000+time.Now().UnixMilli())
			d.outbox.serveContent(id, img)
			if err := sendLineImage(ctx, hook, g.id, id); err != nil {
				slog.Warn("demo: LINE guest", "err", err)
			}
		})
	})
	d.links = append(d.links,
		"Happiness bot (seed 004), live board: "+d.console("#/dashboards/happiness-board?kiosk=1"),
		"  a guest's public result page:  "+d.cfg.PublicBase()+"/p/"+d.srv.OperatorID+"/happiness-result?user="+guests[0].id)
	return nil
}

// photos reads the JPEGs the guests send.
func (d *demo) photos() [][]byte {
	var out [][]byte
	if d.opts.Photos == "" {
		return nil
	}
	names, _ := filepath.Glob(filepath.Join(d.opts.Photos, "*.jpg"))
	if len(names) == 0 {
		slog.Warn("demo: no photos for the LINE guests; they send camera stills (few faces)", "photos", d.opts.Photos)
	}
	// Group photos first: they make the liveliest board.
	sort.SliceStable(names, func(i, j int) bool {
		gi, gj := strings.Contains(filepath.Base(names[i]), "group"), strings.Contains(filepath.Base(names[j]), "group")
		if gi != gj {
			return gi
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		if b, err := os.ReadFile(name); err == nil && len(b) < 8<<20 {
			out = append(out, b)
		}
	}
	return out
}

// sendLineImage posts a signed webhook with one image message, as LINE does.
func sendLineImage(ctx context.Context, hook, user, messageID string) error {
	body, _ := json.Marshal(map[string]any{"destination": "U0demo0bot0000000000000000000000", "events": []any{map[string]any{
		"type": "message", "mode": "active", "timestamp": time.Now().UnixMilli(), "webhookEventId": "01DEMO" + randomHex(10),
		"deliveryContext": map[string]any{"isRedelivery": false}, "source": map[string]any{"type": "user", "userId": user},
		"replyToken": randomHex(16), "message": map[string]any{"type": "image", "id": messageID, "contentProvider": map[string]any{"type": "line"}}}}})
	mac := hmac.New(sha256.New, []byte(lineSecret))
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, "POST", hook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Line-Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook: %s", res.Status)
	}
	return nil
}

// every runs f after first, then every period, until ctx ends.
func every(ctx context.Context, first, period time.Duration, f func()) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
			t.Reset(period)
		}
	}
}

func (d *demo) welcome() {
	w := d.opts.Out
	fmt.Fprintf(w, "\nnagare demo is running: every example system, with a simulated camera (%s),\n", d.camURL)
	fmt.Fprintf(w, "simulated call buttons and LINE guests, timers every %s, Slack and LINE answered by an outbox.\n\n", d.period())
	fmt.Fprintf(w, "Console:  %s/\n", d.cfg.PublicBase())
	fmt.Fprintf(w, "Log in:   %s / %s\n\n", d.cfg.RootEmail, d.cfg.RootPassword)
	for _, l := range d.links {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w, "\nStop with Ctrl-C. Data stays in", d.cfg.DataDir)
}
