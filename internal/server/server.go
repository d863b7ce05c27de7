// Package server wires nagare together: configuration → stores, bus and
// domain services → the HTTP API → a graceful stop that stops accepting,
// drains requests and closes the stores.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/auth"
	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/bus"
	"github.com/nagare-iot/nagare/internal/camera"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
	"github.com/nagare-iot/nagare/internal/camera/snapshot"
	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/credentials"
	"github.com/nagare-iot/nagare/internal/dashboard"
	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/inventory"
	"github.com/nagare-iot/nagare/internal/live"
	"github.com/nagare-iot/nagare/internal/mqtt"
	"github.com/nagare-iot/nagare/internal/shadow"
	"github.com/nagare-iot/nagare/internal/store"
	"github.com/nagare-iot/nagare/internal/vision"
	"github.com/nagare-iot/nagare/web"
)

// Server is a running nagare node.
type Server struct {
	Config       *config.Config
	DB           *store.DB
	Bus          *bus.Bus
	Files        *blob.Store
	Auth         *auth.Service
	Inventory    *inventory.Service
	Data         *harvest.Data
	Credentials  *credentials.Service
	HarvestFiles *harvest.Files
	Flow         *flow.Engine
	Cameras      *camera.Service
	Vision       *vision.Service
	Live         *live.Service
	Shadows      *shadow.Service
	Router       *api.Router
	MQTT         *mqtt.Service
	OperatorID   string
	Registry     *prometheus.Registry

	http    *http.Server
	ln      net.Listener
	ready   atomic.Bool
	closers []func()
	stdout  io.Writer
}

// Options tune New for embedding (tests, demo).
type Options struct {
	// Stdout receives the one-time root auth key notice (default os.Stdout).
	Stdout io.Writer
	// Listener, if set, is used instead of binding Config.Listen (tests
	// bind port 0 first so signed URLs can name the real port).
	Listener net.Listener
}

