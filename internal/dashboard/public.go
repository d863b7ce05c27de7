package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/harvest"
)

// Public pages: a dashboard with public: true is also served without login
// at /v1/public/dashboards/{operator}/{name} (the console renders it at
// /p/{operator}/{name}). Its panels carry their entries, filtered by the
// panel's where with the page's URL parameters, and the Files images those
// entries name as expiring signed URLs. Nothing else of the operator's data
// is reachable: a public page is exactly its panels.

// EntryReader reads Harvest Data entries (harvest.Data).
type EntryReader interface {
	Entries(ctx context.Context, operatorID, rtype, rid string, from, to int64, limit int, ascending bool) ([]harvest.DataEntry, error)
}

// FileReader signs and opens Harvest Files (harvest.Files).
type FileReader interface {
	SignedURL(ctx context.Context, operatorID, filePath string, ttl time.Duration) (string, error)
	Open(ctx context.Context, operatorID, filePath string) (*harvest.FileEntry, io.ReadCloser, error)
}

// WithHarvest enables public pages, which read entries and files.
func (s *Service) WithHarvest(data EntryReader, files FileReader) *Service {
	s.data, s.files = data, files
	return s
}

// Limits of a public page request.
const (
	// publicScan is how many of a panel's newest entries are searched for
	// ones matching its where.
	publicScan = 10000
	// maxParamLen bounds one URL parameter.
	maxParamLen = 256
)

var operatorRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// PublicPanel is a panel with the entries a public page shows.
type PublicPanel struct {
	*Panel
	Entries []PublicEntry     `json:"entries"`
	Files   map[string]string `json:"files"`
}

// PublicEntry is one entry: its time and its content (parsed JSON, or the
// text itself).
type PublicEntry struct {
	Time    int64 `json:"time"`
	Content any   `json:"content"`
}

// PublicView is a public dashboard with its data.
type PublicView struct {
	Name    string          `json:"name"`
	Title   string          `json:"title"`
	Params  map[string]bool `json:"params,omitempty"`
	Public  bool            `json:"public"`
	Refresh string          `json:"refresh,omitempty"`
	Panels  []*PublicPanel  `json:"panels"`
}

// Public pages are served to anyone: each client address gets
// publicRate requests a second (publicBurst at once), so nobody can keep
// the database busy scanning entries for pages.
const (
	publicRate  = 10
	publicBurst = 30
)

func (s *Service) registerPublic(rt *api.Router) {
	limit := api.NewLimiter(publicRate, publicBurst)
	rt.Handle(api.Op{Name: "Dashboard:getPublicDashboard", Method: "GET", Path: "/v1/public/dashboards/{operator}/{name}", Auth: api.AuthNone,
		Summary: "A public dashboard (public: true) with its panels' entries, without login; its params as query parameters", Handler: limit.Wrap(s.getPublic)})
	rt.Handle(api.Op{Name: "Dashboard:getPublicDashboardImage", Method: "GET", Path: "/v1/public/dashboards/{operator}/{name}/image", Auth: api.AuthNone,
		Summary: "The Files image of a public dashboard panel's newest matching entry (?panel=N, default the first panel with an image; params as query parameters)", Handler: limit.Wrap(s.getPublicImage)})
}

// publicDashboard loads a public dashboard and the page's parameters.
func (s *Service) publicDashboard(r *http.Request) (op string, st *Stored, params map[string]string, err error) {
	op, name := r.PathValue("operator"), r.PathValue("name")
	if s.data == nil || !operatorRE.MatchString(op) || !nameRE.MatchString(name) {
		return "", nil, nil, api.NotFound("no public dashboard %q", name)
	}
	st, err = s.Get(r.Context(), op, name)
	if err != nil || !st.Public {
		// Private and missing look the same.
		return "", nil, nil, api.NotFound("no public dashboard %q", name)
	}
	params = map[string]string{}
	q := r.URL.Query()
	for p, required := range st.Params {
		v := q.Get(p)
		if len(v) > maxParamLen {
			return "", nil, nil, api.BadRequest("parameter %s is longer than %d bytes", p, maxParamLen)
		}
		if v == "" && required {
			return "", nil, nil, api.BadRequest("this page needs the parameter %s (?%s=…)", p, p)
		}
		if v != "" {
			params[p] = v
		}
	}
	return op, st, params, nil
}

