// Package inventory owns devices, groups, SIMs and device secrets, in the
// shapes of SORACOM Inventory (Device:*, Group:*) and a SORACOM-styled SIM
// registry of our own (Sim:*). Every row belongs to one operator and every
// query is scoped to the caller's operator.
package inventory

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/store"
)

// Service implements the inventory API.
type Service struct {
	db  *store.DB
	now func() time.Time

	mu   sync.Mutex // guards auth
	auth *sql.Stmt
}

// New creates the inventory service.
func New(db *store.DB) *Service { return &Service{db: db, now: time.Now} }

// Register mounts the device, group and SIM operations.
func (s *Service) Register(rt *api.Router) {
	s.registerDevices(rt)
	s.registerGroups(rt)
	s.registerSims(rt)
}

// handler adapts a function returning (status, body, error) to an
// http.HandlerFunc. A nil body with 204 writes nothing.
func handler(fn func(w http.ResponseWriter, r *http.Request) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, body, err := fn(w, r)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		api.WriteJSON(w, status, body)
	}
}

func operator(r *http.Request) string { return api.PrincipalFrom(r.Context()).OperatorID }

// forUpdate locks the selected row until the transaction ends on
// PostgreSQL. SQLite needs nothing: its transactions take the write lock at
// BEGIN (_txlock=immediate), so they are already serialized.
func (s *Service) forUpdate() string {
	if s.db.Dialect == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Tags are a resource's name→value labels.
type Tags map[string]string

// TagUpdate is one element of a SORACOM TagUpdateRequest array.
type TagUpdate struct {
	TagName  string `json:"tagName"`
	TagValue string `json:"tagValue"`
}

const (
	maxTagName  = 128
	maxTagValue = 1024
	maxTags     = 100
	maxField    = 1024
)

func checkTags(t Tags) error {
	if len(t) > maxTags {
		return api.Invalid("at most %d tags are allowed", maxTags)
	}
	for k, v := range t {
		if k == "" || len(k) > maxTagName || !utf8.ValidString(k) {
			return api.Invalid("tag name %q must be 1 to %d bytes of UTF-8", k, maxTagName)
		}
		if len(v) > maxTagValue {
			return api.Invalid("tag %q: value must be at most %d bytes", k, maxTagValue)
		}
	}
	return nil
}

// decodeTagUpdates reads a [{"tagName","tagValue"}] body.
func decodeTagUpdates(w http.ResponseWriter, r *http.Request) ([]TagUpdate, error) {
	var ups []TagUpdate
	if err := api.DecodeJSON(w, r, &ups, false); err != nil {
		return nil, err
	}
	for _, u := range ups {
		if u.TagName == "" {
			return nil, api.Invalid("tagName is required in every element")
		}
	}
	return ups, nil
}

func applyTags(t Tags, ups []TagUpdate) (Tags, error) {
	if t == nil {
		t = Tags{}
	}
	for _, u := range ups {
		t[u.TagName] = u.TagValue
	}
	return t, checkTags(t)
}

func marshalJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of strings and raw JSON are stored
	}
	return string(b)
}

// tagFilter is the tag_name / tag_value / tag_value_match_mode query of
// the SORACOM list operations.
type tagFilter struct {
	name, value string
	prefix      bool
}

func parseTagFilter(r *http.Request) (tagFilter, error) {
	q := r.URL.Query()
	f := tagFilter{name: q.Get("tag_name"), value: q.Get("tag_value")}
	switch m := q.Get("tag_value_match_mode"); m {
	case "", "exact":
	case "prefix":
		f.prefix = true
	default:
		return f, api.BadRequest("tag_value_match_mode must be exact or prefix, not %q", m)
	}
	if f.name == "" && f.value != "" {
		return f, api.BadRequest("tag_value needs tag_name")
	}
	return f, nil
}

func (f tagFilter) match(t Tags) bool {
	if f.name == "" {
		return true
	}
	v, ok := t[f.name]
	if !ok {
		return false
	}
	if f.prefix {
		return strings.HasPrefix(v, f.value)
	}
	return f.value == "" || v == f.value
}

// listQuery is a paginated, tag-filtered listing of one table, ordered by
// its ID column.
type listQuery struct {
	filter tagFilter
	after  string // last_evaluated_key
	limit  int    // <= 0: no limit
}

func parseListQuery(r *http.Request, defLimit int64) (listQuery, error) {
	f, err := parseTagFilter(r)
	if err != nil {
		return listQuery{}, err
	}
	limit, err := api.QueryInt(r, "limit", defLimit, -1, 100000)
	if err != nil {
		return listQuery{}, err
	}
	return listQuery{filter: f, after: r.URL.Query().Get("last_evaluated_key"), limit: int(limit)}, nil
}

// list runs sel (which must select the row's ID and tags columns first,
// filter "operator_id = $1 AND <id> > $2" and order by ID) and calls scan
// for each row whose tags match, until limit rows were taken. It sets
// x-soracom-next-key when more rows match.
func list[T any](ctx context.Context, db *store.DB, w http.ResponseWriter, q listQuery, sel, operatorID string,
	scan func(rows *sql.Rows) (T, string, Tags, error)) ([]T, error) {
	if q.filter.name == "" && q.limit > 0 {
		sel += fmt.Sprintf(" LIMIT %d", q.limit+1)
	}
	rows, err := db.QueryContext(ctx, sel, operatorID, q.after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	last := ""
	for rows.Next() {
		v, id, tags, err := scan(rows)
		if err != nil {
			return nil, err
		}
		if !q.filter.match(tags) {
			continue
		}
		if q.limit > 0 && len(out) == q.limit {
			w.Header().Set("x-soracom-next-key", last)
			break
		}
		out = append(out, v)
		last = id
	}
	return out, rows.Err()
}

func decodeTags(s string) Tags {
	t := Tags{}
	_ = json.Unmarshal([]byte(s), &t)
	return t
}
