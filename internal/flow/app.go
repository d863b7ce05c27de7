package flow

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nagare-iot/nagare/internal/expr"
	"github.com/nagare-iot/nagare/internal/suggest"
	"github.com/nagare-iot/nagare/internal/yamlerr"
)

// App is a decoded, validated app definition.
type App struct {
	Name        string
	Description string
	Enabled     bool
	Channels    []*Channel // in file order
	Source      []byte     // the YAML as given, returned unchanged on read
}

// Channel fans each event out to its actions.
type Channel struct {
	Name        string
	Description string
	Sources     []*Source
	Actions     []*Action
}

// Source is one event source attached to a channel.
type Source struct {
	Kind   string
	Config map[string]any // decoded fields, defaults applied
	Line   int
}

// Action is one step of a channel.
type Action struct {
	Name        string
	Kind        string
	Description string
	Condition   string // empty: always run
	Config      map[string]any
	Output      *Output
	OnError     *Output // where a step that failed for good sends {error, …}
	Timeout     time.Duration
	Retries     int
	Line        int
}

// Output sends an action's result to a channel.
type Output struct {
	Channel   string
	Transform any // template value; nil forwards the result
	Delay     time.Duration
	ForEach   bool
	Key       string // template; set: a keyed timer (see timers.go)
}

// Limits of an app definition.
const (
	MaxOutputDelay   = 900 * time.Second
	DefaultTimeout   = 10 * time.Second
	MaxActionTimeout = 5 * time.Minute
	DefaultRetries   = 3
	MaxRetries       = 10
)

// Lookup lets validation check references outside the app. A nil func
// skips that check (offline validation).
type Lookup struct {
	Credential func(id string) bool
	Operation  func(name string) bool
}

// Problem and ParseError report what is wrong with a file, with positions.
type (
	Problem    = yamlerr.Problem
	ParseError = yamlerr.ParseError
)

var (
	appNameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	channelRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	actionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	yamlLineRE   = regexp.MustCompile(`line (\d+)`)
)

// decoder walks the YAML tree, collecting problems instead of stopping.
type decoder struct {
	lk       Lookup
	problems []Problem
	channels map[string]bool
	chanRefs []*yaml.Node // channel references, checked once all are known
}

