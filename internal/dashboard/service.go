package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/store"
	"github.com/nagare-iot/nagare/internal/yamlerr"
)

// MaxDashboardBytes bounds a dashboard file.
const MaxDashboardBytes = 1 << 20

// Service stores dashboards per operator and serves the Dashboard API.
type Service struct {
	db    *store.DB
	now   func() time.Time
	data  EntryReader // public pages; nil: none served
	files FileReader
}

// New returns a dashboard service over db.
func New(db *store.DB) *Service { return &Service{db: db, now: time.Now} }

// Stored is a dashboard with its bookkeeping.
type Stored struct {
	*Dashboard
	Version int64
	Created time.Time
	Updated time.Time
}

func errNoDashboard(name string) error { return api.NotFound("no dashboard %q", name) }

// Put stores a dashboard, creating it or (when replace is true) replacing
// it; created reports a new one.
func (s *Service) Put(ctx context.Context, op string, d *Dashboard, replace bool) (created bool, err error) {
	now := s.now().UnixMilli()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var version int64
		switch err := tx.QueryRowContext(ctx, `SELECT version FROM dashboards WHERE operator_id = $1 AND name = $2`, op, d.Name).Scan(&version); {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			_, err := tx.ExecContext(ctx, `INSERT INTO dashboards (operator_id, name, title, source, version, created_at, updated_at)
				VALUES ($1,$2,$3,$4,1,$5,$5)`, op, d.Name, d.Title, string(d.Source), now)
			if store.IsUniqueViolation(err) {
				return api.Conflict("dashboard %s already exists", d.Name)
			}
			return err
		case err != nil:
			return err
		case !replace:
			return api.Conflict("dashboard %s already exists; PUT /v1/dashboards/%s replaces it", d.Name, d.Name)
		default:
			_, err := tx.ExecContext(ctx, `UPDATE dashboards SET title = $1, source = $2, version = version + 1, updated_at = $3
				WHERE operator_id = $4 AND name = $5`, d.Title, string(d.Source), now, op, d.Name)
			return err
		}
	})
	return created, err
}

const columns = `name, source, version, created_at, updated_at`

func scan(row interface{ Scan(...any) error }) (*Stored, error) {
	var name, src string
	var version, created, updated int64
	if err := row.Scan(&name, &src, &version, &created, &updated); err != nil {
		return nil, err
	}
	d, err := Parse(name+".yaml", []byte(src))
	if err != nil {
		return nil, err
	}
	return &Stored{Dashboard: d, Version: version, Created: time.UnixMilli(created), Updated: time.UnixMilli(updated)}, nil
}

