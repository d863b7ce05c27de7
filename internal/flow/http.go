package flow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/yamlerr"
)

// MaxAppBytes bounds an app file.
const MaxAppBytes = 1 << 20

// Register mounts the Flux API.
func (e *Engine) Register(rt *api.Router) {
	ops := []api.Op{
		{Name: "Flux:listApps", Method: "GET", Path: "/v1/flux/apps", Summary: "List apps", Handler: e.listApps},
		{Name: "Flux:createApp", Method: "POST", Path: "/v1/flux/apps", Summary: "Create an app from its YAML (or JSON) definition", Handler: e.createApp},
		{Name: "Flux:validateApp", Method: "POST", Path: "/v1/flux/validate", Summary: "Check an app definition and list every problem, without storing it", Handler: e.validateApp},
		{Name: "Flux:getApp", Method: "GET", Path: "/v1/flux/apps/{app_id}", Summary: "Get an app (its YAML as applied with ?format=yaml or Accept: application/yaml)", Handler: e.getApp},
		{Name: "Flux:putApp", Method: "PUT", Path: "/v1/flux/apps/{app_id}", Summary: "Create or replace an app (nagare apply)", Handler: e.putApp},
		{Name: "Flux:deleteApp", Method: "DELETE", Path: "/v1/flux/apps/{app_id}", Summary: "Delete an app (its run history stays until pruned)", Handler: e.deleteApp},
		{Name: "Flux:enableApp", Method: "POST", Path: "/v1/flux/apps/{app_id}/enable", Summary: "Enable an app", Handler: e.enableApp(true)},
		{Name: "Flux:disableApp", Method: "POST", Path: "/v1/flux/apps/{app_id}/disable", Summary: "Disable an app: its sources stop firing", Handler: e.enableApp(false)},
		{Name: "Flux:sendMessage", Method: "POST", Path: "/v1/flux/apps/{app_id}/channels/{channel_id}/messages", Summary: "Send a message to a channel (API / manual source)", Handler: e.sendMessage},
		{Name: "Flux:testApp", Method: "POST", Path: "/v1/flux/apps/{app_id}/channels/{channel_id}/test", Summary: "Send a test message and wait for its run to finish (?timeout=seconds, default 30)", Handler: e.testApp},
		{Name: "Flux:listRuns", Method: "GET", Path: "/v1/flux/apps/{app_id}/runs", Summary: "List an app's runs, newest first (?status=, ?limit=, ?last_evaluated_key=)", Handler: e.listRuns},
		{Name: "Flux:getRun", Method: "GET", Path: "/v1/flux/apps/{app_id}/runs/{run_id}", Summary: "Get a run with its step-by-step trace", Handler: e.getRun},
		{Name: "Flux:receiveWebhook", Method: "POST", Path: "/v1/flux/webhooks/{token}", Auth: api.AuthNone, Summary: "Incoming webhook of a channel (the secret URL is the credential; Slack and LINE requests are also authenticated by token or signature)", Handler: e.receiveWebhook},
	}
	for _, op := range ops {
		rt.Handle(op)
	}
}

func operator(r *http.Request) string { return api.PrincipalFrom(r.Context()).OperatorID }

// AppView is an app as the API shows it.
type AppView struct {
	AppID       string        `json:"appId"`
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Enabled     bool          `json:"enabled"`
	Version     int64         `json:"version"`
	CreatedTime int64         `json:"createdTime"`
	UpdatedTime int64         `json:"updatedTime"`
	Channels    []ChannelView `json:"channels"`
}

// ChannelView is a channel of an AppView.
type ChannelView struct {
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Sources     []map[string]any `json:"sources"`
	Actions     []ActionView     `json:"actions"`
	WebhookURL  string           `json:"webhookUrl,omitempty"`
}

// ActionView is an action of a ChannelView: its definition with defaults
// applied, so the console can show it without parsing YAML.
type ActionView struct {
	Name          string         `json:"name"`
	Kind          string         `json:"kind"`
	Description   string         `json:"description,omitempty"`
	Condition     string         `json:"condition,omitempty"`
	Config        map[string]any `json:"config"` // the kind's fields, secret-looking keys masked
	Timeout       string         `json:"timeout"`
	Retries       int            `json:"retries"`
	Output        *OutputView    `json:"output,omitempty"`
	OnError       *OutputView    `json:"onError,omitempty"`
	OutputChannel string         `json:"outputChannel,omitempty"`
}