func (d *decoder) add(n *yaml.Node, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// addAt reports a problem at a byte offset inside a scalar (template and
// expression errors), as far as the scalar's style allows.
func (d *decoder) addAt(n *yaml.Node, offset int, format string, args ...any) {
	line, col := n.Line, n.Column
	v := n.Value
	if offset > len(v) {
		offset = len(v)
	}
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		line += 1 + strings.Count(v[:offset], "\n")
	case !strings.Contains(v[:offset], "\n"):
		col += offset
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
			col++
		}
	}
	d.problems = append(d.problems, Problem{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// Parse decodes and validates an app file, reporting every problem at once.
func Parse(file string, src []byte, lk Lookup) (*App, error) {
	d := &decoder{lk: lk, channels: map[string]bool{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		line := 1
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, &ParseError{File: file, Problems: []Problem{{Line: line, Col: 1, Msg: strings.TrimPrefix(msg, "yaml: ")}}}
	}
	if len(doc.Content) == 0 {
		return nil, &ParseError{File: file, Problems: []Problem{{Line: 1, Col: 1, Msg: "the file is empty; an app needs a name and channels"}}}
	}
	app := d.app(doc.Content[0])
	for _, ref := range d.chanRefs {
		if !d.channels[ref.Value] {
			d.add(ref, "unknown channel %q%s", ref.Value, suggest.DidYouMean(ref.Value, keys(d.channels)))
		}
	}
	if len(d.problems) > 0 {
		sort.SliceStable(d.problems, func(i, j int) bool {
			a, b := d.problems[i], d.problems[j]
			return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
		})
		return nil, &ParseError{File: file, Problems: d.problems}
	}
	app.Source = append([]byte(nil), src...)
	return app, nil
}

// mapping iterates a mapping node's keys, reporting duplicates.
func (d *decoder) mapping(n *yaml.Node, what string, fn func(k, v *yaml.Node)) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true
	}
	if n.Kind != yaml.MappingNode {
		d.add(n, "%s must be a mapping", what)
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			d.add(k, "%q is set twice", k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k, v)
	}
	return true
}

func (d *decoder) app(n *yaml.Node) *App {
	app := &App{Enabled: true}
	var chans *yaml.Node
	var nameNode *yaml.Node
	d.mapping(n, "an app", func(k, v *yaml.Node) {
		switch k.Value {
		case "name":
			nameNode = v
			app.Name = d.str(v, "name")
			if app.Name != "" && !appNameRE.MatchString(app.Name) {
				d.add(v, "name %q must be lower-case letters, digits and dashes (at most 63)", app.Name)
			}
		case "description":
			app.Description = d.str(v, "description")
		case "enabled":
			app.Enabled = d.boolean(v, "enabled")
		case "channels":
			chans = v
		default:
			d.add(k, "unknown field %q in the app%s", k.Value, suggest.DidYouMean(k.Value, []string{"name", "description", "enabled", "channels"}))
		}
	})
	if nameNode == nil {
		d.add(n, "the app needs a name")
	}
	if chans == nil {
		d.add(n, "the app needs channels")
		return app
	}
	// Channel names first, so actions may refer to channels declared later.
	if chans.Kind == yaml.MappingNode {
		for i := 0; i < len(chans.Content); i += 2 {
			d.channels[chans.Content[i].Value] = true
		}
	}
	actionNames := map[string]bool{}
	d.mapping(chans, "channels", func(k, v *yaml.Node) {
		if !channelRE.MatchString(k.Value) {
			d.add(k, "channel name %q must be 1-64 letters, digits, _ or -", k.Value)
		}
		app.Channels = append(app.Channels, d.channel(k.Value, v, actionNames))
	})
	if chans.Kind == yaml.MappingNode && len(chans.Content) == 0 {
		d.add(chans, "the app needs at least one channel")
	}
	return app
}

func (d *decoder) channel(name string, n *yaml.Node, actionNames map[string]bool) *Channel {
	ch := &Channel{Name: name}
	d.mapping(n, "channel "+name, func(k, v *yaml.Node) {
		switch k.Value {
		case "description":
			ch.Description = d.str(v, "description")
		case "sources":
			d.sequence(v, "sources", func(item *yaml.Node) {
				if s := d.source(item); s != nil {
					ch.Sources = append(ch.Sources, s)
				}
			})
			// webhook, slack and line sources are reached through the
			// channel's one secret URL.
			if n := countSources(ch, "webhook") + countSources(ch, "slack") + countSources(ch, "line"); n > 1 {
				d.add(v, "channel %s has %d webhook/slack/line sources; it has one URL, so at most one of them (use another channel)", name, n)
			}
		case "actions":
			d.sequence(v, "actions", func(item *yaml.Node) {
				if a := d.action(item, actionNames); a != nil {
					ch.Actions = append(ch.Actions, a)
				}
			})
		default:
			d.add(k, "unknown field %q in channel %s%s", k.Value, name, suggest.DidYouMean(k.Value, []string{"description", "sources", "actions"}))
		}
	})
	return ch
}

func (d *decoder) sequence(n *yaml.Node, what string, fn func(*yaml.Node)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.add(n, "%s must be a list", what)
		return
	}
	for _, item := range n.Content {
		fn(item)
	}
}

// source decodes "- <kind>: {fields}".
func (d *decoder) source(n *yaml.Node) *Source {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		d.add(n, "a source is one mapping entry \"<kind>: {…}\" with kind one of %s", kindNames(Sources()))
		return nil
	}
	k, v := n.Content[0], n.Content[1]
	spec := reg.get(reg.sources, k.Value)
	if spec == nil {
		d.add(k, "unknown source kind %q; known: %s%s", k.Value, kindNames(Sources()), suggest.DidYouMean(k.Value, names(Sources())))
		return nil
	}
	return &Source{Kind: spec.Kind, Config: d.fields(v, spec.Kind, spec), Line: k.Line}
}

