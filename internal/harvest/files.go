package harvest

import (
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/blob"
)

// FilesOptions configure Harvest Files.
type FilesOptions struct {
	MaxFileBytes int64
	SignedURLTTL time.Duration
}

// Files implements Harvest Files on a blob store.
type Files struct {
	store *blob.Store
	opts  FilesOptions
}

// NewFiles creates the Harvest Files service.
func NewFiles(st *blob.Store, opts FilesOptions) *Files { return &Files{store: st, opts: opts} }

// Register mounts the /v1/files operations.
func (f *Files) Register(rt *api.Router) {}
