package expr

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// rawPart is a piece of a split template: literal text ($${ already turned
// into ${) or the source of one ${…}.
type rawPart struct {
	lit    string
	expr   string
	isExpr bool
	off    int // byte offset in the template: of the text, or of the "${"
}

// splitTemplate splits src into literal text and ${…} expressions. Inside
// ${…}, braces nest and string literals ("…", '…' with backslash escapes,
// `…` raw) may contain any character. $${ is a literal ${.
func splitTemplate(src string) ([]rawPart, error) {
	var parts []rawPart
	var lit strings.Builder
	litStart := 0
	flush := func(next int) {
		if lit.Len() > 0 {
			parts = append(parts, rawPart{lit: lit.String(), off: litStart})
			lit.Reset()
		}
		litStart = next
	}
	for i := 0; i < len(src); {
		j := strings.IndexByte(src[i:], '$')
		if j < 0 {
			lit.WriteString(src[i:])
			break
		}
		j += i
		lit.WriteString(src[i:j])
		switch {
		case strings.HasPrefix(src[j:], "$${"):
			lit.WriteString("${")
			i = j + 3
		case strings.HasPrefix(src[j:], "${"):
			end, msg := scanExpr(src, j+2)
			if msg != "" {
				return nil, &Error{Offset: j, Msg: msg}
			}
			body := src[j+2 : end]
			if strings.TrimSpace(body) == "" {
				return nil, &Error{Offset: j, Msg: "empty ${}"}
			}
			flush(j)
			parts = append(parts, rawPart{expr: body, isExpr: true, off: j})
			i = end + 1
			litStart = i
		default:
			lit.WriteByte('$')
			i = j + 1
		}
	}
	flush(len(src))
	return parts, nil
}

// scanExpr returns the index of the } closing the ${ whose body starts at
// start, or an error message.
func scanExpr(src string, start int) (int, string) {
	depth := 0
	var quote byte
	for j := start; j < len(src); j++ {
		c := src[j]
		if quote != 0 {
			if c == '\\' && quote != '`' {
				j++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'', '`':
			quote = c
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return j, ""
			}
			depth--
		}
	}
	if quote != 0 {
		return 0, "unterminated ${: unclosed string literal"
	}
	return 0, "unterminated ${: no closing }"
}

// tpart is a compiled piece of a template.
type tpart struct {
	lit      string
	p        *program // nil for literal text
	off      int
	inString bool // JSON templates: inside a JSON string literal
}

func (p *tpart) eval(env Env) (any, error) {
	v, err := p.p.run(env)
	if err != nil {
		return nil, &EvalError{Expr: "${" + p.p.src + "}", Err: err}
	}
	return v, nil
}

// compileParts compiles the expressions of a split template.
func (c *Compiler) compileParts(raw []rawPart) ([]tpart, []string, error) {
	parts := make([]tpart, 0, len(raw))
	var vars []string
	for _, r := range raw {
		if !r.isExpr {
			parts = append(parts, tpart{lit: r.lit, off: r.off})
			continue
		}
		p, err := c.compile(r.expr, false)
		if err != nil {
			return nil, nil, &Error{Offset: r.off, Msg: fmt.Sprintf("in %s: %s", quoteExpr("${"+r.expr+"}"), err.msg)}
		}
		parts = append(parts, tpart{p: p, off: r.off})
		vars = append(vars, p.vars...)
	}
	slices.Sort(vars)
	return parts, slices.Compact(vars), nil
}

// Template is a compiled string template with ${…} expressions.
type Template struct {
	src   string
	parts []tpart
	vars  []string
}

// CompileTemplate compiles a template such as "Image ${payload.url} at
// ${now()}". "$${" stands for a literal "${".
func (c *Compiler) CompileTemplate(src string) (*Template, error) {
	raw, err := splitTemplate(src)
	if err != nil {
		return nil, err
	}
	parts, vars, err := c.compileParts(raw)
	if err != nil {
		return nil, err
	}
	return &Template{src: src, parts: parts, vars: vars}, nil
}

// Source returns the template source.
func (t *Template) Source() string { return t.src }

// IsLiteral reports whether the template has no ${…}.
func (t *Template) IsLiteral() bool {
	for _, p := range t.parts {
		if p.p != nil {
			return false
		}
	}
	return true
}

// Vars returns the top-level variables referenced (payload, event, …),
// sorted.
func (t *Template) Vars() []string { return slices.Clone(t.vars) }

// IsSingle reports whether the template is exactly one ${…} (which keeps
// its value's type when rendered).
func (t *Template) IsSingle() bool { return t.single() != nil }

func (t *Template) single() *tpart {
	if len(t.parts) == 1 && t.parts[0].p != nil {
		return &t.parts[0]
	}
	return nil
}

// Render renders the template. A template that is exactly one ${…} gives
// the value itself with its type (number, bool, map, slice, nil, …), except
// that a string value is passed through esc. Any other template gives a
// string: literal text as written, each value stringified (see package doc)
// and passed through esc. A nil esc is NoEscape. Results are limited to
// MaxOutput bytes (for a map or slice: of its JSON form).
func (t *Template) Render(env Env, esc Escaper) (any, error) {
	if esc == nil {
		esc = NoEscape
	}
	p := t.single()
	if p == nil {
		return t.renderString(env, esc)
	}
	v, err := p.eval(env)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil, bool, int, int64, float64:
		return v, nil
	case string:
		s := esc(x)
		if len(s) > MaxOutput {
			return nil, t.tooLarge()
		}
		return s, nil
	}
	// Check the size of composite values, so callers can serialise them.
	w := newLimitBuf(MaxOutput)
	if err := writeJSON(w, v, 0); err != nil {
		if errors.Is(err, errOutput) {
			return nil, t.tooLarge()
		}
		return nil, &EvalError{Expr: "${" + p.p.src + "}", Err: err}
	}
	return v, nil
}

