package flow

import (
	"fmt"
	"regexp"
	"sync"

	"github.com/nagare-iot/nagare/internal/expr"
)

// templates caches compiled templates by source; app configs repeat the
// same few strings for every event.
var templates sync.Map // string → *expr.Template

func template(src string) (*expr.Template, error) {
	if t, ok := templates.Load(src); ok {
		return t.(*expr.Template), nil
	}
	t, err := expr.CompileTemplate(src)
	if err != nil {
		return nil, err
	}
	templates.Store(src, t)
	return t, nil
}

var escapers = map[string]expr.Escaper{
	"":      expr.NoEscape,
	"url":   expr.URLQuery,
	"json":  expr.JSONString,
	"slack": expr.SlackText,
}

// alwaysEscape lists the escapings that guard against injection rather
// than keep a format valid: they apply to a template that is exactly one
// ${…} too (Slack text that is just ${payload.msg} must not become a
// <!channel>).
var alwaysEscape = map[string]bool{"slack": true}

// renderString renders a text field: a template that is exactly one ${…}
// is used as it is (a whole URL, say); in a mixed template the values are
// escaped for the destination.
func renderString(src, escape string, env expr.Env) (string, error) {
	t, err := template(src)
	if err != nil {
		return "", err
	}
	esc := escapers[escape]
	if t.IsSingle() && !alwaysEscape[escape] {
		esc = expr.NoEscape
	}
	return t.RenderString(env, esc)
}

// renderConfig renders every template of an action's config for one event.
func renderConfig(fields []Field, cfg map[string]any, env expr.Env) (map[string]any, error) {
	out := make(map[string]any, len(cfg))
	for _, f := range fields {
		v, ok := cfg[f.Name]
		if !ok {
			continue
		}
		switch f.Type {
		case TTemplate:
			s, err := renderString(v.(string), f.Escape, env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			out[f.Name] = s
		case TMap:
			src := v.(map[string]string)
			m := make(map[string]string, len(src))
			for k, s := range src {
				r, err := renderString(s, f.Escape, env)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %w", f.Name, k, err)
				}
				m[k] = r
			}
			out[f.Name] = m
		case TAny:
			r, err := renderAnyEscaped(v, env, escapers[f.Escape])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			out[f.Name] = r
		case TObject:
			sub, _ := v.(map[string]any)
			r, err := renderConfig(f.Fields, sub, env)
			if err != nil {
				return nil, fmt.Errorf("%s.%w", f.Name, err)
			}
			out[f.Name] = r
		default:
			out[f.Name] = v
		}
	}
	return out, nil
}

// renderAny renders a YAML value: each string is a template that keeps
// its value's type when it is exactly one ${…}.
func renderAny(v any, env expr.Env) (any, error) { return renderAnyEscaped(v, env, nil) }

// renderAnyEscaped is renderAny with the text from data passed through
// esc (nil: none): values in mixed text, and a lone ${…} that gives a
// string. Literal text, numbers and whole objects or lists from a lone
// ${…} are kept as they are (the author chose to insert them).
func renderAnyEscaped(v any, env expr.Env, esc expr.Escaper) (any, error) {
	switch x := v.(type) {
	case string:
		t, err := template(x)
		if err != nil {
			return nil, err
		}
		return t.Render(env, esc)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			r, err := renderAnyEscaped(val, env, esc)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			m[k] = r
		}
		return m, nil
	case []any:
		l := make([]any, len(x))
		for i, val := range x {
			r, err := renderAnyEscaped(val, env, esc)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			l[i] = r
		}
		return l, nil
	default:
		return v, nil
	}
}

func (e *Engine) renderValue(v any, env expr.Env, _ *Field) (any, error) { return renderAny(v, env) }

var secretKeyRE = regexp.MustCompile(`(?i)authorization|secret|token|password|passwd|api[-_]?key|cookie|signature`)

// maskSecrets copies a rendered config for the run history, masking values
// under keys that look like secrets (an Authorization header, a token in
// a body). Credentials themselves are never rendered into configs: fields
// of type credential hold only the credential's ID.
func maskSecrets(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			if secretKeyRE.MatchString(k) {
				if _, isStr := val.(string); isStr {
					m[k] = "****"
					continue
				}
			}
			m[k] = maskSecrets(val)
		}
		return m
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, val := range x {
			if secretKeyRE.MatchString(k) {
				val = "****"
			}
			m[k] = val
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, val := range x {
			l[i] = maskSecrets(val)
		}
		return l
	default:
		return v
	}
}
