package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/harvest"
)

// Device data: an MQTT publish on devices/<id>/data is the NATS message
// devices.<id>.data. The DEVICE_MQTT stream captures those subjects
// inside NATS as they are published (work-queue retention: a message
// leaves the stream once stored), and every node consumes it through one
// shared durable consumer, so each message is stored by one node, also
// after a restart.
const (
	DataStream   = "DEVICE_MQTT"
	dataSubjects = "devices.*.data"
	dataConsumer = "harvest"
	ingestShards = 64 // per-device order is kept: one device, one shard
)

// DataTopic is the MQTT topic a device publishes Harvest Data on.
func DataTopic(deviceID string) string { return "devices/" + deviceID + "/data" }

func (s *Service) startIngest(ctx context.Context) error {
	stream, err := s.bus.EnsureStream(ctx, jetstream.StreamConfig{
		Name:        DataStream,
		Description: "device data published over MQTT (devices/<id>/data), until stored in Harvest Data",
		Subjects:    []string{dataSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      7 * 24 * time.Hour,
	})
	if err != nil {
		return err
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       dataConsumer,
		Description:   "stores device data in Harvest Data",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 4096,
	})
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return err
	}
	s.it = it
	ictx, cancel := context.WithCancel(context.Background())
	s.stopIngest = cancel
	var wg sync.WaitGroup
	shards := make([]chan jetstream.Msg, ingestShards)
	for i := range shards {
		shards[i] = make(chan jetstream.Msg, 64)
		wg.Add(1)
		go func(in <-chan jetstream.Msg) {
			defer wg.Done()
			last := map[string]time.Time{} // this shard's devices' last entry times
			for m := range in {
				s.store(ictx, m, last)
			}
		}(shards[i])
	}
	s.ingestDone = make(chan struct{})
	go func() {
		defer close(s.ingestDone)
		defer wg.Wait()
		defer func() {
			for _, c := range shards {
				close(c)
			}
		}()
		for {
			m, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					slog.Warn("MQTT device data: consumer stopped", "err", err)
				}
				return
			}
			h := fnv.New32a()
			h.Write([]byte(m.Subject()))
			shards[h.Sum32()%ingestShards] <- m
		}
	}()
	return nil
}

// store puts one device message into Harvest Data, exactly as an HTTP
// device publish would be (CheckDevicePublish, then Put), at the time NATS
// accepted it. Harvest keeps one entry per device and millisecond: a
// device's messages (one shard stores them in order) get increasing
// times, so a burst faster than one per millisecond spreads over the
// following milliseconds instead of colliding. last holds the shard's
// devices' latest times. A message that can never be stored (unknown
// device, Harvest off, too large) is dropped; any other failure is
// retried.
func (s *Service) store(ctx context.Context, m jetstream.Msg, last map[string]time.Time) {
	id := deviceOfSubject(m.Subject())
	t := time.Now()
	if meta, err := m.Metadata(); err == nil {
		t = meta.Timestamp
	}
	if prev, ok := last[id]; ok && !t.After(prev) {
		t = prev.Add(time.Millisecond)
	}
	body := m.Data()
	stored, err := s.put(ctx, id, body, t)
	if err == nil {
		if len(last) > 100_000 {
			clear(last) // bounded: only bursts need the memory
		}
		last[id] = stored
		s.m.stored.Inc()
		_ = m.Ack()
		return
	}
	var ae *api.Error
	if id == "" || (errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500) {
		s.m.dropped.Inc()
		level := slog.LevelWarn
		if ae != nil && ae.Code == api.CodeHarvestDisabled {
			level = slog.LevelDebug // Harvest off is a choice, not a fault
		}
		slog.Log(ctx, level, "MQTT device data dropped", "device", id, "bytes", len(body), "reason", reason(err))
		_ = m.Term()
		return
	}
	if ctx.Err() != nil {
		_ = m.Nak() // stopping: the next node or start stores it
		return
	}
	last[id] = t // the retry tries later milliseconds
	slog.Warn("MQTT device data not stored yet; retrying", "device", id, "err", err)
	_ = m.NakWithDelay(time.Second)
}

func (s *Service) put(ctx context.Context, id string, body []byte, t time.Time) (time.Time, error) {
	if id == "" {
		return time.Time{}, api.BadRequest("not a device data subject")
	}
	dev, err := s.inv.GetDevice(ctx, s.opts.OperatorID, id)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.data.CheckDevicePublish(ctx, dev, int64(len(body))); err != nil {
		return time.Time{}, err
	}
	ctype := "application/octet-stream"
	if json.Valid(body) {
		ctype = "application/json"
	}
	stored, err := s.data.Put(ctx, dev.OperatorID, harvest.ResourceDevice, dev.DeviceID, ctype, body, t)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
		return time.Time{}, errors.New(ae.Message) // backlog or shutting down: retry
	}
	return stored, err
}

// deviceOfSubject returns <id> of devices.<id>.data, or "".
func deviceOfSubject(subj string) string {
	rest, ok := strings.CutPrefix(subj, "devices.")
	if !ok {
		return ""
	}
	id, ok := strings.CutSuffix(rest, ".data")
	if !ok || !deviceIDRE.MatchString(id) {
		return ""
	}
	return id
}