var actionCommon = []string{"name", "description", "condition", "output", "onError", "timeout", "retries"}

// action decodes the common keys plus exactly one "<kind>: {fields}".
func (d *decoder) action(n *yaml.Node, actionNames map[string]bool) *Action {
	if n.Kind != yaml.MappingNode {
		d.add(n, "an action must be a mapping with a name and one kind (%s)", kindNames(Actions()))
		return nil
	}
	a := &Action{Line: n.Line, Timeout: DefaultTimeout, Retries: DefaultRetries}
	var kindKey, kindVal, nameNode, outNode *yaml.Node
	d.mapping(n, "an action", func(k, v *yaml.Node) {
		switch k.Value {
		case "name":
			nameNode = v
			a.Name = d.str(v, "name")
		case "description":
			a.Description = d.str(v, "description")
		case "condition":
			a.Condition = d.condition(v)
		case "timeout":
			a.Timeout = d.duration(v, "timeout", 1, MaxActionTimeout.Seconds())
		case "retries":
			a.Retries = d.integer(v, "retries", 0, MaxRetries)
		case "output":
			a.Output, outNode = d.output(v, "output", outputFields)
		case "onError":
			a.OnError, _ = d.output(v, "onError", onErrorFields)
		default:
			if reg.get(reg.actions, k.Value) == nil {
				d.add(k, "unknown field %q in an action: expected %s, or an action kind (%s)%s", k.Value,
					strings.Join(actionCommon, ", "), kindNames(Actions()), suggest.DidYouMean(k.Value, append(names(Actions()), actionCommon...)))
				return
			}
			if kindKey != nil {
				d.add(k, "an action has one kind, but this one has %q and %q", kindKey.Value, k.Value)
				return
			}
			kindKey, kindVal = k, v
		}
	})
	switch {
	case nameNode == nil:
		d.add(n, "an action needs a name")
	case !actionNameRE.MatchString(a.Name):
		d.add(nameNode, "action name %q must be 1-64 letters, digits, _ or -", a.Name)
	case actionNames[a.Name]:
		d.add(nameNode, "action name %q is used twice in this app", a.Name)
	default:
		actionNames[a.Name] = true
	}
	if kindKey == nil {
		d.add(n, "action %q needs a kind: one of %s", a.Name, kindNames(Actions()))
		return a
	}
	spec := reg.get(reg.actions, kindKey.Value)
	a.Kind = spec.Kind
	a.Config = d.fields(kindVal, spec.Kind, spec)
	if o := a.Output; o != nil && o.Key != "" {
		// A keyed timer is one scheduled message.
		if o.ForEach {
			d.add(outNode, "output: key and forEach do not go together: a keyed timer is one message")
		}
		if o.Delay == 0 && a.Kind != "delay" {
			d.add(outNode, "output: key needs a delay (or a delay action): a keyed output is a timer")
		}
	}
	return a
}

var outputFields = []Field{
	{Name: "channel", Type: TChannel, Required: true, Doc: "channel that receives the result (an earlier channel makes a loop)"},
	{Name: "transform", Type: TAny, Doc: "template for the payload sent on; `${payload}` is the action's input, `${result}` its output"},
	{Name: "delay", Type: TDuration, Min: 0, Max: MaxOutputDelay.Seconds(), Doc: "wait before sending (at most 900s)"},
	{Name: "forEach", Type: TBool, Doc: "when the result is a list, send one event per element"},
	{Name: "key", Type: TTemplate, Doc: "makes the delayed output a keyed timer: a newer one with the same key replaces it, the timer action cancels it, and it starts a run of its own when it fires"},
}

// onErrorFields are an onError output's: a handled failure is one message,
// sent at once or after a delay.
var onErrorFields = []Field{
	{Name: "channel", Type: TChannel, Required: true, Doc: "channel that receives `{error, action, attempts, payload}` when the action failed for good"},
	{Name: "transform", Type: TAny, Doc: "template for the payload sent on; `${error}` is the error text, `${payload}` the action's input"},
	{Name: "delay", Type: TDuration, Min: 0, Max: MaxOutputDelay.Seconds(), Doc: "wait before sending (at most 900s)"},
}

