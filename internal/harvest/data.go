// Package harvest owns Harvest Data (time-series entries published by
// devices) and Harvest Files (a path-addressed file store).
package harvest

import (
	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/bus"
	"github.com/nagare-iot/nagare/internal/inventory"
	"github.com/nagare-iot/nagare/internal/store"
)

// DataOptions limit Harvest Data.
type DataOptions struct {
	MaxPublishBytes int64
}

// Data implements Harvest Data.
type Data struct {
	db   *store.DB
	bus  *bus.Bus
	inv  *inventory.Service
	opts DataOptions
}

// NewData creates the Harvest Data service.
func NewData(db *store.DB, b *bus.Bus, inv *inventory.Service, opts DataOptions) *Data {
	return &Data{db: db, bus: b, inv: inv, opts: opts}
}

// Register mounts publish and the data query operations.
func (d *Data) Register(rt *api.Router) {}

// Close flushes pending writes.
func (d *Data) Close() {}
