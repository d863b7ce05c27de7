package credentials

import (
	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/store"
)

// Service implements the credentials store.
type Service struct {
	db   *store.DB
	keys *Keyring
}

// New creates the credentials service.
func New(db *store.DB, keys *Keyring) *Service { return &Service{db: db, keys: keys} }

// Register mounts the /v1/credentials operations.
func (s *Service) Register(rt *api.Router) {}