func (d *decoder) output(n *yaml.Node, what string, fields []Field) (*Output, *yaml.Node) {
	cfg := d.fields(n, what, &Spec{Kind: what, Fields: fields})
	if cfg == nil {
		return nil, n
	}
	o := &Output{Transform: cfg["transform"]}
	o.Channel, _ = cfg["channel"].(string)
	o.Delay, _ = cfg["delay"].(time.Duration)
	o.ForEach, _ = cfg["forEach"].(bool)
	o.Key, _ = cfg["key"].(string)
	return o, n
}

// fields decodes a component's config mapping against its spec.
func (d *decoder) fields(n *yaml.Node, what string, spec *Spec) map[string]any {
	cfg := map[string]any{}
	byName := map[string]*Field{}
	var known []string
	for i := range spec.Fields {
		byName[spec.Fields[i].Name] = &spec.Fields[i]
		known = append(known, spec.Fields[i].Name)
	}
	set := map[string]*yaml.Node{}
	ok := d.mapping(n, what, func(k, v *yaml.Node) {
		f := byName[k.Value]
		if f == nil {
			if len(known) == 0 {
				d.add(k, "unknown field %q: %s takes no fields", k.Value, what)
			} else {
				d.add(k, "unknown field %q in %s (fields: %s)%s", k.Value, what, strings.Join(known, ", "), suggest.DidYouMean(k.Value, known))
			}
			return
		}
		set[f.Name] = k
		if val, good := d.value(v, f); good {
			cfg[f.Name] = val
		}
	})
	if !ok {
		return nil
	}
	for _, f := range spec.Fields {
		if _, given := set[f.Name]; given {
			continue
		}
		if f.Required {
			d.add(n, "%s needs %q", what, f.Name)
		} else if f.Default != nil {
			cfg[f.Name] = f.Default
		}
	}
	for _, group := range spec.OneOf {
		var given []string
		for _, name := range group {
			if set[name] != nil {
				given = append(given, name)
			}
		}
		if len(given) != 1 {
			d.add(n, "%s needs exactly one of %s (got %d)", what, strings.Join(group, ", "), len(given))
		}
	}
	if spec.Check != nil && len(d.problems) == 0 {
		for _, msg := range spec.Check(cfg) {
			d.add(n, "%s: %s", what, msg)
		}
	}
	return cfg
}

// value decodes one field value; good is false when a problem was reported.
func (d *decoder) value(n *yaml.Node, f *Field) (any, bool) {
	before := len(d.problems)
	var out any
	switch f.Type {
	case TString:
		out = d.str(n, f.Name)
	case TTemplate:
		s := d.str(n, f.Name)
		d.template(n, s)
		out = s
	case TExpression:
		out = d.condition(n)
	case TInt:
		out = d.integer(n, f.Name, f.Min, f.Max)
	case TBool:
		out = d.boolean(n, f.Name)
	case TDuration:
		out = d.duration(n, f.Name, f.Min, f.Max)
	case TEnum:
		s := d.str(n, f.Name)
		if !contains(f.Enum, s) && len(d.problems) == before {
			d.add(n, "%s: %q is not one of %s", f.Name, s, strings.Join(f.Enum, ", "))
		}
		out = s
	case TStrings:
		var list []string
		d.sequence(n, f.Name, func(item *yaml.Node) {
			s := d.str(item, f.Name)
			if len(f.Enum) > 0 && !contains(f.Enum, s) {
				d.add(item, "%s: %q is not one of %s", f.Name, s, strings.Join(f.Enum, ", "))
			}
			list = append(list, s)
		})
		out = list
	case TMap:
		m := map[string]string{}
		d.mapping(n, f.Name, func(k, v *yaml.Node) {
			s := d.str(v, f.Name+"."+k.Value)
			d.template(v, s)
			m[k.Value] = s
		})
		out = m
	case TAny:
		d.templatesIn(n)
		var v any
		if err := n.Decode(&v); err != nil {
			d.add(n, "%s: %v", f.Name, err)
		}
		out = v
	case TCredential:
		s := d.str(n, f.Name)
		if s != "" && d.lk.Credential != nil && !d.lk.Credential(s) {
			d.add(n, "%s: no credential %q in the credentials store (create it with POST /v1/credentials/%s)", f.Name, s, s)
		}
		out = s
	case TOperation:
		s := d.str(n, f.Name)
		if s != "" && d.lk.Operation != nil && !d.lk.Operation(s) {
			d.add(n, "%s: no API operation %q (see docs/api.md)", f.Name, s)
		}
		out = s
	case TChannel:
		out = d.str(n, f.Name)
		if n.Kind == yaml.ScalarNode {
			d.chanRefs = append(d.chanRefs, n)
		}
	case TObject:
		cfg := d.fields(n, f.Name, &Spec{Kind: f.Name, Fields: f.Fields})
		if cfg == nil {
			return nil, false
		}
		out = cfg
	default:
		panic("flow: unknown field type " + f.Type)
	}
	return out, len(d.problems) == before
}