// OutputView is where an ActionView's result goes.
type OutputView struct {
	Channel   string `json:"channel"`
	Transform any    `json:"transform,omitempty"`
	Delay     string `json:"delay,omitempty"`
	ForEach   bool   `json:"forEach,omitempty"`
	Key       string `json:"key,omitempty"`
}

// showConfig prepares decoded fields for an API answer: durations as text
// ("2s"), and values under secret-looking keys masked. Secrets belong in
// the credentials store, but a file may still carry one by mistake.
func showConfig(cfg map[string]any) map[string]any {
	var conv func(v any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case time.Duration:
			return yamlerr.Duration(x)
		case map[string]any:
			m := make(map[string]any, len(x))
			for k, val := range x {
				m[k] = conv(val)
			}
			return m
		case []any:
			l := make([]any, len(x))
			for i, val := range x {
				l[i] = conv(val)
			}
			return l
		}
		return v
	}
	out, _ := maskSecrets(conv(cfg)).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

func outputView(o *Output) *OutputView {
	v := &OutputView{Channel: o.Channel, ForEach: o.ForEach, Key: o.Key}
	if o.Transform != nil {
		v.Transform = maskSecrets(o.Transform)
	}
	if o.Delay > 0 {
		v.Delay = yamlerr.Duration(o.Delay)
	}
	return v
}

func (e *Engine) view(la *loadedApp) *AppView {
	v := &AppView{AppID: la.App.Name, Name: la.App.Name, Description: la.App.Description, Enabled: la.Enabled,
		Version: la.Version, CreatedTime: la.Created.UnixMilli(), UpdatedTime: la.Updated.UnixMilli(), Channels: []ChannelView{}}
	for _, ch := range la.App.Channels {
		cv := ChannelView{Name: ch.Name, Description: ch.Description, Sources: []map[string]any{}, Actions: []ActionView{}, WebhookURL: e.WebhookURL(la, ch.Name)}
		for _, s := range ch.Sources {
			m := showConfig(s.Config)
			m["kind"] = s.Kind
			cv.Sources = append(cv.Sources, m)
		}
		for _, a := range ch.Actions {
			av := ActionView{Name: a.Name, Kind: a.Kind, Description: a.Description, Condition: a.Condition,
				Config: showConfig(a.Config), Timeout: yamlerr.Duration(a.Timeout), Retries: a.Retries}
			if o := a.Output; o != nil {
				av.OutputChannel = o.Channel
				av.Output = outputView(o)
			}
			if o := a.OnError; o != nil {
				av.OnError = outputView(o)
			}
			cv.Actions = append(cv.Actions, av)
		}
		v.Channels = append(v.Channels, cv)
	}
	return v
}

func (e *Engine) listApps(w http.ResponseWriter, r *http.Request) {
	apps := e.appsOf(operator(r))
	sort.Slice(apps, func(i, j int) bool { return apps[i].App.Name < apps[j].App.Name })
	out := make([]*AppView, 0, len(apps))
	for _, la := range apps {
		out = append(out, e.view(la))
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// readApp reads and validates an app definition from the request body.
// Problems are answered with 400 and every problem with its position.
func (e *Engine) readApp(w http.ResponseWriter, r *http.Request) (*App, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		switch mt {
		case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json", "text/plain", "application/octet-stream":
		default:
			api.WriteError(w, r, api.Errorf(http.StatusUnsupportedMediaType, api.CodeBadRequest, "Content-Type %s: send the app as application/yaml (or application/json)", mt))
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAppBytes))
	if err != nil {
		api.WriteError(w, r, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "an app definition is at most %d bytes", MaxAppBytes))
		return nil, false
	}
	app, err := e.Parse(r.Context(), operator(r), "app.yaml", body)
	if err != nil {
		writeProblems(w, err)
		return nil, false
	}
	return app, true
}

// ProblemView is one validation problem in an API answer.
type ProblemView = yamlerr.ProblemView

func problemsOf(err error) []ProblemView { return yamlerr.Views(err) }

func writeProblems(w http.ResponseWriter, err error) {
	api.WriteJSON(w, http.StatusBadRequest, map[string]any{
		"code": api.CodeInvalid, "message": err.Error(), "problems": problemsOf(err),
	})
}