// want is how many matching entries a public panel carries.
func want(p *Panel) int {
	switch p.Kind {
	case KindRanking:
		return 1000
	case KindGallery:
		return p.Limit
	case KindLogs, KindTable:
		return 100
	default:
		return 20 // stat, image (a little history), bars
	}
}

// imageKey is the content key holding a Files path, if the panel shows one.
func imageKey(p *Panel) string {
	switch {
	case p.Kind == KindImage && p.Mode == ModeFiles:
		return p.Field
	case p.Kind == KindRanking || p.Kind == KindGallery:
		return p.Image
	}
	return ""
}

// publicQuery is what a panel reads: a resource, a time range and the
// content values its where asks for, with the page's parameters put in.
type publicQuery struct {
	rtype, rid string
	lo, hi     int64
	conds      map[string]string
}

// key identifies the query, so panels reading the same entries share one
// scan.
func (q *publicQuery) key() string {
	names := make([]string, 0, len(q.conds))
	for k := range q.conds {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%d\x00%d", q.rtype, q.rid, q.lo, q.hi)
	for _, k := range names {
		b.WriteString("\x00" + k + "=" + q.conds[k])
	}
	return b.String()
}

// queryOf is a panel's query at now.
func queryOf(d *Dashboard, p *Panel, params map[string]string, now time.Time) (*publicQuery, error) {
	q := &publicQuery{rtype: p.Resource.Type, rid: p.Resource.ID, conds: map[string]string{}}
	for k, v := range p.Where {
		if m := paramRefRE.FindStringSubmatch(v); m != nil {
			pv, ok := params[m[1]]
			if !ok {
				continue // an optional parameter left out
			}
			v = pv
		}
		q.conds[k] = v
	}
	tr := d.Time
	if p.Time != nil {
		tr = *p.Time
	}
	from, to, err := tr.Resolve(now)
	if err != nil {
		return nil, err
	}
	q.lo, q.hi = from.UnixMilli(), to.UnixMilli()
	if q.hi >= now.UnixMilli()-1000 {
		q.hi = math.MaxInt64 // "now" means up to the latest entry
	}
	return q, nil
}

// entries returns up to n of the query's newest matching entries.
func (s *Service) entries(ctx context.Context, op string, q *publicQuery, n int) ([]PublicEntry, error) {
	out := []PublicEntry{}
	hi := q.hi
	const page = 1000
	for scanned := 0; scanned < publicScan && len(out) < n; scanned += page {
		es, err := s.data.Entries(ctx, op, q.rtype, q.rid, q.lo, hi, page, false)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			c := entryContent(e)
			if matches(c, q.conds) {
				out = append(out, PublicEntry{Time: e.Time, Content: c})
				if len(out) == n {
					break
				}
			}
		}
		if len(es) < page {
			break
		}
		hi = es[len(es)-1].Time - 1
	}
	return out, nil
}

func entryContent(e harvest.DataEntry) any {
	if e.ContentEncoding == "" {
		var v any
		if json.Unmarshal([]byte(e.Content), &v) == nil {
			return v
		}
	}
	return e.Content
}

// matches reports whether content has every key = value of conds.
func matches(content any, conds map[string]string) bool {
	for k, want := range conds {
		v, ok := lookup(content, k)
		if !ok || text(v) != want {
			return false
		}
	}
	return true
}

// lookup finds a key in an entry's content: the key as it is, else a
// dotted path (emotions.HAPPY).
func lookup(content any, key string) (any, bool) {
	m, ok := content.(map[string]any)
	if !ok {
		return nil, false
	}
	if v, ok := m[key]; ok {
		return v, true
	}
	head, rest, dotted := strings.Cut(key, ".")
	if !dotted {
		return nil, false
	}
	v, ok := m[head]
	if !ok {
		return nil, false
	}
	return lookup(v, rest)
}

