package flow

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gopkg.in/yaml.v3"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/auth"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/store"
)

func errNoApp(name string) error { return api.NotFound("no app %q", name) }

func errNoChannel(la *loadedApp, ch string) error {
	return api.NotFound("app %s has no channel %q", la.App.Name, ch)
}

func errDisabled(name string) error {
	return api.Errorf(409, api.CodeConflict, "app %s is disabled; enable it with POST /v1/flux/apps/%s/enable", name, name)
}

// Lookup returns the checks that validation runs against this node's
// stores for an operator (credentials exist, operations exist).
func (e *Engine) Lookup(ctx context.Context, op string) Lookup {
	var lk Lookup
	if e.deps.Credentials != nil {
		lk.Credential = func(id string) bool {
			_, err := e.deps.Credentials.Describe(ctx, op, id)
			return err == nil
		}
	}
	if e.deps.Router != nil {
		names := map[string]bool{}
		for _, o := range e.deps.Router.Ops() {
			names[o.Name] = true
		}
		lk.Operation = func(n string) bool { return names[n] }
	}
	return lk
}

// Parse validates an app file against this node's stores.
func (e *Engine) Parse(ctx context.Context, op, file string, src []byte) (*App, error) {
	return Parse(file, src, e.Lookup(ctx, op))
}

// Put stores an app (creating it, or replacing it when replace is true),
// then starts it: timers are scheduled, webhook URLs registered and every
// node reloads it. created reports a new app.
func (e *Engine) Put(ctx context.Context, op string, app *App, replace bool) (created bool, err error) {
	now := e.now().UnixMilli()
	la, err := compile(op, app)
	if err != nil {
		return false, err
	}
	err = e.db.Tx(ctx, func(tx *sql.Tx) error {
		var version int64
		var salt string
		var enabled int
		switch err := tx.QueryRow(`SELECT version, hook_salt, enabled FROM flux_apps WHERE operator_id = $1 AND name = $2`, op, app.Name).Scan(&version, &salt, &enabled); {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			salt = auth.RandomString(16, "abcdefghijklmnopqrstuvwxyz0123456789")
			if _, err := tx.Exec(`INSERT INTO flux_apps (operator_id, name, description, enabled, source, version, hook_salt, created_at, updated_at)
				VALUES ($1,$2,$3,$4,$5,1,$6,$7,$7)`, op, app.Name, app.Description, boolInt(app.Enabled), string(app.Source), salt, now); err != nil {
				if store.IsUniqueViolation(err) {
					return api.Conflict("app %s already exists", app.Name)
				}
				return err
			}
		case err != nil:
			return err
		case !replace:
			return api.Conflict("app %s already exists; PUT /v1/flux/apps/%s replaces it", app.Name, app.Name)
		default:
			if _, err := tx.Exec(`UPDATE flux_apps SET description = $1, enabled = $2, source = $3, version = version + 1, updated_at = $4
				WHERE operator_id = $5 AND name = $6`, app.Description, boolInt(app.Enabled), string(app.Source), now, op, app.Name); err != nil {
				return err
			}
		}
		la.HookSalt = salt
		return e.putHooks(tx, la)
	})
	if err != nil {
		return false, err
	}
	return created, e.changed(ctx, op, app.Name)
}

// SetEnabled enables or disables an app.
func (e *Engine) SetEnabled(ctx context.Context, op, name string, enabled bool) error {
	err := e.db.Tx(ctx, func(tx *sql.Tx) error {
		var source string
		switch err := tx.QueryRowContext(ctx, `SELECT source FROM flux_apps WHERE operator_id = $1 AND name = $2`, op, name).Scan(&source); {
		case errors.Is(err, sql.ErrNoRows):
			return errNoApp(name)
		case err != nil:
			return err
		}
		// The stored file says the same, so what GET …?format=yaml gives
		// back applies to the same state.
		_, err := tx.ExecContext(ctx, `UPDATE flux_apps SET enabled = $1, source = $2, version = version + 1, updated_at = $3 WHERE operator_id = $4 AND name = $5`,
			boolInt(enabled), withEnabled(source, enabled), e.now().UnixMilli(), op, name)
		return err
	})
	if err != nil {
		return err
	}
	return e.changed(ctx, op, name)
}

var (
	topEnabled = regexp.MustCompile(`(?m)^enabled:[ \t]*[^\s#]*`)
	topName    = regexp.MustCompile(`(?m)^name:.*$`)
)