// New opens every component. On failure it closes what it opened.
func New(ctx context.Context, cfg *config.Config, opt Options) (_ *Server, err error) {
	s := &Server{Config: cfg, Registry: prometheus.NewRegistry(), stdout: opt.Stdout, ln: opt.Listener}
	if s.stdout == nil {
		s.stdout = os.Stdout
	}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	s.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	s.DB, err = store.Open(ctx, cfg.DB, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	s.closers = append(s.closers, func() { _ = s.DB.Close() })
	slog.Info("database ready", "dialect", s.DB.Dialect)

	keys, generated, err := credentials.OpenKeyring(ctx, s.DB, cfg.DataDir, cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	if generated {
		slog.Warn("generated a new secret key for credentials and signed URLs; back it up with the data directory", "path", cfg.DataDir+"/"+credentials.KeyFile)
	}

	syncEvery, _ := cfg.NATSSyncInterval() // checked by config validation
	busCfg := bus.Config{URL: cfg.NATS, DataDir: cfg.DataDir, Listen: cfg.NATSListen, Name: cfg.NodeName, SyncInterval: syncEvery, Token: cfg.NATSToken,
		ClusterListen: cfg.NATSCluster, Routes: cfg.Routes(), ClusterName: cfg.NATSClusterName, Replicas: cfg.Replicas()}
	if cfg.MQTTEnabled() {
		// The default :1883 moves aside when taken; an address asked for must be had.
		busCfg.MQTTListen, busCfg.MQTTFallback = cfg.MQTTListen, !cfg.IsSet("mqtt-listen")
	}
	s.Bus, err = bus.Open(ctx, busCfg)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	s.closers = append(s.closers, s.Bus.Close)

	s.Files, err = blob.Open(ctx, cfg.Files, cfg.DataDir, keys.Derive("signed-urls"), cfg.PublicBase())
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.Files.Close() })

	s.Auth = auth.New(s.DB, cfg.TokenTimeout)
	s.OperatorID, err = s.Auth.Bootstrap(ctx, auth.BootstrapOptions{
		Email: cfg.RootEmail, Password: cfg.RootPassword,
		RootKeyID: cfg.RootAuthKeyID, RootKey: cfg.RootAuthKey, DataDir: cfg.DataDir,
		GeneratedKey: func(id, secret, path string) {
			// Printed once, to stdout only (never to the log).
			fmt.Fprintf(s.stdout, "\nnagare: generated the root auth key (shown once; also saved to %s, mode 0600)\n  authKeyId: %s\n  authKey:   %s\n\n", path, id, secret)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("auth bootstrap: %w", err)
	}

	s.Inventory = inventory.New(s.DB)
	// The Harvest outbox is per node: a node must keep its name.
	node := cfg.NodeName
	if node == "" {
		node, _ = os.Hostname()
	}
	s.Data, err = harvest.NewData(ctx, s.DB, s.Bus, s.Inventory, harvest.DataOptions{MaxPublishBytes: cfg.MaxPublishBytes, Node: node}, s.Registry)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Data.Close)
	s.MQTT, err = mqtt.New(ctx, s.Bus, s.Auth, s.Inventory, s.Data, mqtt.Options{OperatorID: s.OperatorID, Origins: []string{cfg.PublicBase()}}, s.Registry)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.MQTT.Close)
	s.HarvestFiles = harvest.NewFiles(s.Files, harvest.FilesOptions{MaxFileBytes: cfg.MaxFileBytes, SignedURLTTL: cfg.SignedURLTTL})
	s.Credentials = credentials.New(s.DB, keys)
	s.Shadows, err = shadow.New(ctx, s.Bus, shadow.Options{OperatorID: s.OperatorID}, s.Registry)
	if err != nil {
		return nil, err
	}
	if err := s.Shadows.Start(ctx); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Shadows.Close)

	s.Router = api.NewRouter(s.Auth, s.Registry)
	s.Vision = s.newVision(cfg)
	s.Flow, err = flow.New(ctx, s.DB, s.Bus, &flow.Deps{
		Data: s.Data, Files: s.HarvestFiles, Credentials: s.Credentials, Router: s.Router,
		HTTP: flow.NewHTTPClient(), Vision: s.Vision,
		Shadows:    s.Shadows,
		LineAPIURL: cfg.LineAPIURL, LineDataURL: cfg.LineDataURL, MaxContentBytes: cfg.MaxFileBytes,
		BlobFileRoots: filepath.SplitList(cfg.BlobFileRoots),
	}, s.Inventory, s.Auth, flow.Options{
		Node: node, AckWait: cfg.FlowAckWait, BackoffBase: cfg.FlowRetryBackoff,
		RunRetention: cfg.FlowRunRetention, FailedRetention: cfg.FlowFailedRetention,
		PublicBase: cfg.PublicBase(), HookKey: keys.Derive("flux-webhooks"), DeviceSources: true,
	}, s.Registry)
	if err != nil {
		return nil, err
	}
	s.HarvestFiles.SetOnChange(s.Flow.FileChanged)
	allow, _ := config.ParseNets(cfg.CameraAllowNets) // checked by config validation
	deny, _ := config.ParseNets(cfg.CameraDenyNets)
	s.Cameras = camera.New(s.DB, s.Files, s.HarvestFiles, s.Credentials, s.Inventory, camera.Options{
		RTSP:    rtsp.Options{Policy: rtsp.Policy{Allow: allow, Deny: deny}},
		Decoder: &snapshot.FFmpeg{Path: cfg.FFmpeg},
		Node:    node,
	})
	s.Cameras.SetSpoolDir(filepath.Join(cfg.DataDir, "recordings"))
	if cfg.Clustered() {
		// One recorder per camera across the nodes, taken over within
		// the lease time when its node goes away.
		leases, err := s.Bus.OpenLeases(ctx, "CAMERA_OWNERS", node, cameraLeaseTTL)
		if err != nil {
			return nil, err
		}
		s.Cameras.SetLeaser(leases)
	}
	s.Live = live.New(s.Auth, s.Bus.NC, s.Registry)
	s.Live.AddTopic(harvest.LiveTopic())
	s.Live.AddTopic(shadow.LiveTopic())
	register(s.Router, s.Auth, s.Inventory, s.Data, s.HarvestFiles, s.Credentials, s.Flow, s.Cameras, s.Vision, dashboard.New(s.DB).WithHarvest(s.Data, s.HarvestFiles), s.Live, s.Shadows)
	s.MQTT.Mount(s.Router)
	web.Register(s.Router, cfg.WebDir)
	s.Router.HandleHTTP("GET /livez", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	}))
	s.Router.HandleHTTP("GET /readyz", http.HandlerFunc(s.readyz))
	s.Router.HandleHTTP("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	s.Router.HandleHTTP(blob.SignedPath, http.HandlerFunc(s.Files.ServeSigned))
	return s, nil
}

