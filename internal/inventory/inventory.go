// Package inventory owns devices, groups, SIMs and device secrets.
package inventory

import (
	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/store"
)

// Service implements the inventory API.
type Service struct {
	db *store.DB
}

// New creates the inventory service.
func New(db *store.DB) *Service { return &Service{db: db} }

// Register mounts the device, group and SIM operations.
func (s *Service) Register(rt *api.Router) {}
