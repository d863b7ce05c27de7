// Package dashboard stores Lagoon-style dashboards: YAML files of panels
// (logs, stat, timeseries, image, table, ranking, gallery, bars) over
// Harvest Data, validated with every problem's position in one pass, and
// served by the /v1 API. It also serves public dashboards: read-only pages
// without login whose panels show only the entries their URL parameters
// select, with images behind expiring signed URLs.
package dashboard

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nagare-iot/nagare/internal/suggest"
	"github.com/nagare-iot/nagare/internal/yamlerr"
)

// Dashboard is a decoded, validated dashboard definition.
type Dashboard struct {
	Name    string        `json:"name"`
	Title   string        `json:"title"`
	Time    TimeRange     `json:"time"`
	Refresh time.Duration `json:"-"`
	// Params are the URL query parameters the dashboard takes (name →
	// required), used in panels' where as ${name}.
	Params map[string]bool `json:"params,omitempty"`
	// Public dashboards are also served read-only without login.
	Public bool     `json:"public,omitempty"`
	Panels []*Panel `json:"panels"`
	Source []byte   `json:"-"` // the YAML as given, returned unchanged on read
}

// TimeRange is a dashboard's default time range, as written ("now-6h",
// "now", RFC 3339 or UNIX ms); Resolve turns it into instants.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Panel is one panel of a dashboard. Fields that do not apply to its kind
// are zero.
type Panel struct {
	Title      string      `json:"title"`
	Kind       string      `json:"kind"`
	Resource   Resource    `json:"resource"`
	Time       *TimeRange  `json:"time,omitempty"` // overrides the dashboard range (Lagoon relative time)
	Keys       []string    `json:"keys,omitempty"`
	Aggregate  string      `json:"aggregate,omitempty"`
	Thresholds []Threshold `json:"thresholds,omitempty"`
	Unit       string      `json:"unit,omitempty"`
	Decimals   *int        `json:"decimals,omitempty"`
	Mode       string      `json:"mode,omitempty"`
	Field      string      `json:"field,omitempty"`
	Mapping    []MapEntry  `json:"mapping,omitempty"`
	Columns    []string    `json:"columns,omitempty"`
	Group      string      `json:"group,omitempty"`
	Label      string      `json:"label,omitempty"`
	Image      string      `json:"image,omitempty"`
	Order      string      `json:"order,omitempty"`
	Limit      int         `json:"limit,omitempty"`
	// Where keeps only entries whose content has these values (a value
	// is literal text or one ${param}; an optional param left out of the
	// URL drops its condition).
	Where map[string]string `json:"where,omitempty"`
	Grid  Grid              `json:"grid"`
	Line  int               `json:"-"`

	whereNodes map[string]*yaml.Node
	kindNode   *yaml.Node
}

// Resource names the Harvest Data a panel reads.
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Threshold colours a stat value from Value upwards.
type Threshold struct {
	Value float64 `json:"value"`
	Color string  `json:"color"`
}

// MapEntry maps a value (rounded, for numbers) to an image URL.
type MapEntry struct {
	Value string `json:"value"`
	Image string `json:"image"`
}

// Grid places a panel on a 24-column grid.
type Grid struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Panel kinds, image modes and limits.
const (
	KindLogs       = "logs"
	KindStat       = "stat"
	KindTimeseries = "timeseries"
	KindImage      = "image"
	KindTable      = "table"
	KindRanking    = "ranking"
	KindGallery    = "gallery"
	KindBars       = "bars"

	ModeURL     = "url"
	ModeFiles   = "files"
	ModeMapping = "mapping"

	GridColumns   = 24
	MaxPanels     = 100
	MaxSeriesKeys = 16
	MaxColumns    = 32
	MaxRelative   = 3650 * 24 * time.Hour
	MaxLimit      = 100
	MaxParams     = 8
	MaxWhere      = 8
)