// cameraLeaseTTL is how long a camera stays with a node that stopped
// renewing its lease (renewed every third of it): the failover time.
const cameraLeaseTTL = 15 * time.Second

type registrar interface{ Register(*api.Router) }

// register mounts every service's operations; Operations uses the same
// list, so the generated API docs cannot drift from what is served.
func register(rt *api.Router, services ...registrar) {
	for _, s := range services {
		s.Register(rt)
	}
}

// Operations lists every API operation without opening any store (docs).
func Operations() []api.Op {
	rt := api.NewRouter(nil, nil)
	register(rt, &auth.Service{}, &inventory.Service{}, &harvest.Data{}, &harvest.Files{}, &credentials.Service{}, &flow.Engine{}, &camera.Service{}, vision.New(vision.Options{}), &dashboard.Service{}, live.New(nil, nil, nil), &shadow.Service{})
	return rt.Ops()
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	switch {
	case !s.ready.Load():
		http.Error(w, "not ready: not accepting requests", http.StatusServiceUnavailable)
	case s.DB.PingContext(ctx) != nil:
		http.Error(w, "not ready: database unreachable", http.StatusServiceUnavailable)
	case !s.Bus.Ready():
		http.Error(w, "not ready: NATS disconnected", http.StatusServiceUnavailable)
	default:
		w.Write([]byte("ok\n"))
	}
}

// Listen binds the HTTP listener (so callers learn the port before Serve).
func (s *Server) Listen() error {
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.Config.Listen, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound HTTP address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until ctx is cancelled, then stops gracefully:
// readiness goes false, the listener closes, in-flight requests get
// ShutdownTimeout to finish, and the stores are closed.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.http = &http.Server{
		Handler:           s.Router,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	if err := s.Flow.Start(ctx); err != nil {
		s.closeAll()
		return fmt.Errorf("flow engine: %w", err)
	}
	s.closers = append(s.closers, s.Flow.Close)
	if err := s.Cameras.Start(ctx); err != nil {
		s.closeAll()
		return fmt.Errorf("cameras: %w", err)
	}
	s.closers = append(s.closers, s.Cameras.Close)
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	s.ready.Store(true)
	slog.Info("nagare serving", "addr", s.Addr(), "operator", s.OperatorID, "public_url", s.Config.PublicBase())
	go s.pruneLoop(ctx)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.ready.Store(false)
	slog.Info("shutting down", "timeout", s.Config.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.Config.ShutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(sctx); err != nil {
		slog.Warn("graceful shutdown incomplete", "err", err)
	}
	s.closeAll()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	slog.Info("stopped")
	return nil
}

func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Auth.PruneTokens(ctx); err != nil {
				slog.Warn("pruning tokens", "err", err)
			} else if n > 0 {
				slog.Debug("pruned expired tokens", "count", n)
			}
		}
	}
}

// Close releases everything without serving (for New's callers that stop early).
func (s *Server) Close() { s.closeAll() }

func (s *Server) closeAll() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
