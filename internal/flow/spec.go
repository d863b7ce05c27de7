// Package flow owns nagare's Flux-style apps: channels, event sources and
// actions declared in YAML. This file holds the component registry: every
// event source and action kind registers one Spec, and that spec drives
// decoding, validation, generated docs and (later) UI forms.
package flow

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// FieldType is the type of a component config field.
type FieldType string

// Field types. Strings of kind TTemplate and every string inside TAny and
// TMap values may hold ${…} templates.
const (
	TString     FieldType = "string"     // plain text, no templates
	TTemplate   FieldType = "template"   // text with ${…}
	TExpression FieldType = "expression" // a boolean condition
	TInt        FieldType = "int"
	TBool       FieldType = "bool"
	TDuration   FieldType = "duration" // "30s", "5m" or a number of seconds
	TEnum       FieldType = "enum"
	TStrings    FieldType = "strings"    // a list of plain strings (Enum restricts them)
	TMap        FieldType = "map"        // string → template
	TAny        FieldType = "any"        // any YAML value; strings in it are templates
	TCredential FieldType = "credential" // an ID in the credentials store
	TChannel    FieldType = "channel"    // a channel of the same app
	TOperation  FieldType = "operation"  // an API operation name, Service:operation
	TObject     FieldType = "object"     // nested Fields
)

// Field describes one config field of a component.
type Field struct {
	Name     string
	Type     FieldType
	Required bool
	Default  any // applied when the field is absent
	Doc      string
	Enum     []string // TEnum, TStrings
	Min, Max float64  // TInt, TDuration (seconds); both 0 means unbounded
	Fields   []Field  // TObject
	// Escape says how values interpolated into a TTemplate/TMap string
	// (or into the strings of a TAny value) are escaped when the template
	// mixes text and ${…}: "url" (query escaping), "json" (inside a JSON
	// string), "slack" (Slack mrkdwn). A template that is exactly one ${…}
	// is not escaped, except with "slack", which guards against injected
	// mentions rather than keeping a format valid (see render.go).
	Escape string
}

// Spec is the registered description of a source or action kind.
type Spec struct {
	Kind    string
	Summary string
	Fields  []Field
	// OneOf lists groups of fields of which exactly one must be set
	// (e.g. a timer's interval or cron).
	OneOf [][]string
	// Check runs after the fields decoded cleanly, for rules that span
	// fields; it returns problems as messages.
	Check func(cfg map[string]any) []string
	// Run executes an action kind (nil for sources). It gets the config
	// with every template rendered for the event at hand.
	Run ActionFunc
	// Idempotent says whether running the action twice for one event has
	// the effect of running it once; the run history flags repeats of
	// the others after a crash.
	Idempotent bool
}

type registry struct {
	mu      sync.RWMutex
	sources map[string]*Spec
	actions map[string]*Spec
}

var reg = registry{sources: map[string]*Spec{}, actions: map[string]*Spec{}}

// RegisterSource adds an event source kind. Registering a kind twice is a
// programming error and panics.
func RegisterSource(s Spec) { reg.add(reg.sources, s) }

// RegisterAction adds an action kind.
func RegisterAction(s Spec) { reg.add(reg.actions, s) }

func (r *registry) add(m map[string]*Spec, s Spec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := m[s.Kind]; dup || s.Kind == "" {
		panic(fmt.Sprintf("flow: kind %q registered twice or empty", s.Kind))
	}
	m[s.Kind] = &s
}

func (r *registry) get(m map[string]*Spec, kind string) *Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return m[kind]
}

func (r *registry) list(m map[string]*Spec) []*Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Spec, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// Sources lists the registered source kinds, sorted.
func Sources() []*Spec { return reg.list(reg.sources) }

// Actions lists the registered action kinds, sorted.
func Actions() []*Spec { return reg.list(reg.actions) }

func kindNames(specs []*Spec) string {
	var n []string
	for _, s := range specs {
		n = append(n, s.Kind)
	}
	return strings.Join(n, ", ")
}

// Doc renders the registered components as markdown (docs/flow-components.md).
func Doc() string {
	var b strings.Builder
	b.WriteString("# Flow components\n\nEvery event source and action kind, with its fields. Fields of type `template`,\n")
	b.WriteString("and strings inside `map` and `any` fields, may contain `${…}` expressions.\n")
	section := func(title string, specs []*Spec) {
		fmt.Fprintf(&b, "\n## %s\n", title)
		for _, s := range specs {
			fmt.Fprintf(&b, "\n### `%s`\n\n", s.Kind)
			writeSpec(&b, s)
		}
	}
	section("Event sources", Sources())
	section("Actions", Actions())
	return b.String()
}

// KindDoc renders one source ("source") or action ("action") kind as
// docs/flow-components.md does, without its heading, for the concept pages
// of docs/ that embed it.
func KindDoc(role, kind string) (string, bool) {
	m := reg.actions
	if role == "source" {
		m = reg.sources
	}
	s := reg.get(m, kind)
	if s == nil || (role != "source" && role != "action") {
		return "", false
	}
	var b strings.Builder
	writeSpec(&b, s)
	return b.String(), true
}

func writeSpec(b *strings.Builder, s *Spec) {
	fmt.Fprintf(b, "%s\n\n", s.Summary)
	for _, g := range s.OneOf {
		fmt.Fprintf(b, "Exactly one of: `%s`.\n\n", strings.Join(g, "`, `"))
	}
	if len(s.Fields) == 0 {
		b.WriteString("No fields.\n")
		return
	}
	b.WriteString("| field | type | required | default | meaning |\n|---|---|---|---|---|\n")
	writeFields(b, "", s.Fields)
}

func writeFields(b *strings.Builder, prefix string, fields []Field) {
	for _, f := range fields {
		typ := string(f.Type)
		if len(f.Enum) > 0 {
			typ += ": " + strings.Join(f.Enum, " \\| ")
		}
		req, def := "", ""
		if f.Required {
			req = "yes"
		}
		if f.Default != nil {
			def = fmt.Sprintf("`%v`", f.Default)
			if d, ok := f.Default.(time.Duration); ok {
				def = "`" + d.String() + "`"
			}
		}
		fmt.Fprintf(b, "| `%s%s` | %s | %s | %s | %s |\n", prefix, f.Name, typ, req, def, f.Doc)
		if f.Type == TObject {
			writeFields(b, prefix+f.Name+".", f.Fields)
		}
	}
}
