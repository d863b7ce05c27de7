package auth

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Policy is a compiled SAM permission document:
//
//	{"statements":[{"effect":"allow","api":["Device:*"],"condition":"…"}]}
//
// A statement applies when its api pattern matches the operation and its
// condition (if any) is true. Deny wins over allow; anything not allowed is
// denied.
type Policy struct {
	statements []statement
}

type statement struct {
	allow     bool
	apis      []string
	condition *vm.Program
}

type rawStatement struct {
	Effect    string          `json:"effect"`
	API       json.RawMessage `json:"api"`
	Condition string          `json:"condition,omitempty"`
}

type rawPolicy struct {
	Statements []rawStatement `json:"statements"`
}

var apiPatternRE = regexp.MustCompile(`^(\*|[A-Z][A-Za-z0-9]*:(\*|[A-Za-z0-9]+\*?))$`)

// condEnv is the environment a condition is compiled against; the same
// names are bound per request at evaluation.
func condEnv(r *http.Request, userName string, now time.Time) map[string]any {
	var ip net.IP
	if r != nil {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ip = net.ParseIP(host)
	}
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	method := ""
	if r != nil {
		method = r.Method
	}
	return map[string]any{
		"currentDate":     day,
		"currentDateTime": now,
		"samUserName":     userName,
		"httpMethod":      method,
		"date": func(y, m, d int) time.Time {
			return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
		},
		"ipAddress": func(cidrs ...string) bool {
			if ip == nil {
				return false
			}
			for _, c := range cidrs {
				if !strings.Contains(c, "/") {
					if p := net.ParseIP(c); p != nil && p.Equal(ip) {
						return true
					}
					continue
				}
				if _, n, err := net.ParseCIDR(c); err == nil && n.Contains(ip) {
					return true
				}
			}
			return false
		},
		"pathVariable": func(name string) string {
			if r == nil {
				return ""
			}
			return r.PathValue(name)
		},
	}
}

// stripLeadingZeros rewrites integer literals with leading zeros
// (SORACOM's examples write date(2023, 02, 01)) so they are not read as
// octal or rejected. String literals ('…', "…", `…`) and the digits after a
// decimal point are left alone, so pathVariable('imsi') == '001010…' and
// 1.05 keep their meaning.
func stripLeadingZeros(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			j = min(j+1, len(s)) // the closing quote
			b.WriteString(s[i:j])
			i = j
		case isDigit(c) && (i == 0 || !isWordOrDot(s[i-1])):
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			num := strings.TrimLeft(s[i:j], "0")
			if num == "" {
				num = "0"
			}
			b.WriteString(num)
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordOrDot(c byte) bool {
	return isDigit(c) || c == '_' || c == '.' || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

// ParsePolicy parses and compiles a permission document, reporting every
// problem it finds.
func ParsePolicy(doc string) (*Policy, error) {
	var raw rawPolicy
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("permission is not a valid permission document: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("permission is not a valid permission document: unexpected data after the top-level object")
	}
	if raw.Statements == nil {
		return nil, fmt.Errorf(`statements: required; a permission document looks like {"statements":[{"effect":"allow","api":["Device:*"]}]}`)
	}
	var problems []string
	p := &Policy{}
	for i, rs := range raw.Statements {
		st := statement{}
		switch rs.Effect {
		case "allow":
			st.allow = true
		case "deny":
		default:
			problems = append(problems, fmt.Sprintf("statements[%d].effect: %q must be allow or deny", i, rs.Effect))
		}
		var one string
		var many []string
		switch {
		case len(rs.API) == 0:
			problems = append(problems, fmt.Sprintf("statements[%d].api: required", i))
		case json.Unmarshal(rs.API, &one) == nil:
			many = []string{one}
		case json.Unmarshal(rs.API, &many) == nil:
			if len(many) == 0 {
				problems = append(problems, fmt.Sprintf("statements[%d].api: required", i))
			}
		default:
			problems = append(problems, fmt.Sprintf("statements[%d].api: must be a string or an array of strings", i))
		}
		for _, a := range many {
			if !apiPatternRE.MatchString(a) {
				problems = append(problems, fmt.Sprintf("statements[%d].api: %q is not an API name such as \"Device:getDevice\", \"Device:*\", \"Device:get*\" or \"*\"", i, a))
			}
		}
		st.apis = many
		if c := strings.TrimSpace(rs.Condition); c != "" {
			prog, err := expr.Compile(stripLeadingZeros(c),
				expr.Env(condEnv(nil, "", time.Time{})), expr.AsBool(), expr.MaxNodes(200))
			if err != nil {
				problems = append(problems, fmt.Sprintf("statements[%d].condition: %v", i, firstLine(err.Error())))
			}
			st.condition = prog
		}
		p.statements = append(p.statements, st)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return p, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// MatchAPI reports whether a statement pattern matches an operation name.
func MatchAPI(pattern, op string) bool {
	if pattern == "*" {
		return true
	}
	if strings.HasSuffix(pattern, "*") {
		return strings.HasPrefix(op, strings.TrimSuffix(pattern, "*"))
	}
	return pattern == op
}

// decision is the outcome of evaluating one policy for one call.
type decision int

const (
	noMatch decision = iota
	allowed
	denied
)

func (p *Policy) decide(op string, env map[string]any) decision {
	d := noMatch
	for _, st := range p.statements {
		match := false
		for _, a := range st.apis {
			if MatchAPI(a, op) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		if st.condition != nil {
			out, err := expr.Run(st.condition, env)
			if b, ok := out.(bool); err != nil || !ok || !b {
				continue // a condition that fails to evaluate does not apply
			}
		}
		if !st.allow {
			return denied
		}
		d = allowed
	}
	return d
}

// Allows evaluates several policies together (the user's own, the
// operator's default permissions): any deny wins, then any allow.
func Allows(op string, r *http.Request, userName string, now time.Time, policies ...*Policy) bool {
	env := condEnv(r, userName, now)
	ok := false
	for _, p := range policies {
		if p == nil {
			continue
		}
		switch p.decide(op, env) {
		case denied:
			return false
		case allowed:
			ok = true
		}
	}
	return ok
}

// policyCache keeps compiled policies by document text, so permission
// checks do not recompile expressions on every call.
type policyCache struct {
	mu sync.Mutex
	m  map[string]*Policy
}

func (c *policyCache) get(doc string) (*Policy, error) {
	if strings.TrimSpace(doc) == "" {
		return nil, nil
	}
	c.mu.Lock()
	p, ok := c.m[doc]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := ParsePolicy(doc)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 1000 {
		c.m = map[string]*Policy{}
	}
	c.m[doc] = p
	c.mu.Unlock()
	return p, nil
}