func (d *decoder) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.add(n, "%s must be a single value (text)", what)
		return ""
	}
	return n.Value
}

func (d *decoder) boolean(n *yaml.Node, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		d.add(n, "%s must be true or false", what)
	}
	return b
}

func (d *decoder) integer(n *yaml.Node, what string, min, max float64) int {
	var i int
	if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
		d.add(n, "%s must be a whole number", what)
		return 0
	}
	if msg := outOfRange(float64(i), min, max, func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }); msg != "" {
		d.add(n, "%s: %d %s", what, i, msg)
	}
	return i
}

// duration accepts "30s"/"5m" or a number of seconds; min and max are in
// seconds (both 0: unbounded).
func (d *decoder) duration(n *yaml.Node, what string, min, max float64) time.Duration {
	if n.Kind != yaml.ScalarNode {
		d.add(n, "%s must be a duration such as 30s or 5m", what)
		return 0
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		secs, err2 := strconv.ParseFloat(n.Value, 64)
		if err2 != nil {
			d.add(n, "%s: %q is not a duration such as 30s or 5m", what, n.Value)
			return 0
		}
		v = time.Duration(secs * float64(time.Second))
	}
	if msg := outOfRange(v.Seconds(), min, max, func(s float64) string { return time.Duration(s * float64(time.Second)).String() }); msg != "" {
		d.add(n, "%s: %s %s", what, v, msg)
	}
	return v
}

// outOfRange describes v's violation of [min, max]; max 0 means no upper
// bound, min 0 no lower one. It returns "" when v is in range.
func outOfRange(v, min, max float64, show func(float64) string) string {
	switch {
	case max > 0 && (v < min || v > max):
		return "is out of range [" + show(min) + ", " + show(max) + "]"
	case v < min:
		return "is below the minimum " + show(min)
	}
	return ""
}

func (d *decoder) condition(n *yaml.Node) string {
	s := d.str(n, "condition")
	if s == "" {
		return ""
	}
	if _, err := expr.CompileCondition(s); err != nil {
		d.exprError(n, err)
	}
	return s
}

func (d *decoder) template(n *yaml.Node, s string) {
	if s == "" {
		return
	}
	if _, err := expr.CompileTemplate(s); err != nil {
		d.exprError(n, err)
	}
}

// templatesIn compiles every string in an any-typed value.
func (d *decoder) templatesIn(n *yaml.Node) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!str" {
			d.template(n, n.Value)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			d.templatesIn(n.Content[i])
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			d.templatesIn(c)
		}
	}
}

func (d *decoder) exprError(n *yaml.Node, err error) {
	if ee, ok := err.(*expr.Error); ok {
		d.addAt(n, ee.Offset, "%s", ee.Msg)
		return
	}
	d.add(n, "%v", err)
}

func countSources(ch *Channel, kind string) int {
	n := 0
	for _, s := range ch.Sources {
		if s.Kind == kind {
			n++
		}
	}
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func names(specs []*Spec) []string {
	var n []string
	for _, s := range specs {
		n = append(n, s.Kind)
	}
	return n
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