func (e *Engine) validateApp(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAppBytes))
	if err != nil {
		api.WriteError(w, r, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "an app definition is at most %d bytes", MaxAppBytes))
		return
	}
	if _, err := e.Parse(r.Context(), operator(r), "app.yaml", body); err != nil {
		api.WriteJSON(w, http.StatusOK, map[string]any{"valid": false, "problems": problemsOf(err)})
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"valid": true, "problems": []ProblemView{}})
}

func (e *Engine) createApp(w http.ResponseWriter, r *http.Request) {
	app, ok := e.readApp(w, r)
	if !ok {
		return
	}
	if _, err := e.Put(r.Context(), operator(r), app, false); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, e.view(e.app(operator(r), app.Name)))
}

func (e *Engine) putApp(w http.ResponseWriter, r *http.Request) {
	app, ok := e.readApp(w, r)
	if !ok {
		return
	}
	if name := r.PathValue("app_id"); app.Name != name {
		api.WriteError(w, r, api.Invalid("the app's name is %q but the URL names %q", app.Name, name))
		return
	}
	created, err := e.Put(r.Context(), operator(r), app, true)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	api.WriteJSON(w, status, e.view(e.app(operator(r), app.Name)))
}

func (e *Engine) loaded(w http.ResponseWriter, r *http.Request) *loadedApp {
	la := e.app(operator(r), r.PathValue("app_id"))
	if la == nil {
		api.WriteError(w, r, errNoApp(r.PathValue("app_id")))
	}
	return la
}

func (e *Engine) getApp(w http.ResponseWriter, r *http.Request) {
	la := e.loaded(w, r)
	if la == nil {
		return
	}
	if r.URL.Query().Get("format") == "yaml" || strings.Contains(r.Header.Get("Accept"), "yaml") {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(la.App.Source)
		return
	}
	api.WriteJSON(w, http.StatusOK, e.view(la))
}

func (e *Engine) deleteApp(w http.ResponseWriter, r *http.Request) {
	if err := e.Delete(r.Context(), operator(r), r.PathValue("app_id")); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Engine) enableApp(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := e.SetEnabled(r.Context(), operator(r), r.PathValue("app_id"), on); err != nil {
			api.WriteError(w, r, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, e.view(e.app(operator(r), r.PathValue("app_id"))))
	}
}

// readBody reads a request body of at most the payload limit; over it,
// it answers 413 naming what (a message, a Slack request, …) and says no.
func (e *Engine) readBody(w http.ResponseWriter, r *http.Request, what string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(e.opts.MaxPayloadBytes)))
	if err != nil {
		api.WriteError(w, r, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "%s is at most %d bytes", what, e.opts.MaxPayloadBytes))
		return nil, false
	}
	return body, true
}

// readMessage reads a message body: JSON when it parses, else the text.
func (e *Engine) readMessage(w http.ResponseWriter, r *http.Request) (any, bool) {
	body, ok := e.readBody(w, r, "a message")
	if !ok {
		return nil, false
	}
	if len(body) == 0 {
		return nil, true
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "application/json" || mt == "" {
			api.WriteError(w, r, api.BadRequest("the message is not valid JSON: %v", err))
			return nil, false
		}
		return string(body), true
	}
	return v, true
}

func (e *Engine) inject(w http.ResponseWriter, r *http.Request, source string) (string, bool) {
	msg, ok := e.readMessage(w, r)
	if !ok {
		return "", false
	}
	id, err := e.Inject(r.Context(), operator(r), r.PathValue("app_id"), r.PathValue("channel_id"), source, msg, map[string]any{"eventType": "api"})
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			err = api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "%v", err)
		}
		api.WriteError(w, r, err)
		return "", false
	}
	return id, true
}

func (e *Engine) sendMessage(w http.ResponseWriter, r *http.Request) {
	if id, ok := e.inject(w, r, "api"); ok {
		api.WriteJSON(w, http.StatusAccepted, map[string]string{"runId": id})
	}
}