// RenderString renders the template as a string: like Render, but a single
// ${…} is stringified and escaped too.
func (t *Template) RenderString(env Env, esc Escaper) (string, error) {
	if esc == nil {
		esc = NoEscape
	}
	return t.renderString(env, esc)
}

func (t *Template) renderString(env Env, esc Escaper) (string, error) {
	if len(t.parts) == 1 && t.parts[0].p == nil {
		return t.parts[0].lit, nil
	}
	w := newLimitBuf(MaxOutput)
	for i := range t.parts {
		p := &t.parts[i]
		if p.p == nil {
			w.WriteString(p.lit)
			continue
		}
		v, err := p.eval(env)
		if err != nil {
			return "", err
		}
		s, err := textOf(v, MaxOutput)
		if err != nil {
			if errors.Is(err, errOutput) {
				return "", t.tooLarge()
			}
			return "", &EvalError{Expr: "${" + p.p.src + "}", Err: err}
		}
		w.WriteString(esc(s))
		if w.err != nil {
			return "", t.tooLarge()
		}
	}
	return w.String(), nil
}

func (t *Template) tooLarge() error {
	return fmt.Errorf("rendering template %s: %w: more than %d bytes", quoteExpr(t.src), errOutput, MaxOutput)
}

// JSONTemplate is a compiled JSON body template such as
// {"time": ${now()}, "name": "${payload.name}", "p": ${payload}}.
type JSONTemplate struct {
	src   string
	parts []tpart
	vars  []string
}

// CompileJSONTemplate compiles a JSON body template. A ${…} inside a JSON
// string literal is stringified and escaped with JSONString; a ${…} outside
// any string is replaced by the JSON encoding of its value (numbers stay
// numbers, objects objects, nil is null). The template must be valid JSON
// when every ${…} is replaced by a value: this is checked here, so errors in
// the literal JSON are reported at compile time with their offset.
func (c *Compiler) CompileJSONTemplate(src string) (*JSONTemplate, error) {
	raw, err := splitTemplate(src)
	if err != nil {
		return nil, err
	}
	parts, vars, err := c.compileParts(raw)
	if err != nil {
		return nil, err
	}
	// Find which ${…} are inside strings, and build the template with every
	// ${…} replaced by a placeholder value to validate it.
	type span struct{ at, src, n int }
	var probe []byte
	var spans []span // where each part starts in probe and in src
	inString, escaped := false, false
	for i := range parts {
		p := &parts[i]
		spans = append(spans, span{at: len(probe), src: p.off})
		if p.p != nil {
			p.inString = inString
			escaped = false
			if !inString {
				probe = append(probe, `""`...)
			}
			spans[len(spans)-1].n = 0
			continue
		}
		spans[len(spans)-1].n = len(p.lit)
		probe = append(probe, p.lit...)
		for j := 0; j < len(p.lit); j++ {
			c := p.lit[j]
			switch {
			case !inString:
				if c == '"' {
					inString = true
				}
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		}
	}
	var raw2 json.RawMessage
	if err := json.Unmarshal(probe, &raw2); err != nil {
		off := len(src)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			at := int(se.Offset) - 1
			off = len(src)
			for _, s := range spans {
				if at >= s.at {
					off = s.src + min(at-s.at, s.n)
				}
			}
			if at < 0 {
				off = 0
			}
			if strings.Contains(se.Error(), "unexpected end") {
				off = len(src)
			}
		}
		return nil, &Error{Offset: off, Msg: fmt.Sprintf("JSON template: %v", err)}
	}
	return &JSONTemplate{src: src, parts: parts, vars: vars}, nil
}

// Source returns the template source.
func (t *JSONTemplate) Source() string { return t.src }

// Vars returns the top-level variables referenced, sorted.
func (t *JSONTemplate) Vars() []string { return slices.Clone(t.vars) }

// Render renders the JSON body. The result is checked to be valid JSON (a
// ${…} used as an object key outside quotes must give a string) and to be at
// most MaxOutput bytes.
func (t *JSONTemplate) Render(env Env) ([]byte, error) {
	w := newLimitBuf(MaxOutput)
	for i := range t.parts {
		p := &t.parts[i]
		if p.p == nil {
			w.WriteString(p.lit)
			continue
		}
		v, err := p.eval(env)
		if err != nil {
			return nil, err
		}
		if p.inString {
			s, err := textOf(v, MaxOutput)
			if err == nil {
				writeJSONContent(w, s)
			} else if !errors.Is(err, errOutput) {
				return nil, &EvalError{Expr: "${" + p.p.src + "}", Err: err}
			}
		} else if err := writeJSON(w, v, 0); err != nil && !errors.Is(err, errOutput) {
			return nil, &EvalError{Expr: "${" + p.p.src + "}", Err: err}
		}
		if w.err != nil {
			return nil, fmt.Errorf("rendering JSON template %s: %w: more than %d bytes", quoteExpr(t.src), errOutput, MaxOutput)
		}
	}
	if !json.Valid(w.b) {
		var raw json.RawMessage
		err := json.Unmarshal(w.b, &raw)
		return nil, fmt.Errorf("rendering JSON template %s: result is not valid JSON: %v", quoteExpr(t.src), err)
	}
	return w.b, nil
}

func writeJSONContent(w *limitBuf, s string) {
	if w.err != nil {
		return
	}
	if len(s) > w.max-len(w.b) {
		w.WriteString(s) // sets the error
		return
	}
	w.b = appendJSONEscaped(w.b, s)
	w.check()
}