// Get returns one dashboard (a 404 api error when there is none).
func (s *Service) Get(ctx context.Context, op, name string) (*Stored, error) {
	st, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM dashboards WHERE operator_id = $1 AND name = $2`, op, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoDashboard(name)
	}
	return st, err
}

// List returns an operator's dashboards by name.
func (s *Service) List(ctx context.Context, op string) ([]*Stored, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM dashboards WHERE operator_id = $1 ORDER BY name`, op)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Stored
	for rows.Next() {
		st, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Delete removes a dashboard.
func (s *Service) Delete(ctx context.Context, op, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM dashboards WHERE operator_id = $1 AND name = $2`, op, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNoDashboard(name)
	}
	return nil
}

// Register mounts the Dashboard API.
func (s *Service) Register(rt *api.Router) {
	for _, op := range []api.Op{
		{Name: "Dashboard:listDashboards", Method: "GET", Path: "/v1/dashboards", Summary: "List dashboards", Handler: s.list},
		{Name: "Dashboard:createDashboard", Method: "POST", Path: "/v1/dashboards", Summary: "Create a dashboard from its YAML (or JSON) definition", Handler: s.create},
		{Name: "Dashboard:validateDashboard", Method: "POST", Path: "/v1/dashboards/validate", Summary: "Check a dashboard definition and list every problem, without storing it", Handler: s.validate},
		{Name: "Dashboard:getDashboard", Method: "GET", Path: "/v1/dashboards/{name}", Summary: "Get a dashboard (its YAML as applied with ?format=yaml or Accept: application/yaml)", Handler: s.get},
		{Name: "Dashboard:putDashboard", Method: "PUT", Path: "/v1/dashboards/{name}", Summary: "Create or replace a dashboard (nagare apply)", Handler: s.put},
		{Name: "Dashboard:deleteDashboard", Method: "DELETE", Path: "/v1/dashboards/{name}", Summary: "Delete a dashboard", Handler: s.delete},
	} {
		rt.Handle(op)
	}
	s.registerPublic(rt)
}

func operator(r *http.Request) string { return api.PrincipalFrom(r.Context()).OperatorID }

// View is a dashboard as the API shows it.
type View struct {
	*Dashboard
	Refresh     string `json:"refresh,omitempty"`
	Version     int64  `json:"version"`
	CreatedTime int64  `json:"createdTime"`
	UpdatedTime int64  `json:"updatedTime"`
}

func view(st *Stored) *View {
	v := &View{Dashboard: st.Dashboard, Version: st.Version, CreatedTime: st.Created.UnixMilli(), UpdatedTime: st.Updated.UnixMilli()}
	if st.Refresh > 0 {
		v.Refresh = yamlerr.Duration(st.Refresh)
	}
	return v
}

// ProblemView is one validation problem in an API answer.
type ProblemView = yamlerr.ProblemView

func problemsOf(err error) []ProblemView { return yamlerr.Views(err) }

// readBody reads a dashboard definition from the request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		switch mt {
		case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json", "text/plain", "application/octet-stream":
		default:
			api.WriteError(w, r, api.Errorf(http.StatusUnsupportedMediaType, api.CodeBadRequest, "Content-Type %s: send the dashboard as application/yaml (or application/json)", mt))
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxDashboardBytes))
	if err != nil {
		api.WriteError(w, r, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "a dashboard definition is at most %d bytes", MaxDashboardBytes))
		return nil, false
	}
	return body, true
}

// read reads and validates a dashboard; problems are answered with 400 and
// every problem with its position.
func read(w http.ResponseWriter, r *http.Request) (*Dashboard, bool) {
	body, ok := readBody(w, r)
	if !ok {
		return nil, false
	}
	d, err := Parse("dashboard.yaml", body)
	if err != nil {
		api.WriteJSON(w, http.StatusBadRequest, map[string]any{"code": api.CodeInvalid, "message": err.Error(), "problems": problemsOf(err)})
		return nil, false
	}
	return d, true
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	all, err := s.List(r.Context(), operator(r))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := make([]*View, 0, len(all))
	for _, st := range all {
		out = append(out, view(st))
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (s *Service) validate(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if _, err := Parse("dashboard.yaml", body); err != nil {
		api.WriteJSON(w, http.StatusOK, map[string]any{"valid": false, "problems": problemsOf(err)})
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"valid": true, "problems": []ProblemView{}})
}

// store puts d and answers with its view.
func (s *Service) store(w http.ResponseWriter, r *http.Request, d *Dashboard, replace bool) {
	created, err := s.Put(r.Context(), operator(r), d, replace)
	if err == nil {
		var st *Stored
		if st, err = s.Get(r.Context(), operator(r), d.Name); err == nil {
			status := http.StatusOK
			if created {
				status = http.StatusCreated
			}
			api.WriteJSON(w, status, view(st))
			return
		}
	}
	api.WriteError(w, r, err)
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	if d, ok := read(w, r); ok {
		s.store(w, r, d, false)
	}
}

func (s *Service) put(w http.ResponseWriter, r *http.Request) {
	d, ok := read(w, r)
	if !ok {
		return
	}
	if name := r.PathValue("name"); d.Name != name {
		api.WriteError(w, r, api.Invalid("the dashboard's name is %q but the URL names %q", d.Name, name))
		return
	}
	s.store(w, r, d, true)
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	st, err := s.Get(r.Context(), operator(r), r.PathValue("name"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if r.URL.Query().Get("format") == "yaml" || strings.Contains(r.Header.Get("Accept"), "yaml") {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(st.Source)
		return
	}
	api.WriteJSON(w, http.StatusOK, view(st))
}

func (s *Service) delete(w http.ResponseWriter, r *http.Request) {
	if err := s.Delete(r.Context(), operator(r), r.PathValue("name")); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