// testApp injects a message and waits for its run to finish, like Flux's
// test tab; a run still going at the timeout is answered with 202.
func (e *Engine) testApp(w http.ResponseWriter, r *http.Request) {
	timeout, err := api.QueryInt(r, "timeout", 30, 1, 900)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	// Listen before sending, so a fast run's notice is not missed. The
	// run id is not known yet: listen to all and filter.
	done := make(chan string, 64)
	sub, err := e.bus.NC.Subscribe(subjDone+"*", func(m *nats.Msg) {
		select {
		case done <- strings.TrimPrefix(m.Subject, subjDone):
		default:
		}
	})
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	defer sub.Unsubscribe()
	id, ok := e.inject(w, r, "test")
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(timeout)*time.Second)
	defer cancel()
	status := http.StatusOK
	tick := time.NewTicker(time.Second) // fallback in case a notice was dropped
	defer tick.Stop()
wait:
	for {
		select {
		case got := <-done:
			if got == id {
				break wait
			}
		case <-tick.C:
			if d, _ := e.RunDetail(ctx, operator(r), r.PathValue("app_id"), id); d != nil && d.Status != RunRunning {
				break wait
			}
		case <-ctx.Done():
			status = http.StatusAccepted
			break wait
		}
	}
	d, err := e.RunDetail(context.WithoutCancel(ctx), operator(r), r.PathValue("app_id"), id)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if d == nil {
		api.WriteJSON(w, http.StatusAccepted, map[string]string{"runId": id, "status": RunRunning})
		return
	}
	api.WriteJSON(w, status, d)
}

func (e *Engine) listRuns(w http.ResponseWriter, r *http.Request) {
	limit, err := api.QueryInt(r, "limit", 50, 1, 1000)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	status := r.URL.Query().Get("status")
	if status != "" && status != RunRunning && status != RunSucceeded && status != RunFailed {
		api.WriteError(w, r, api.Invalid("status %q must be running, succeeded or failed", status))
		return
	}
	var before int64
	var beforeID string
	if k := r.URL.Query().Get("last_evaluated_key"); k != "" {
		ts, id, ok := strings.Cut(k, "_")
		n, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil {
			api.WriteError(w, r, api.BadRequest("last_evaluated_key %q is not one this API gave out", k))
			return
		}
		before, beforeID = n, id
	}
	runs, err := e.Runs(r.Context(), operator(r), r.PathValue("app_id"), status, int(limit), before, beforeID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if len(runs) == int(limit) {
		last := runs[len(runs)-1]
		w.Header().Set("x-soracom-next-key", strconv.FormatInt(last.StartedAt, 10)+"_"+last.RunID)
	}
	api.WriteJSON(w, http.StatusOK, runs)
}

func (e *Engine) getRun(w http.ResponseWriter, r *http.Request) {
	d, err := e.RunDetail(r.Context(), operator(r), r.PathValue("app_id"), r.PathValue("run_id"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if d == nil {
		api.WriteError(w, r, api.NotFound("no run %q of app %s", r.PathValue("run_id"), r.PathValue("app_id")))
		return
	}
	api.WriteJSON(w, http.StatusOK, d)
}

// receiveWebhook is a channel's incoming webhook. The token in the URL is
// the only credential; an unknown one is a plain 404.
func (e *Engine) receiveWebhook(w http.ResponseWriter, r *http.Request) {
	op, app, channel, err := e.resolveHook(r.Context(), r.PathValue("token"))
	if errors.Is(err, sql.ErrNoRows) {
		api.WriteError(w, r, api.NotFound("no such webhook"))
		return
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	// A channel with a slack or line source answers Slack or LINE on its
	// URL (a channel has one webhook, slack or line source: see app.go).
	if la := e.app(op, app); la != nil && la.channels[channel] != nil {
		if src := slackSource(la.channels[channel]); src != nil {
			e.receiveSlack(w, r, la, channel, src)
			return
		}
		if src := lineSource(la.channels[channel]); src != nil {
			e.receiveLine(w, r, la, channel, src)
			return
		}
	}
	msg, ok := e.readMessage(w, r)
	if !ok {
		return
	}
	headers := map[string]any{}
	for k, v := range r.Header {
		if len(v) > 0 && !secretKeyRE.MatchString(k) {
			headers[k] = v[0]
		}
	}
	query := map[string]any{}
	for k, v := range r.URL.Query() {
		query[k] = v[0]
	}
	id, err := e.Inject(r.Context(), op, app, channel, "webhook", msg, map[string]any{"eventType": "webhook", "headers": headers, "query": query})
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]string{"runId": id})
}
