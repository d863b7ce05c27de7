// The scaled-out system on one machine: three nagare processes whose
// embedded NATS servers form a cluster (3 replicas), sharing PostgreSQL and
// an S3 store (gofakes3), while devices publish to every node and a flow
// with a timer and a webhook runs; one node is killed with -9 and
// restarted, another stopped and restarted. Afterwards every accepted
// publish is stored exactly once, every flow event completed, the timer
// fired once per period and a camera's recording moved to a surviving node
// within the lease time. Then MQTT: a device connected to one node reaches
// watchers on the others, and a command published on another node reaches
// the device.
package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/store/storetest"
	"github.com/nagare-iot/nagare/internal/testaddr"
)

const clusterPassword = "cluster-test-password"

type clusterNode struct {
	name, dir, http, cluster, mqtt string
	cmd                            *exec.Cmd
	log                            *os.File
	exited                         chan struct{} // closed when the process has ended
}

type testCluster struct {
	t       *testing.T
	bin     string
	env     []string
	routes  string
	nodes   []*clusterNode
	session struct{ APIKey, Token, OperatorID string }
}

func (c *testCluster) start(n *clusterNode) {
	c.t.Helper()
	f, err := os.OpenFile(filepath.Join(n.dir, "..", n.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "serve", "--node-name="+n.name, "--listen="+n.http, "--data="+n.dir,
		"--nats-cluster="+n.cluster, "--nats-routes="+c.routes, "--mqtt-listen="+n.mqtt, "--log-level=warn")
	cmd.Env, cmd.Stdout, cmd.Stderr = c.env, f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	n.cmd, n.log, n.exited = cmd, f, make(chan struct{})
	go func() { _ = cmd.Wait(); close(n.exited) }()
}

func (c *testCluster) ready(n *clusterNode, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if res, err := http.Get("http://" + n.http + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-n.exited:
			b, _ := os.ReadFile(n.log.Name())
			c.t.Fatalf("%s exited before it was ready:\n%s", n.name, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(n.log.Name())
			c.t.Fatalf("%s not ready within %s:\n%s", n.name, within, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill stops a node: SIGKILL (no goodbye) or SIGTERM (graceful).
func (c *testCluster) kill(n *clusterNode, sig syscall.Signal) {
	_ = n.cmd.Process.Signal(sig)
	<-n.exited
	n.log.Close()
}

// api calls a node as root.
func (c *testCluster) api(n *clusterNode, method, path string, in, out any) int {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, "http://"+n.http+path, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Soracom-API-Key", c.session.APIKey)
	req.Header.Set("X-Soracom-Token", c.session.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return res.StatusCode
}

func TestClusterSurvivesNodeFailures(t *testing.T) {
	if os.Getenv(storetest.EnvPostgres) == "" {
		t.Skip("several nodes need PostgreSQL: this test runs in the PostgreSQL pass (" + storetest.EnvPostgres + ")")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	dsn := storetest.DSN(t) // a fresh database
	dir := t.TempDir()
	bin := filepath.Join(dir, "nagare")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/nagare")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	s3 := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server())
	defer s3.Close()
	files := "s3://nagare-files?region=us-east-1&use_path_style=true&endpoint=" + url.QueryEscape(s3.URL)
	c := &testCluster{t: t, bin: bin}
	c.env = append(os.Environ(), "NAGARE_DB="+dsn, "NAGARE_FILES="+files, "NAGARE_ROOT_PASSWORD="+clusterPassword,
		"NAGARE_SECRET_KEY=bmFnYXJlLWNsdXN0ZXItdGVzdC1rZXktMDEyMzQ1Njc=", "NAGARE_NATS_TOKEN=route-token-for-the-test",
		"AWS_ACCESS_KEY_ID=AKIACLUSTER", "AWS_SECRET_ACCESS_KEY=cluster-secret", "AWS_REGION=us-east-1")
	var routes []string
	for i := 1; i <= 3; i++ {
		n := &clusterNode{name: fmt.Sprintf("n%d", i), dir: filepath.Join(dir, fmt.Sprintf("n%d", i)), http: testaddr.Loopback(t), cluster: testaddr.Loopback(t), mqtt: testaddr.Loopback(t)}
		c.nodes = append(c.nodes, n)
		routes = append(routes, "nats-route://"+n.cluster)
	}
	c.routes = strings.Join(routes, ",")
	for _, n := range c.nodes {
		c.start(n)
	}
	defer func() {
		for _, n := range c.nodes {
			if n.exited != nil && !isClosed(n.exited) {
				c.kill(n, syscall.SIGKILL)
			}
		}
	}()
	for _, n := range c.nodes {
		c.ready(n, 150*time.Second)
	}
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	res, err := http.Post("http://"+n1.http+"/v1/auth", "application/json", strings.NewReader(`{"email":"root@nagare.local","password":"`+clusterPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(res.Body).Decode(&c.session)
	res.Body.Close()

	sink := newRelaySink(t)

	// A device in a Harvest group, a flow forwarding its data and a timer.
	var group struct{ GroupID string }
	c.api(n2, "POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}}, &group)
	var dev struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string `json:"deviceSecret"`
	}
	c.api(n3, "POST", "/v1/devices", map[string]any{}, &dev)
	c.api(n1, "POST", "/v1/devices/"+dev.DeviceID+"/set_group", map[string]any{"groupId": group.GroupID}, nil)
	app := relayApp(dev.DeviceID, sink.URL, 2*time.Second)
	req, _ := http.NewRequest("PUT", "http://"+n1.http+"/v1/flux/apps/relay", strings.NewReader(app))
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("X-Soracom-API-Key", c.session.APIKey)
	req.Header.Set("X-Soracom-Token", c.session.Token)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode/100 != 2 {
		t.Fatalf("apply: %v %v", err, res)
	}
	applied := time.Now()

	// A recording camera: exactly one node records it.
	cam := camtest.Camera(t, camsim.Config{File: camtest.Fixture(t, "testsrc")})
	if st := c.api(n1, "POST", "/v1/sora_cam/devices", map[string]any{"deviceId": "CLUSTERCAM", "rtspUrl": cam.URL(), "recording": true}, nil); st != 201 {
		t.Fatalf("camera: %d", st)
	}
	owner := func(via *clusterNode) string {
		var v struct{ SessionNode string }
		c.api(via, "GET", "/v1/sora_cam/devices/CLUSTERCAM", nil, &v)
		return v.SessionNode
	}

	// A console on every node, subscribed to the device's data: pushes come
	// from NATS subjects, so a publish on any node reaches every socket.
	pushed := make([]sync.Map, 3) // per node: seq → true
	for i, n := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, _, err := websocket.Dial(ctx, "ws://"+n.http+"/v1/live", nil)
		cancel()
		if err != nil {
			t.Fatalf("live on %s: %v", n.name, err)
		}
		defer ws.CloseNow()
		for _, m := range []map[string]any{{"type": "auth", "apiKey": c.session.APIKey, "token": c.session.Token},
			{"type": "subscribe", "id": "d", "topic": "data", "resourceType": "Device", "resourceId": dev.DeviceID}} {
			b, _ := json.Marshal(m)
			if err := ws.Write(context.Background(), websocket.MessageText, b); err != nil {
				t.Fatal(err)
			}
		}
		go func() {
			for {
				_, b, err := ws.Read(context.Background())
				if err != nil {
					return // the node went away
				}
				var m struct {
					Type  string
					Entry struct{ Content string }
				}
				if json.Unmarshal(b, &m) == nil && m.Type == "data" {
					var v struct{ Seq int64 }
					if json.Unmarshal([]byte(m.Entry.Content), &v) == nil {
						pushed[i].Store(v.Seq, true)
					}
				}
			}
		}()
	}

	// Devices publish to every node, round robin, while nodes fail.
	pub := startPublishing(3, 50*time.Millisecond, func(seq int64) string { return "http://" + c.nodes[seq%3].http }, dev.DeviceID, dev.DeviceSecret)
	start := time.Now()
	time.Sleep(3 * time.Second)

	// The camera's node is killed: another takes it over within the lease.
	var camNode *clusterNode
	deadline := time.Now().Add(20 * time.Second)
	for camNode == nil && time.Now().Before(deadline) {
		name := owner(n1)
		for _, n := range c.nodes {
			if n.name == name {
				camNode = n
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if camNode == nil {
		t.Fatal("no node runs the camera")
	}
	killed := time.Now()
	c.kill(camNode, syscall.SIGKILL)
	var survivor *clusterNode
	for _, n := range c.nodes {
		if n != camNode {
			survivor = n
		}
	}
	var failover time.Duration
	for {
		if o := owner(survivor); o != "" && o != camNode.name {
			failover = time.Since(killed)
			break
		}
		if time.Since(killed) > 40*time.Second {
			t.Fatalf("the camera stayed with %s", camNode.name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("camera failover from %s: %s", camNode.name, failover.Round(100*time.Millisecond))
	c.start(camNode)
	c.ready(camNode, 150*time.Second)

	// Another node stopped gracefully and restarted.
	var other *clusterNode
	for _, n := range c.nodes {
		if n != camNode {
			other = n
			break
		}
	}
	c.kill(other, syscall.SIGTERM)
	time.Sleep(2 * time.Second)
	c.start(other)
	c.ready(other, 150*time.Second)
	time.Sleep(3 * time.Second)
	want, _ := pub.finish()
	elapsed := time.Since(start)

	// Every accepted publish stored exactly once, readable on any node.
	readAll := func(want int) map[int64]int {
		return storedSeqs(func(path string, out any) { c.api(n3, "GET", path, nil, out) }, dev.DeviceID, want)
	}
	got := readAll(len(want))
	stored := 0
	for _, n := range got {
		stored += n
	}
	for seq := range want {
		if got[seq] != 1 {
			t.Errorf("publish %d accepted, stored %d times", seq, got[seq])
		}
	}
	t.Logf("%d publishes accepted over %s while nodes failed; %d entries stored", len(want), elapsed.Round(time.Second), stored)

	// Every flow event completed: each publish reached the sink.
	if missing := sink.waitDelivered(want); missing > 0 {
		t.Errorf("%d device events never reached the sink", missing)
	}
	var runs []struct{ Status, Error string }
	c.api(n2, "GET", "/v1/flux/apps/relay/runs?limit=1000&status=failed", nil, &runs)
	if len(runs) > 0 {
		t.Errorf("%d failed runs, e.g. %s", len(runs), runs[0].Error)
	}
	// The timer fired once per period: no period twice.
	ticks, dupTicks, redelivered := sink.ticks()
	running := time.Since(applied)
	if ticks == 0 || ticks > int(running/(2*time.Second))+1 || dupTicks > 0 {
		t.Errorf("%d timer firings (%d twice) in %s at 2s", ticks, dupTicks, running.Round(time.Second))
	}
	// The console on the node that stayed up got pushes of publishes made
	// on each of the other nodes.
	for i, n := range c.nodes {
		if n == camNode || n == other {
			continue
		}
		from := map[int64]int{}
		total := 0
		pushed[i].Range(func(k, _ any) bool { from[k.(int64)%3]++; total++; return true })
		for j := range c.nodes {
			if j != i && from[int64(j)] == 0 {
				t.Errorf("the console on %s got no push of a publish made on %s", n.name, c.nodes[j].name)
			}
		}
		t.Logf("console on %s: %d of %d publishes pushed live (from every node)", n.name, total, len(want))
	}
	t.Logf("timer: %d periods, %d delivered twice (a node killed mid-step); sink deliveries beyond the first: %d", ticks, dupTicks, redelivered)

	// MQTT across nodes (after the restarts): the device is connected to
	// n2, root watchers to n1 and n3. What the device publishes reaches
	// both watchers and is stored once; a command published on n3 reaches
	// the device on n2.
	connect := func(n *clusterNode, id, user, pass string) paho.Client {
		t.Helper()
		o := paho.NewClientOptions().AddBroker("tcp://" + n.mqtt).SetClientID(id).SetUsername(user).SetPassword(pass).
			SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second)
		cl := paho.NewClient(o)
		mqttWait(t, cl.Connect(), "connect to "+n.name+" as "+id)
		t.Cleanup(func() { cl.Disconnect(0) })
		return cl
	}
	const mqttBase, mqttCount = 1_000_000, 50
	dataTopic := "devices/" + dev.DeviceID + "/data"
	watched := map[string]*sync.Map{}
	for _, n := range []*clusterNode{n1, n3} {
		m := &sync.Map{}
		watched[n.name] = m
		w := connect(n, "watch-"+n.name, c.session.APIKey, c.session.Token)
		mqttWait(t, w.Subscribe(dataTopic, 1, func(_ paho.Client, msg paho.Message) {
			var v struct{ Seq int64 }
			if json.Unmarshal(msg.Payload(), &v) == nil {
				m.Store(v.Seq, true)
			}
		}), "subscribe on "+n.name)
	}
	commands := make(chan string, 1)
	device := connect(n2, dev.DeviceID, dev.DeviceID, dev.DeviceSecret)
	mqttWait(t, device.Subscribe("devices/"+dev.DeviceID+"/commands/#", 1, func(_ paho.Client, msg paho.Message) {
		select {
		case commands <- msg.Topic() + " " + string(msg.Payload()):
		default:
		}
	}), "device subscribe on n2")
	rootOnN3 := connect(n3, "root-n3", c.session.APIKey, c.session.Token)
	// A new subscription's interest reaches the other nodes a moment after
	// its SUBACK: a command sent in that moment has no receiver yet, so it
	// is sent again until one arrives.
	command := ""
	for try := 0; try < 8 && command == ""; try++ {
		mqttWait(t, rootOnN3.Publish("devices/"+dev.DeviceID+"/commands/reboot", 1, false, `{"in":5}`), "command on n3")
		select {
		case command = <-commands:
		case <-time.After(2 * time.Second):
		}
	}
	if command == "" {
		t.Error("no command published on n3 reached the device on n2")
	} else if command != "devices/"+dev.DeviceID+`/commands/reboot {"in":5}` {
		t.Errorf("device on n2 got %q", command)
	}
	for i := range mqttCount {
		mqttWait(t, device.Publish(dataTopic, 1, false, fmt.Sprintf(`{"seq":%d}`, mqttBase+i)), "device publish on n2")
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		got = readAll(0)
		complete := true
		for i := range mqttCount {
			if got[int64(mqttBase+i)] == 0 {
				complete = false
			}
		}
		for _, m := range watched {
			for i := range mqttCount {
				if _, ok := m.Load(int64(mqttBase + i)); !ok {
					complete = false
				}
			}
		}
		if complete || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	for i := range mqttCount {
		if n := got[int64(mqttBase+i)]; n != 1 {
			t.Errorf("MQTT publish %d on n2 stored %d times", mqttBase+i, n)
		}
	}
	for name, m := range watched {
		n := 0
		m.Range(func(_, _ any) bool { n++; return true })
		if n != mqttCount {
			t.Errorf("the watcher on %s got %d of %d MQTT publishes made on n2", name, n, mqttCount)
		}
	}
	t.Logf("MQTT: %d device publishes on n2 stored once and delivered to watchers on n1 and n3; a command from n3 reached the device on n2", mqttCount)
}

func mqttWait(t *testing.T, tok paho.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatalf("MQTT %s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("MQTT %s: %v", what, err)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
