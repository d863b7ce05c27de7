// Package mqtt is nagare's MQTT front: the embedded NATS server speaks
// MQTT 3.1.1 (QoS 0/1/2, retained messages, wills and persistent sessions
// are NATS's); this package decides who may log in and on which topics
// (devices by device ID and secret, users by API key and token), serves
// MQTT over WebSocket at /mqtt on nagare's HTTP port, and stores what
// devices publish on devices/<id>/data in Harvest Data. See docs/mqtt.md.
package mqtt

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/bus"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/inventory"
)

// Options configure the service.
type Options struct {
	// OperatorID owns the devices whose MQTT data is stored.
	OperatorID string
	// Origins may open /mqtt besides the request's own host (the public
	// URL, when a proxy in front rewrites Host).
	Origins []string
}

// Service is the MQTT front of one node.
type Service struct {
	bus     *bus.Bus
	users   api.Authenticator
	devices DeviceAuthenticator
	inv     *inventory.Service
	data    *harvest.Data
	opts    Options

	it         jetstream.MessagesContext
	stopIngest context.CancelFunc
	ingestDone chan struct{}

	m metrics
}

type metrics struct {
	logins          *prometheus.CounterVec
	stored, dropped prometheus.Counter
}

// New installs MQTT login checks on the bus and starts storing device
// data published over MQTT (also with an external NATS, whose own MQTT
// listener publishes on the same subjects). Metrics go to reg if set.
func New(ctx context.Context, b *bus.Bus, users api.Authenticator, inv *inventory.Service, data *harvest.Data, opts Options, reg prometheus.Registerer) (*Service, error) {
	s := &Service{bus: b, users: users, devices: inv, inv: inv, data: data, opts: opts,
		m: metrics{
			logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nagare_mqtt_logins_total", Help: "MQTT logins by result (accepted, refused)."}, []string{"result"}),
			stored: prometheus.NewCounter(prometheus.CounterOpts{Name: "nagare_mqtt_data_stored_total", Help: "Device messages on devices/<id>/data stored in Harvest Data."}),
			dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "nagare_mqtt_data_dropped_total",
				Help: "Device messages on devices/<id>/data that could not be stored (unknown device, Harvest off, too large)."}),
		}}
	if reg != nil {
		reg.MustRegister(s.m.logins, s.m.stored, s.m.dropped)
	}
	b.SetMQTTAuth(s.Login)
	if err := s.startIngest(ctx); err != nil {
		return nil, fmt.Errorf("mqtt device data stream: %w", err)
	}
	return s, nil
}

// Mount serves MQTT over WebSocket at /mqtt when this node's embedded
// NATS serves MQTT.
func (s *Service) Mount(mux interface{ HandleHTTP(string, http.Handler) }) {
	if addr := s.bus.WebSocketAddr(); addr != "" {
		mux.HandleHTTP("GET "+Path, WebSocketProxy(addr, s.opts.Origins))
	}
}

// Close stops storing device data: messages already taken from the
// stream are stored first (for at most 10 s); the rest stay in the stream
// for the next start or another node.
func (s *Service) Close() {
	if s.it == nil {
		return
	}
	s.it.Stop()
	select {
	case <-s.ingestDone:
	case <-time.After(10 * time.Second):
		s.stopIngest()
		<-s.ingestDone
	}
	s.stopIngest()
	s.it = nil
}