// withEnabled sets the top-level enabled key of an app's YAML source,
// editing that one line (or adding one after name: when disabling), so
// comments and layout stay as written. A source it cannot edit that way
// (JSON, flow style, an odd layout) is returned as it is: the state is
// kept apart anyway.
func withEnabled(source string, enabled bool) string {
	v := "enabled: " + strconv.FormatBool(enabled)
	edited := source
	switch loc := topName.FindStringIndex(source); {
	case topEnabled.MatchString(source):
		edited = topEnabled.ReplaceAllLiteralString(source, v)
	case enabled: // absent means enabled
	case loc != nil:
		edited = source[:loc[1]] + "\n" + v + source[loc[1]:]
	}
	if edited == source {
		return source
	}
	var top struct{ Enabled *bool }
	if err := yaml.Unmarshal([]byte(edited), &top); err != nil || top.Enabled == nil || *top.Enabled != enabled {
		return source
	}
	return edited
}

// Delete removes an app; its run history stays until pruned.
func (e *Engine) Delete(ctx context.Context, op, name string) error {
	err := e.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM flux_apps WHERE operator_id = $1 AND name = $2`, op, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNoApp(name)
		}
		_, err = tx.Exec(`DELETE FROM flux_hooks WHERE operator_id = $1 AND app = $2`, op, name)
		return err
	})
	if err != nil {
		return err
	}
	return e.changed(ctx, op, name)
}

// changed reloads an app here, reschedules its timers and tells the other
// nodes to reload it.
func (e *Engine) changed(ctx context.Context, op, name string) error {
	if err := e.reload(ctx, op, name); err != nil {
		return err
	}
	if err := e.syncTimers(ctx, op, name); err != nil {
		return fmt.Errorf("scheduling timers: %w", err)
	}
	return e.bus.NC.Publish(subjChanged, []byte(op+"/"+name))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// loadAll loads every stored app at start-up.
func (e *Engine) loadAll(ctx context.Context) error {
	rows, err := e.db.QueryContext(ctx, `SELECT operator_id, name FROM flux_apps`)
	if err != nil {
		return err
	}
	var keys [][2]string
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			rows.Close()
			return err
		}
		keys = append(keys, k)
	}
	rows.Close()
	for _, k := range keys {
		if err := e.reload(ctx, k[0], k[1]); err != nil {
			slog.Error("flow: a stored app no longer loads; fix and re-apply it", "app", k[1], "err", err)
		}
	}
	return nil
}

// reload reads one app from the database into memory (or forgets it).
func (e *Engine) reload(ctx context.Context, op, name string) error {
	var src, salt string
	var enabled int
	var version, created, updated int64
	err := e.db.QueryRowContext(ctx, `SELECT source, enabled, version, hook_salt, created_at, updated_at FROM flux_apps WHERE operator_id = $1 AND name = $2`,
		op, name).Scan(&src, &enabled, &version, &salt, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		e.mu.Lock()
		delete(e.apps, appKey(op, name))
		e.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	app, err := Parse(name+".yaml", []byte(src), Lookup{})
	if err != nil {
		return err
	}
	la, err := compile(op, app)
	if err != nil {
		return err
	}
	la.Enabled, la.Version, la.HookSalt, la.gen = enabled == 1, version, salt, appGen(salt)
	la.Created, la.Updated = time.UnixMilli(created), time.UnixMilli(updated)
	e.mu.Lock()
	if old := e.apps[appKey(op, name)]; old == nil || old.Version <= la.Version {
		e.apps[appKey(op, name)] = la
	}
	e.mu.Unlock()
	return nil
}

// syncTimers replaces an app's timer schedules in the stream with the ones
// its current definition asks for (none when it is disabled or deleted).
// The schedules live in JetStream, so each fires once per period however
// many nodes run.
func (e *Engine) syncTimers(ctx context.Context, op, name string) error {
	prefix := subjTimer + op + "." + name + "."
	s, err := e.bus.JS.Stream(ctx, Stream)
	if err != nil {
		return err
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(prefix+">")); err != nil {
		return err
	}
	la := e.app(op, name)
	if la == nil {
		return e.purgeKeyed(ctx, s, op, name)
	}
	if !la.Enabled {
		return nil
	}
	for _, ch := range la.App.Channels {
		for i, src := range ch.Sources {
			if src.Kind != "timer" {
				continue
			}
			subject := prefix + ch.Name + "." + strconv.Itoa(i)
			body, _ := json.Marshal(&envelope{Op: op, App: name, Channel: ch.Name, Source: "timer", Payload: src.Config["payload"], Timer: subject, Gen: la.gen})
			opts := []jetstream.PublishOpt{jetstream.WithScheduleTarget(subjIn + op + "." + name + "." + ch.Name)}
			if d, ok := src.Config["interval"].(time.Duration); ok {
				opts = append(opts, jetstream.WithScheduleEvery(d))
			} else {
				opts = append(opts, jetstream.WithScheduleCron(strings.ToLower(src.Config["cron"].(string))))
				if tz, _ := src.Config["timezone"].(string); tz != "" && tz != "UTC" {
					opts = append(opts, jetstream.WithScheduleTimeZone(tz))
				}
			}
			if _, err := e.bus.JS.Publish(ctx, subject, body, opts...); err != nil {
				return fmt.Errorf("channel %s timer: %w", ch.Name, err)
			}
		}
	}
	return nil
}

// Incoming webhooks: each channel with a webhook or slack source gets a
// secret URL /v1/flux/webhooks/<token>. The token is derived from the node secret
// key, so it can be shown again; only its hash is stored for lookup.

func (e *Engine) hookToken(la *loadedApp, channel string) string {
	mac := hmac.New(sha256.New, e.opts.HookKey)
	fmt.Fprintf(mac, "%s\x00%s\x00%s\x00%s", la.OperatorID, la.App.Name, channel, la.HookSalt)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))[:32]
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

func (e *Engine) putHooks(tx *sql.Tx, la *loadedApp) error {
	if _, err := tx.Exec(`DELETE FROM flux_hooks WHERE operator_id = $1 AND app = $2`, la.OperatorID, la.App.Name); err != nil {
		return err
	}
	for _, ch := range la.App.Channels {
		if !hasHook(ch) {
			continue
		}
		if _, err := tx.Exec(`INSERT INTO flux_hooks (token_hash, operator_id, app, channel) VALUES ($1,$2,$3,$4)`,
			hashToken(e.hookToken(la, ch.Name)), la.OperatorID, la.App.Name, ch.Name); err != nil {
			return err
		}
	}
	return nil
}

func hasSource(ch *Channel, kind string) bool {
	for _, s := range ch.Sources {
		if s.Kind == kind {
			return true
		}
	}
	return false
}

// WebhookURL is a channel's incoming-webhook URL ("" if it has none).
func (e *Engine) WebhookURL(la *loadedApp, channel string) string {
	ch := la.channels[channel]
	if ch == nil || !hasHook(ch) {
		return ""
	}
	return strings.TrimRight(e.opts.PublicBase, "/") + "/v1/flux/webhooks/" + e.hookToken(la, channel)
}

// resolveHook finds the app channel of a webhook token.
func (e *Engine) resolveHook(ctx context.Context, token string) (op, app, channel string, err error) {
	if len(token) != 32 {
		return "", "", "", sql.ErrNoRows
	}
	err = e.db.QueryRowContext(ctx, `SELECT operator_id, app, channel FROM flux_hooks WHERE token_hash = $1`, hashToken(token)).Scan(&op, &app, &channel)
	return
}

// Device publish source: a durable consumer on the HARVEST stream.
func (e *Engine) startDevices(ctx context.Context) error {
	cons, err := e.bus.JS.CreateOrUpdateConsumer(ctx, harvest.Stream, jetstream.ConsumerConfig{
		Durable:       consumerDev,
		FilterSubject: harvest.SubjectPrefix + harvest.ResourceDevice + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.opts.AckWait,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		MaxAckPending: e.opts.Workers * 4,
	})
	if err != nil {
		return fmt.Errorf("flow device consumer: %w", err)
	}
	cc, err := cons.Consume(e.dispatch, jetstream.PullMaxMessages(e.opts.Workers), consumeErrors)
	if err != nil {
		return err
	}
	e.consume = append(e.consume, cc)
	return nil
}

type target struct{ app, channel string }

// deviceMatch is a source fed by device data (device, button) that
// matches a publish.
type deviceMatch struct {
	t   target
	src *Source
}

// matchDevice finds the enabled apps' sources of the given kinds that
// match a device, by its ID or through its group; the group is looked up
// only when some source names one. It returns the matches and the
// device's group ("" when not looked up or in none).
func (e *Engine) matchDevice(ctx context.Context, op, deviceID string, kinds ...string) ([]deviceMatch, string) {
	var matches, groupSources []deviceMatch
	for _, la := range e.appsOf(op) {
		if !la.Enabled {
			continue
		}
		for _, ch := range la.App.Channels {
			for _, s := range ch.Sources {
				if !contains(kinds, s.Kind) {
					continue
				}
				if id, _ := s.Config["deviceId"].(string); id == deviceID {
					matches = append(matches, deviceMatch{target{la.App.Name, ch.Name}, s})
				} else if g, _ := s.Config["groupId"].(string); g != "" {
					groupSources = append(groupSources, deviceMatch{target{la.App.Name, ch.Name}, s})
				}
			}
		}
	}
	var groupID string
	if len(groupSources) > 0 {
		if d, err := e.inv.GetDevice(ctx, op, deviceID); err == nil {
			groupID = d.GroupID
		}
		for _, gs := range groupSources {
			if groupID != "" && gs.src.Config["groupId"] == groupID {
				matches = append(matches, gs)
			}
		}
	}
	return matches, groupID
}

// handleDevice turns a stored Harvest Data entry into events for the
// channels whose device (or button) source matches the device or its
// group.
func (e *Engine) handleDevice(ctx context.Context, m jetstream.Msg) {
	op := m.Headers().Get(harvest.OperatorHeader)
	var entry harvest.DataEntry
	if err := json.Unmarshal(m.Data(), &entry); err != nil || op == "" {
		_ = m.Term()
		return
	}
	matches, groupID := e.matchDevice(ctx, op, entry.ResourceID, "device", "button")
	var payload any = entry.Content
	if entry.ContentEncoding == "" && strings.Contains(entry.ContentType, "json") {
		var v any
		if json.Unmarshal([]byte(entry.Content), &v) == nil {
			payload = v
		}
	}
	ctxv := map[string]any{"eventType": "device", "time": entry.Time, "contentType": entry.ContentType,
		"resource": map[string]any{"resourceType": entry.ResourceType, "resourceId": entry.ResourceID}}
	if groupID != "" {
		ctxv["group"] = map[string]any{"groupId": groupID}
	}
	for _, dm := range matches {
		t, kind, msg, cv := dm.t, dm.src.Kind, payload, ctxv
		if kind == "button" {
			var ok bool
			if msg, ok = buttonMessage(entry.ResourceID, payload, dm.src); !ok {
				continue // not a press, or a click type this source ignores
			}
			cv = maps.Clone(ctxv)
			cv["eventType"] = "button"
		}
		id := childID(kind, m.Subject(), strconv.FormatInt(entry.Time, 10), t.app, t.channel)
		ev := &envelope{ID: id, Run: id, Op: op, App: t.app, Channel: t.channel, Source: kind,
			Time: entry.Time, Payload: msg, Context: cv, Event: &origin{Payload: msg, Context: cv}}
		if err := e.publishEvent(ctx, ev, 0); err != nil {
			slog.Warn("flow: device event", "app", t.app, "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
	}
	_ = m.Ack()
}

// FileChanged is the Harvest Files change hook: it sends an event to every
// channel whose files source covers the path and the kind of change. A
// change made by a flow action starts a run that carries on its cause's
// hop count, so a self-triggering files loop stops at the hop limit.
func (e *Engine) FileChanged(ctx context.Context, ev harvest.FileEvent) {
	hop := causeHop(ctx) + 1
	for _, la := range e.appsOf(ev.OperatorID) {
		if !la.Enabled {
			continue
		}
		for _, ch := range la.App.Channels {
			for _, s := range ch.Sources {
				if s.Kind != "files" {
					continue
				}
				prefix, _ := s.Config["prefix"].(string)
				kinds, _ := s.Config["events"].([]string)
				if !strings.HasPrefix(ev.Path, prefix) || !contains(kinds, ev.Kind) {
					continue
				}
				payload := map[string]any{"eventType": ev.Kind, "path": ev.Path, "contentType": ev.ContentType, "size": ev.Size}
				if ev.Kind != "deleted" && e.deps.Files != nil {
					if u, err := e.deps.Files.SignedURL(ctx, ev.OperatorID, ev.Path, time.Hour); err == nil {
						payload["presignedUrls"] = map[string]any{"get": u}
					}
				}
				cv := map[string]any{"eventType": "harvest_files", "configurationId": la.App.Name + "/" + ch.Name}
				id := childID("files", ev.OperatorID, ev.Path, ev.Kind, strconv.FormatInt(ev.Time.UnixNano(), 10), la.App.Name, ch.Name)
				env := &envelope{ID: id, Run: id, Op: ev.OperatorID, App: la.App.Name, Channel: ch.Name, Source: "files", Hop: hop,
					Time: ev.Time.UnixMilli(), Payload: payload, Context: cv, Event: &origin{Payload: payload, Context: cv}}
				if err := e.publishEvent(ctx, env, 0); err != nil {
					slog.Warn("flow: files event lost", "app", la.App.Name, "path", ev.Path, "err", err)
				}
			}
		}
	}
}