// text is a content value as the text a where value is compared with.
func text(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (s *Service) getPublic(w http.ResponseWriter, r *http.Request) {
	op, st, params, err := s.publicDashboard(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	v := &PublicView{Name: st.Name, Title: st.Title, Params: st.Params, Public: true, Panels: []*PublicPanel{}}
	if st.Refresh > 0 {
		v.Refresh = view(st).Refresh
	}
	// One scan per distinct query (a result page's panels usually share
	// one), as deep as the deepest panel needs.
	now := time.Now()
	keys := make([]string, len(st.Panels))
	type scan struct {
		q  *publicQuery
		n  int
		es []PublicEntry
	}
	scans := map[string]*scan{}
	for i, p := range st.Panels {
		q, err := queryOf(st.Dashboard, p, params, now)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		keys[i] = q.key()
		if sc := scans[keys[i]]; sc == nil {
			scans[keys[i]] = &scan{q: q, n: want(p)}
		} else {
			sc.n = max(sc.n, want(p))
		}
	}
	for _, sc := range scans {
		var err error
		if sc.es, err = s.entries(r.Context(), op, sc.q, sc.n); err != nil {
			api.WriteError(w, r, err)
			return
		}
	}
	for i, p := range st.Panels {
		es := scans[keys[i]].es
		if len(es) > want(p) {
			es = es[:want(p)]
		}
		pp := &PublicPanel{Panel: p, Entries: es, Files: map[string]string{}}
		if p.Kind == KindImage && p.Mode == ModeMapping {
			// The mapping's own Files images, named in the dashboard.
			for _, m := range p.Mapping {
				if strings.HasPrefix(m.Image, "/") && pp.Files[m.Image] == "" {
					if u, err := s.files.SignedURL(r.Context(), op, m.Image, 0); err == nil {
						pp.Files[m.Image] = u
					}
				}
			}
		}
		if key := imageKey(p); key != "" {
			for _, e := range es {
				fp, _ := lookup(e.Content, key)
				path, ok := fp.(string)
				if !ok || !strings.HasPrefix(path, "/") || pp.Files[path] != "" {
					continue
				}
				u, err := s.files.SignedURL(r.Context(), op, path, 0)
				if err != nil {
					continue // a missing or bad path shows no image
				}
				pp.Files[path] = u
			}
		}
		v.Panels = append(v.Panels, pp)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Robots-Tag", "noindex")
	api.WriteJSON(w, http.StatusOK, v)
}

func (s *Service) getPublicImage(w http.ResponseWriter, r *http.Request) {
	op, st, params, err := s.publicDashboard(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var p *Panel
	if ps := r.URL.Query().Get("panel"); ps != "" {
		i, err := strconv.Atoi(ps)
		if err != nil || i < 1 || i > len(st.Panels) {
			api.WriteError(w, r, api.BadRequest("panel must be 1 to %d", len(st.Panels)))
			return
		}
		p = st.Panels[i-1]
		if imageKey(p) == "" {
			api.WriteError(w, r, api.BadRequest("panel %d shows no Files image", i))
			return
		}
	} else {
		for _, c := range st.Panels {
			if imageKey(c) != "" {
				p = c
				break
			}
		}
		if p == nil {
			api.WriteError(w, r, api.NotFound("dashboard %q has no image panel", st.Name))
			return
		}
	}
	q, err := queryOf(st.Dashboard, p, params, time.Now())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	es, err := s.entries(r.Context(), op, q, 1)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var path string
	if len(es) > 0 {
		v, _ := lookup(es[0].Content, imageKey(p))
		path, _ = v.(string)
	}
	if !strings.HasPrefix(path, "/") {
		api.WriteError(w, r, api.NotFound("no image for these parameters"))
		return
	}
	fe, rd, err := s.files.Open(r.Context(), op, path)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	defer rd.Close()
	ct := fe.ContentType
	if !strings.HasPrefix(ct, "image/") {
		api.WriteError(w, r, api.NotFound("no image for these parameters"))
		return
	}
	// Served, not redirected: LINE fetches Flex images from this URL, and
	// a redirect to a signed URL would expire.
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.FormatInt(fe.ContentLength, 10))
	w.Header().Set("Cache-Control", "private, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Robots-Tag", "noindex")
	_, _ = io.Copy(w, rd) // an error here is the client going away
}