var (
	kinds         = []string{KindLogs, KindStat, KindTimeseries, KindImage, KindTable, KindRanking, KindGallery, KindBars}
	resourceTypes = []string{"Subscriber", "LoraDevice", "Sim", "SigfoxDevice", "Device", "SoraCam", "App"}
	topFields     = []string{"name", "title", "time", "refresh", "params", "public", "panels"}
	commonFields  = []string{"title", "kind", "resource", "time", "where", "grid"}
	// kindFields lists the fields each kind takes besides commonFields.
	kindFields = map[string][]string{
		KindLogs:       {"field"},
		KindStat:       {"keys", "aggregate", "thresholds", "unit", "decimals"},
		KindTimeseries: {"keys", "aggregate", "unit", "decimals"},
		KindImage:      {"mode", "field", "mapping"},
		KindTable:      {"columns", "unit", "decimals"},
		KindRanking:    {"field", "group", "label", "image", "order", "limit", "unit", "decimals"},
		KindGallery:    {"image", "field", "label", "limit", "unit", "decimals"},
		KindBars:       {"field", "keys", "unit", "decimals"},
	}
	aggregates = map[string][]string{
		KindStat:       {"last", "avg", "min", "max", "count"},
		KindTimeseries: {"avg", "min", "max", "count"},
	}

	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	keyRE      = regexp.MustCompile(`^[^\x00-\x1f]{1,128}$`)
	colorRE    = regexp.MustCompile(`^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|#[0-9a-fA-F]{8}|[a-z]+(-[a-z]+)*)$`)
	relRE      = regexp.MustCompile(`^now(?:-([0-9]+)([smhd]))?$`)
	digitsRE   = regexp.MustCompile(`^[0-9]{1,15}$`)
	paramRE    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,31}$`)
	paramRefRE = regexp.MustCompile(`^\$\{([^}]*)\}$`)
	yamlLineRE = regexp.MustCompile(`line (\d+)`)
)

// Problem and ParseError report what is wrong with a file, with positions.
type (
	Problem    = yamlerr.Problem
	ParseError = yamlerr.ParseError
)

// ParseTime resolves one end of a time range: "now", "now-<n>(s|m|h|d)",
// RFC 3339, or UNIX milliseconds.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if m := relRE.FindStringSubmatch(s); m != nil {
		if m[1] == "" {
			return now, nil
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
		if err != nil || n > int64(MaxRelative/unit) {
			return time.Time{}, fmt.Errorf("%q reaches back more than 3650 days", s)
		}
		return now.Add(-time.Duration(n) * unit), nil
	}
	if digitsRE.MatchString(s) {
		ms, _ := strconv.ParseInt(s, 10, 64)
		return time.UnixMilli(ms), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if strings.HasPrefix(s, "now") {
		return time.Time{}, fmt.Errorf("%q: a relative time is now or now-<number><s|m|h|d>, e.g. now-6h", s)
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use now, now-6h, RFC 3339 (2026-01-02T15:04:05Z) or UNIX milliseconds", s)
}

// Resolve turns the range into instants relative to now.
func (tr TimeRange) Resolve(now time.Time) (from, to time.Time, err error) {
	if from, err = ParseTime(tr.From, now); err != nil {
		return
	}
	if to, err = ParseTime(tr.To, now); err != nil {
		return
	}
	if !from.Before(to) {
		err = errors.New("the range is empty: from must be before to")
	}
	return
}

type decoder struct{ problems []Problem }

func (d *decoder) add(n *yaml.Node, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// Parse decodes and validates a dashboard file, reporting every problem at once.
func Parse(file string, src []byte) (*Dashboard, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		line, msg := 1, err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, &ParseError{File: file, Problems: []Problem{{Line: line, Col: 1, Msg: strings.TrimPrefix(msg, "yaml: ")}}}
	}
	if len(doc.Content) == 0 {
		return nil, &ParseError{File: file, Problems: []Problem{{Line: 1, Col: 1, Msg: "the file is empty; a dashboard needs a name and panels"}}}
	}
	d := &decoder{}
	db := d.dashboard(doc.Content[0])
	if len(d.problems) > 0 {
		sort.SliceStable(d.problems, func(i, j int) bool {
			a, b := d.problems[i], d.problems[j]
			return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
		})
		return nil, &ParseError{File: file, Problems: d.problems}
	}
	db.Source = append([]byte(nil), src...)
	return db, nil
}

// fields iterates a mapping's keys, reporting duplicates and keys outside
// known (with a did-you-mean); a nil known accepts every key.
func (d *decoder) fields(n *yaml.Node, what string, known []string, fn func(k, v *yaml.Node)) map[string]*yaml.Node {
	got := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		d.add(n, "%s must be a mapping", what)
		return got
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case got[k.Value] != nil:
			d.add(k, "%q is set twice", k.Value)
		case known != nil && !slices.Contains(known, k.Value):
			d.add(k, "unknown field %q in %s%s", k.Value, what, suggest.DidYouMean(k.Value, known))
		default:
			got[k.Value] = v
			fn(k, v)
		}
	}
	return got
}

func (d *decoder) list(n *yaml.Node, what string, fn func(*yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		d.add(n, "%s must be a list", what)
		return
	}
	for _, item := range n.Content {
		fn(item)
	}
}

func (d *decoder) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.add(n, "%s must be a single value (text)", what)
		return ""
	}
	return n.Value
}

func (d *decoder) integer(n *yaml.Node, what string, min, max int) int {
	i, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
		d.add(n, "%s must be a whole number", what)
		return min
	}
	if i < min || i > max {
		d.add(n, "%s: %d is out of range [%d, %d]", what, i, min, max)
	}
	return i
}

func (d *decoder) number(n *yaml.Node, what string) float64 {
	f, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || err != nil {
		d.add(n, "%s must be a number", what)
	}
	return f
}

func (d *decoder) oneOf(n *yaml.Node, what string, allowed []string) string {
	s := d.str(n, what)
	if s != "" && !slices.Contains(allowed, s) {
		d.add(n, "%s %q must be one of %s%s", what, s, strings.Join(allowed, ", "), suggest.DidYouMean(s, allowed))
	}
	return s
}

func (d *decoder) key(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if n.Kind == yaml.ScalarNode && !keyRE.MatchString(s) {
		d.add(n, "%s must be a key name of 1-128 characters", what)
	}
	return s
}

func (d *decoder) keyList(n *yaml.Node, what string, min, max int) []string {
	var out []string
	d.list(n, what, func(item *yaml.Node) { out = append(out, d.key(item, what)) })
	if n.Kind == yaml.SequenceNode && (len(out) < min || len(out) > max) {
		if min == max {
			d.add(n, "%s needs exactly %d key, not %d", what, min, len(out))
		} else {
			d.add(n, "%s needs %d to %d keys, not %d", what, min, max, len(out))
		}
	}
	return out
}

func (d *decoder) dashboard(n *yaml.Node) *Dashboard {
	db := &Dashboard{Time: TimeRange{From: "now-6h", To: "now"}}
	got := d.fields(n, "the dashboard", topFields, func(k, v *yaml.Node) {
		switch k.Value {
		case "name":
			if db.Name = d.str(v, "name"); db.Name != "" && !nameRE.MatchString(db.Name) {
				d.add(v, "name %q must be lower-case letters, digits and dashes (at most 63)", db.Name)
			}
		case "title":
			db.Title = d.str(v, "title")
		case "time":
			d.timeRange(v, "", &db.Time)
		case "refresh":
			r, err := time.ParseDuration(d.str(v, "refresh"))
			switch {
			case v.Kind != yaml.ScalarNode || v.Tag == "!!null":
			case err != nil:
				d.add(v, "refresh: %q is not a duration such as 30s or 5m", v.Value)
			case r < time.Second || r > 24*time.Hour:
				d.add(v, "refresh: %s is out of range [1s, 24h0m0s]", r)
			}
			db.Refresh = r
		case "params":
			db.Params = map[string]bool{}
			d.fields(v, "params", nil, func(k, pv *yaml.Node) {
				if !paramRE.MatchString(k.Value) {
					d.add(k, "params: %q must be a letter then letters, digits or _ (at most 32)", k.Value)
				}
				db.Params[k.Value] = d.oneOf(pv, "params: "+k.Value, []string{"required", "optional"}) == "required"
			})
			if len(db.Params) > MaxParams {
				d.add(v, "params: at most %d, not %d", MaxParams, len(db.Params))
			}
		case "public":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				d.add(v, "public must be true or false")
			}
			db.Public = v.Value == "true"
		case "panels":
			d.list(v, "panels", func(item *yaml.Node) { db.Panels = append(db.Panels, d.panel(item, len(db.Panels))) })
			if v.Kind == yaml.SequenceNode && (len(v.Content) == 0 || len(v.Content) > MaxPanels) {
				d.add(v, "a dashboard has 1 to %d panels, not %d", MaxPanels, len(v.Content))
			}
		}
	})
	if n.Kind != yaml.MappingNode {
		return db
	}
	if got["name"] == nil {
		d.add(n, "the dashboard needs a name")
	}
	if got["panels"] == nil {
		d.add(n, "the dashboard needs panels")
	}
	if db.Title == "" {
		db.Title = db.Name
	}
	for i, p := range db.Panels {
		for k, v := range p.Where {
			if m := paramRefRE.FindStringSubmatch(v); m != nil {
				if _, ok := db.Params[m[1]]; !ok {
					d.add(p.whereNodes[k], "panel %d: where %s: ${%s} is not a declared param%s", i+1, k, m[1], declared(db.Params))
				}
			}
		}
		if len(p.Where) > 0 && p.Kind == KindTimeseries {
			d.add(p.kindNode, "panel %d: a timeseries panel cannot have where (series are computed over all entries; use a table or stat)", i+1)
		}
		if db.Public && p.Kind == KindTimeseries {
			d.add(p.kindNode, "a public dashboard cannot have timeseries panels (public pages are drawn from entries; use stat, table, bars or ranking)")
		}
	}
	return db
}

// declared lists the declared params for an error message.
func declared(params map[string]bool) string {
	if len(params) == 0 {
		return " (declare it under params:, e.g. params: {user: required})"
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	return " (params: " + strings.Join(names, ", ") + ")"
}

func (d *decoder) timeRange(n *yaml.Node, what string, tr *TimeRange) {
	var nodes [2]*yaml.Node
	got := d.fields(n, what+"time", []string{"from", "to"}, func(k, v *yaml.Node) {
		s, i := d.str(v, "time."+k.Value), 0
		if k.Value == "to" {
			i = 1
		}
		if _, err := ParseTime(s, time.Now()); s != "" && err != nil {
			d.add(v, "%stime.%s: %v", what, k.Value, err)
			return
		}
		nodes[i] = v
		if i == 0 {
			tr.From = s
		} else {
			tr.To = s
		}
	})
	if n.Kind == yaml.MappingNode && got["from"] == nil {
		d.add(n, "%stime needs a from, e.g. from: now-6h", what)
	}
	if nodes[0] != nil {
		if _, _, err := tr.Resolve(time.Now()); err != nil {
			d.add(n, "%stime: %v", what, err)
		}
	}
}

func (d *decoder) panel(n *yaml.Node, i int) *Panel {
	p := &Panel{Line: n.Line, Grid: Grid{X: (i % 2) * 12, Y: (i / 2) * 8, W: 12, H: 8}}
	what := fmt.Sprintf("panel %d", i+1)
	if n.Kind != yaml.MappingNode {
		d.add(n, "%s must be a mapping", what)
		return p
	}
	// The kind decides which fields apply, so read it first.
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == "kind" {
			p.kindNode = n.Content[j+1]
			p.Kind = d.oneOf(n.Content[j+1], what+": kind", kinds)
		}
	}
	all := append([]string(nil), commonFields...)
	for _, k := range kinds {
		for _, f := range kindFields[k] {
			if !slices.Contains(all, f) {
				all = append(all, f)
			}
		}
	}
	own := kindFields[p.Kind]
	got := d.fields(n, what, all, func(k, v *yaml.Node) {
		if p.Kind != "" && own != nil && !slices.Contains(commonFields, k.Value) && !slices.Contains(own, k.Value) {
			d.add(k, "%s: %q does not apply to a %s panel (it takes %s)", what, k.Value, p.Kind, strings.Join(own, ", "))
			return
		}
		switch k.Value {
		case "title":
			p.Title = d.str(v, what+": title")
		case "resource":
			d.resource(v, what, &p.Resource)
		case "grid":
			d.grid(v, what, &p.Grid)
		case "time":
			p.Time = &TimeRange{To: "now"}
			d.timeRange(v, what+": ", p.Time)
		case "keys":
			if p.Kind == KindStat {
				p.Keys = d.keyList(v, what+": keys", 1, 1)
			} else if p.Kind == KindBars {
				p.Keys = d.keyList(v, what+": keys", 1, MaxColumns)
			} else {
				p.Keys = d.keyList(v, what+": keys", 1, MaxSeriesKeys)
			}
		case "columns":
			p.Columns = d.keyList(v, what+": columns", 1, MaxColumns)
		case "aggregate":
			p.Aggregate = d.oneOf(v, what+": aggregate", aggregates[p.Kind])
		case "thresholds":
			d.list(v, what+": thresholds", func(item *yaml.Node) {
				t := Threshold{}
				tg := d.fields(item, what+": threshold", []string{"value", "color"}, func(k, v *yaml.Node) {
					if k.Value == "value" {
						t.Value = d.number(v, what+": threshold value")
					} else if t.Color = d.str(v, what+": threshold color"); v.Kind == yaml.ScalarNode && !colorRE.MatchString(t.Color) {
						d.add(v, "%s: color %q must be a name (green, dark-red) or #rgb/#rrggbb", what, t.Color)
					}
				})
				if item.Kind == yaml.MappingNode && (tg["value"] == nil || tg["color"] == nil) {
					d.add(item, "%s: a threshold needs a value and a color", what)
				} else if l := len(p.Thresholds); l > 0 && tg["value"] != nil && t.Value <= p.Thresholds[l-1].Value {
					d.add(tg["value"], "%s: threshold values must increase (%g after %g)", what, t.Value, p.Thresholds[l-1].Value)
				}
				p.Thresholds = append(p.Thresholds, t)
			})
		case "unit":
			p.Unit = d.str(v, what+": unit")
		case "decimals":
			dec := d.integer(v, what+": decimals", 0, 10)
			p.Decimals = &dec
		case "mode":
			p.Mode = d.oneOf(v, what+": mode", []string{ModeURL, ModeFiles, ModeMapping})
		case "field":
			p.Field = d.key(v, what+": field")
		case "group":
			p.Group = d.key(v, what+": group")
		case "label":
			p.Label = d.key(v, what+": label")
		case "image":
			p.Image = d.key(v, what+": image")
		case "order":
			p.Order = d.oneOf(v, what+": order", []string{"desc", "asc"})
		case "limit":
			p.Limit = d.integer(v, what+": limit", 1, MaxLimit)
		case "where":
			p.Where, p.whereNodes = map[string]string{}, map[string]*yaml.Node{}
			d.fields(v, what+": where", nil, func(k, wv *yaml.Node) {
				if !keyRE.MatchString(k.Value) {
					d.add(k, "%s: where key must be a key name of 1-128 characters", what)
				}
				val := d.str(wv, what+": where "+k.Value)
				if strings.Contains(val, "${") && !paramRefRE.MatchString(val) {
					d.add(wv, "%s: where %s: a value is literal text or one ${param}, not %q", what, k.Value, val)
				}
				p.Where[k.Value], p.whereNodes[k.Value] = val, wv
			})
			if len(p.Where) > MaxWhere {
				d.add(v, "%s: where takes at most %d keys", what, MaxWhere)
			}
		case "mapping":
			d.list(v, what+": mapping", func(item *yaml.Node) {
				var m MapEntry
				mg := d.fields(item, what+": mapping entry", []string{"value", "image"}, func(k, v *yaml.Node) {
					if k.Value == "value" {
						m.Value = d.str(v, what+": mapping value")
					} else if m.Image = d.str(v, what+": mapping image"); v.Kind == yaml.ScalarNode && !strings.Contains(m.Image, "://") && !strings.HasPrefix(m.Image, "/") {
						d.add(v, "%s: image %q must be a URL or a Files path starting with /", what, m.Image)
					}
				})
				if item.Kind == yaml.MappingNode && (mg["value"] == nil || mg["image"] == nil) {
					d.add(item, "%s: a mapping entry needs a value and an image", what)
				}
				p.Mapping = append(p.Mapping, m)
			})
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				d.add(v, "%s: mapping needs at least one entry", what)
			}
		}
	})
	need := func(field, hint string) {
		if got[field] == nil {
			d.add(n, "%s needs %s", what, hint)
		}
	}
	if got["kind"] == nil {
		d.add(n, "%s needs a kind (%s)", what, strings.Join(kinds, ", "))
	}
	need("resource", "a resource, e.g. resource: {type: Device, id: my-device}")
	switch p.Kind {
	case KindLogs:
		need("field", "a field: the key holding the text to show")
	case KindStat, KindTimeseries:
		need("keys", "keys: the key(s) to plot")
		if p.Aggregate == "" && p.Kind == KindStat {
			p.Aggregate = "last"
		} else if p.Aggregate == "" {
			p.Aggregate = "avg"
		}
	case KindImage:
		need("mode", "a mode (url, files or mapping)")
		need("field", "a field: the key holding the "+map[string]string{ModeURL: "image URL", ModeFiles: "Files path", ModeMapping: "value to map"}[p.Mode])
		if p.Mode == ModeMapping {
			need("mapping", "a mapping: [{value, image}] in mode mapping")
		} else if got["mapping"] != nil && p.Mode != "" {
			d.add(got["mapping"], "%s: mapping only applies in mode mapping", what)
		}
	case KindRanking:
		need("field", "a field: the number to rank by")
		if p.Order == "" {
			p.Order = "desc"
		}
		if p.Limit == 0 {
			p.Limit = 10
		}
	case KindGallery:
		need("image", "an image: the key holding a Files path")
		if p.Limit == 0 {
			p.Limit = 12
		}
	case KindBars:
		if (got["field"] == nil) == (got["keys"] == nil) {
			d.add(n, "%s needs either a field (a key holding an object of name: number) or keys (the keys to draw), not both", what)
		}
	}
	return p
}

func (d *decoder) resource(n *yaml.Node, what string, r *Resource) {
	got := d.fields(n, what+": resource", []string{"type", "id"}, func(k, v *yaml.Node) {
		if k.Value == "type" {
			r.Type = d.oneOf(v, what+": resource type", resourceTypes)
		} else if r.ID = d.str(v, what+": resource id"); v.Kind == yaml.ScalarNode && (r.ID == "" || len(r.ID) > 128) {
			d.add(v, "%s: resource id must be 1-128 characters", what)
		}
	})
	if n.Kind == yaml.MappingNode && (got["type"] == nil || got["id"] == nil) {
		d.add(n, "%s: resource needs a type and an id", what)
	}
}

func (d *decoder) grid(n *yaml.Node, what string, g *Grid) {
	got := d.fields(n, what+": grid", []string{"x", "y", "w", "h"}, func(k, v *yaml.Node) {
		w := what + ": grid." + k.Value
		switch k.Value {
		case "x":
			g.X = d.integer(v, w, 0, GridColumns-1)
		case "y":
			g.Y = d.integer(v, w, 0, 10000)
		case "w":
			g.W = d.integer(v, w, 1, GridColumns)
		case "h":
			g.H = d.integer(v, w, 1, 100)
		}
	})
	if n.Kind == yaml.MappingNode && len(got) == 4 && g.X+g.W > GridColumns {
		d.add(n, "%s: grid x+w is %d, past the %d columns", what, g.X+g.W, GridColumns)
	} else if n.Kind == yaml.MappingNode && len(got) != 4 {
		d.add(n, "%s: grid needs x, y, w and h", what)
	}
}
