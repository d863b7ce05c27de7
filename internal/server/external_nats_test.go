package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/servertest"
	"github.com/nagare-iot/nagare/internal/store/storetest"
	"github.com/nagare-iot/nagare/internal/testaddr"
)

// externalNATS is one server of a three-server NATS cluster that nagare
// does not run (the `--nats nats://a,nats://b,nats://c` topology).
type externalNATS struct {
	opts *natsserver.Options
	srv  *natsserver.Server
}

func (e *externalNATS) start(t *testing.T) {
	t.Helper()
	srv, err := natsserver.NewServer(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		t.Fatalf("nats %s not ready", e.opts.ServerName)
	}
	e.srv = srv
}

func (e *externalNATS) stop() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func hostPort(t *testing.T, addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// Two nagare nodes on an external three-server NATS cluster (token auth),
// PostgreSQL and S3: streams get 3 replicas; devices publish to both nodes
// while a flow forwards every publish and a timer beats; the NATS server
// one node is connected to is stopped and restarted. The node reconnects
// to another server; every accepted publish is stored once and reaches
// the flow's webhook, and no timer period fires twice.
func TestExternalNATSCluster(t *testing.T) {
	if os.Getenv(storetest.EnvPostgres) == "" {
		t.Skip("several nodes need PostgreSQL: this test runs in the PostgreSQL pass (" + storetest.EnvPostgres + ")")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	const token = "external-nats-token"
	dir := t.TempDir()
	clients, routes := make([]string, 3), make([]string, 3)
	var routeURLs []*url.URL
	for i := range 3 {
		clients[i], routes[i] = testaddr.Loopback(t), testaddr.Loopback(t)
		routeURLs = append(routeURLs, &url.URL{Scheme: "nats-route", Host: routes[i]})
	}
	servers := make([]*externalNATS, 3)
	for i := range servers {
		host, port := hostPort(t, clients[i])
		chost, cport := hostPort(t, routes[i])
		servers[i] = &externalNATS{opts: &natsserver.Options{
			ServerName: fmt.Sprintf("x%d", i+1), Host: host, Port: port, Authorization: token,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("x%d", i+1)),
			Cluster: natsserver.ClusterOpts{Name: "external", Host: chost, Port: cport},
			Routes:  routeURLs, NoLog: true, NoSigs: true,
		}}
	}
	var wgStart sync.WaitGroup
	for _, s := range servers {
		wgStart.Add(1)
		go func() { defer wgStart.Done(); s.start(t) }()
	}
	wgStart.Wait()
	// Cleanups run last-in first-out: the nagare nodes stop before NATS.
	t.Cleanup(func() {
		for _, s := range servers {
			s.srv.Shutdown()
		}
	})
	var natsURLs []string
	for _, a := range clients {
		natsURLs = append(natsURLs, "nats://"+a)
	}

	s3 := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server())
	t.Cleanup(s3.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXTERNAL")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "external-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	dsn := storetest.DSN(t)
	node := func(name string) func(*config.Config) {
		return func(c *config.Config) {
			c.DB, c.NATS, c.NATSToken, c.NodeName = dsn, strings.Join(natsURLs, ","), token, name
			c.Files = "s3://nagare-files?region=us-east-1&use_path_style=true&endpoint=" + url.QueryEscape(s3.URL)
			c.ShutdownTimeout = 10 * time.Second
		}
	}
	a := servertest.Start(t, node("a"))
	b := servertest.Start(t, node("b"))
	if !a.Config().Clustered() || a.Config().Replicas() != 3 {
		t.Fatalf("three nats URLs: clustered %v, replicas %d", a.Config().Clustered(), a.Config().Replicas())
	}
	ctx := context.Background()
	st, err := b.Bus.JS.Stream(ctx, harvest.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("%s has %d replicas; want 3", harvest.Stream, r)
	}

	sink := newRelaySink(t)

	var group struct{ GroupID string }
	a.Root.Do("POST", "/v1/groups", map[string]any{"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}}}).JSON(&group)
	var dev struct {
		DeviceID     string `json:"device_id"`
		DeviceSecret string `json:"deviceSecret"`
	}
	b.Root.Do("POST", "/v1/devices", map[string]any{}).JSON(&dev)
	if res := a.Root.Do("POST", "/v1/devices/"+dev.DeviceID+"/set_group", map[string]any{"groupId": group.GroupID}); res.Status != 200 {
		t.Fatalf("set_group: %d %s", res.Status, res.Body)
	}
	app := relayApp(dev.DeviceID, sink.URL, time.Second)
	if res := b.Root.Do("PUT", "/v1/flux/apps/relay", app, "Content-Type", "application/yaml"); res.Status/100 != 2 {
		t.Fatalf("apply: %d %s", res.Status, res.Body)
	}
	applied := time.Now()

	// Publishes alternate between the nodes while a NATS server goes away.
	pub := startPublishing(2, 40*time.Millisecond, func(seq int64) string {
		if seq%2 == 1 {
			return b.URL
		}
		return a.URL
	}, dev.DeviceID, dev.DeviceSecret)
	time.Sleep(2 * time.Second)
	gone := a.Bus.NC.ConnectedServerName()
	var down *externalNATS
	for _, s := range servers {
		if s.opts.ServerName == gone {
			down = s
		}
	}
	if down == nil {
		t.Fatalf("node a is connected to %q, not one of the servers", gone)
	}
	down.stop()
	stopped := time.Now()
	var moved time.Duration
	for time.Since(stopped) < 30*time.Second {
		if name := a.Bus.NC.ConnectedServerName(); a.Bus.NC.IsConnected() && name != gone {
			moved = time.Since(stopped)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if moved == 0 {
		t.Fatalf("node a did not reconnect to another NATS server after %s stopped", gone)
	}
	time.Sleep(3 * time.Second)
	down.start(t)
	time.Sleep(3 * time.Second)
	want, tried := pub.finish()
	got := storedSeqs(func(path string, out any) { b.Root.Do("GET", path, nil).JSON(out) }, dev.DeviceID, len(want))
	for seq := range want {
		if got[seq] != 1 {
			t.Errorf("publish %d accepted, stored %d times", seq, got[seq])
		}
	}
	if missing := sink.waitDelivered(want); missing > 0 {
		t.Errorf("%d device events never reached the webhook", missing)
	}
	var failed []struct{ Error string }
	a.Root.Do("GET", "/v1/flux/apps/relay/runs?limit=1000&status=failed", nil).JSON(&failed)
	if len(failed) > 0 {
		t.Errorf("%d failed runs, e.g. %s", len(failed), failed[0].Error)
	}
	ticks, twice, extra := sink.ticks()
	running := time.Since(applied)
	if ticks == 0 || ticks > int(running/time.Second)+1 || twice > 0 {
		t.Errorf("%d timer firings (%d twice) in %s at 1s", ticks, twice, running.Round(time.Second))
	}
	t.Logf("external NATS: %d of %d publishes accepted on two nodes, each stored once; node a moved off %s in %s; timer %d periods, %d twice; webhook deliveries beyond the first: %d",
		len(want), tried, gone, moved.Round(time.Millisecond), ticks, twice, extra)
}
