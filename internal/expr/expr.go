// Package expr owns nagare's expression language: the boolean conditions and
// the ${…} string templates used in flow (Flux-style) app configuration.
//
// Expressions are expr-lang (github.com/expr-lang/expr) evaluated against a
// map environment (payload, context, event, result, …) with the SORACOM Flux
// function names added: now() (UNIX ms), len, startsWith, endsWith,
// toUpperCase, toLowerCase, getUTCDayOfWeek, datetimeFromISOString,
// jsonParse, jsonStringify, base64 and base64Decode. Most expr-lang builtins
// (upper, split, filter, map, …) stay available.
//
// Semantics that differ from plain expr-lang, chosen for IoT payloads whose
// fields vary:
//   - an undefined variable or a missing map key is nil, and member access on
//     nil is nil (payload.a.b with no payload.a is nil, not an error); an
//     out-of-range array index is still an error (use get(arr, i) for nil);
//   - string functions treat a nil argument as the empty string, and len(nil)
//     is 0; len counts Unicode code points of a string;
//   - string(x) and toJSON(x) produce compact JSON for maps and arrays.
//
// Cost is bounded: at most MaxNodes AST nodes per expression; a VM memory
// budget (MemoryBudget); a per-evaluation allocation budget (MaxAlloc bytes)
// charged by every function that builds strings or collections, including
// string concatenation with +; at most MaxSteps loop iterations (predicate
// bodies of map, filter, all, reduce, …) and MaxEvalTime of looping per
// evaluation; and MaxOutput bytes per rendered template.
//
// Compiled Conditions, Templates and JSONTemplates are safe for concurrent
// use.
package expr

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/parser/lexer"
	"github.com/expr-lang/expr/vm"
)

// Limits. They are constants so that a flow behaves the same on every node.
const (
	// MaxNodes is the maximum number of AST nodes in one expression.
	MaxNodes = 1000
	// MemoryBudget is the expr-lang VM memory budget of one evaluation
	// (in the VM's units: roughly one per array element created).
	MemoryBudget = 1_000_000
	// MaxAlloc is the number of bytes that functions (string concatenation,
	// repeat, join, jsonStringify, upper, split, …) may produce in one
	// evaluation.
	MaxAlloc = 16 << 20
	// MaxSteps is the number of loop iterations (predicate evaluations) in
	// one evaluation.
	MaxSteps = 1_000_000
	// MaxEvalTime bounds the time spent looping in one evaluation. It is a
	// safety net behind MaxSteps for loops whose body is expensive.
	MaxEvalTime = 2 * time.Second
	// MaxOutput is the maximum size in bytes of a rendered template, and of
	// a string or JSON text produced by stringifying one value.
	MaxOutput = 1 << 20
	// MaxSource is the maximum length in bytes of one expression (a
	// condition, or the inside of one ${…}).
	MaxSource = 16 << 10
)

// Env is the evaluation environment: payload, context, event, result and
// anything else the caller puts in. A nil Env is an empty one.
type Env = map[string]any

// Compiler compiles conditions and templates. The zero value is ready to use.
// Do not change Now after the Compiler has been used.
type Compiler struct {
	// Now returns the current time for now(). Nil means time.Now.
	Now func() time.Time
}

// Default is the Compiler used by the package-level functions.
var Default = &Compiler{}

// CompileCondition compiles a boolean condition with Default.
func CompileCondition(src string) (*Condition, error) { return Default.CompileCondition(src) }

// CompileTemplate compiles a ${…} template with Default.
func CompileTemplate(src string) (*Template, error) { return Default.CompileTemplate(src) }

// CompileJSONTemplate compiles a JSON body template with Default.
func CompileJSONTemplate(src string) (*JSONTemplate, error) { return Default.CompileJSONTemplate(src) }

func (c *Compiler) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Error is a compile error. Offset is the byte offset in the compiled source
// where the problem is: the start of the bad ${…} of a template, or 0 (the
// start) for a condition. Msg says what is wrong and, for an error inside an
// expression, where in the expression (line:column, 1-based).
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg) }

// Condition is a compiled boolean expression.
type Condition struct {
	p *program
}

// CompileCondition compiles a condition such as
// `payload.status == "completed"`. An expression whose type is known at
// compile time and is not boolean is rejected here; otherwise the type is
// checked by Eval.
func (c *Compiler) CompileCondition(src string) (*Condition, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Offset: 0, Msg: "condition: empty expression"}
	}
	p, err := c.compile(src, true)
	if err != nil {
		msg := "condition: " + err.msg
		if t := strings.TrimSpace(src); strings.HasPrefix(t, "${") && strings.HasSuffix(t, "}") {
			msg += " (a condition is a bare expression: drop the ${ })"
		}
		return nil, &Error{Offset: 0, Msg: msg}
	}
	return &Condition{p: p}, nil
}

// Eval evaluates the condition. A result that is not a boolean (including
// nil) is an error naming the type it got.
func (c *Condition) Eval(env Env) (bool, error) {
	v, err := c.p.run(env)
	if err != nil {
		return false, &EvalError{Expr: c.p.src, Err: err}
	}
	b, ok := v.(bool)
	if !ok {
		return false, &EvalError{Expr: c.p.src, Err: fmt.Errorf("result is %s, not a boolean", typeName(v))}
	}
	return b, nil
}

// Source returns the source of the condition.
func (c *Condition) Source() string { return c.p.src }

// Vars returns the top-level variables the condition references (payload,
// event, …), sorted.
func (c *Condition) Vars() []string { return slices.Clone(c.p.vars) }

// EvalError is a run-time error of one expression.
type EvalError struct {
	Expr string // the expression source (inside ${…} for a template)
	Err  error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("evaluating %s: %s", quoteExpr(e.Expr), errMessage(e.Err))
}

func (e *EvalError) Unwrap() error { return e.Err }

func quoteExpr(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > 80 {
		r := []rune(s)
		s = string(r[:77]) + "..."
	}
	return "`" + s + "`"
}

// errMessage renders an expr-lang error on one line: message (line:column).
func errMessage(err error) string {
	if fe, ok := err.(*file.Error); ok {
		if fe.Line > 0 {
			return internalNames.Replace(fmt.Sprintf("%s (%d:%d)", fe.Message, fe.Line, fe.Column+1))
		}
		return internalNames.Replace(fe.Message)
	}
	return internalNames.Replace(err.Error())
}

// program is one compiled expression.
type program struct {
	prog *vm.Program
	src  string   // the expression as written
	vars []string // top-level variables referenced, sorted
}

var vmPool = sync.Pool{New: func() any { return new(vm.VM) }}

func (p *program) run(env Env) (out any, err error) {
	v := vmPool.Get().(*vm.VM)
	v.MemoryBudget = MemoryBudget
	out, err = v.Run(p.prog, env)
	// Do not let the pooled VM keep values of this evaluation alive.
	clear(v.Stack[:cap(v.Stack)])
	clear(v.Scopes[:cap(v.Scopes)])
	clear(v.Variables)
	vmPool.Put(v)
	return out, err
}

// compileError is an error from compile, without an offset yet.
type compileError struct{ msg string }

// Internal identifiers. They contain '$', which expr-lang accepts in
// identifiers but nobody writes by accident.
const (
	meterVar     = "$__m"
	newMeterFunc = "$__newMeter"
	addFunc      = "$__add"
	tickFunc     = "$__tick"
)

// startsWith and endsWith are infix operators in expr-lang (`a startsWith b`),
// so the Flux call forms startsWith(a, b) are rewritten to these same-length
// identifiers before parsing.
var opCallNames = map[string]string{
	"startsWith": "startsWit_",
	"endsWith":   "endsWit_",
}

var internalNames = strings.NewReplacer("startsWit_", "startsWith", "endsWit_", "endsWith")

// compile parses, checks, hardens and compiles one expression.
func (c *Compiler) compile(src string, asBool bool) (p *program, cerr *compileError) {
	defer func() {
		if r := recover(); r != nil {
			p, cerr = nil, &compileError{msg: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	if len(src) > MaxSource {
		return nil, &compileError{msg: fmt.Sprintf("expression longer than %d bytes", MaxSource)}
	}
	source := rewriteOperatorCalls(src)

	// Phase 1: parse and type-check the expression as written, with the
	// builtins' own signatures, so errors are about what the user wrote.
	cfg1 := c.config(false, asBool)
	tree, err := parser.ParseWithConfig(source, cfg1)
	if err != nil {
		return nil, &compileError{msg: c.describe(err, src)}
	}
	if _, err := checker.Check(tree, cfg1); err != nil {
		return nil, &compileError{msg: c.describe(err, src)}
	}
	vars, err := collectVars(tree.Node, cfg1)
	if err != nil {
		return nil, &compileError{msg: c.describe(err, src)}
	}

	// Phase 2: rewrite for nil-safety and metering, then check and compile
	// against the metered functions.
	if err := harden(tree); err != nil {
		return nil, &compileError{msg: c.describe(err, src)}
	}
	cfg2 := c.config(true, asBool)
	if _, err := checker.Check(tree, cfg2); err != nil {
		return nil, &compileError{msg: "internal error: " + c.describe(err, src)}
	}
	if err := optimizer.Optimize(&tree.Node, cfg2); err != nil {
		return nil, &compileError{msg: c.describe(err, src)}
	}
	prog, err := compiler.Compile(tree, cfg2)
	if err != nil {
		return nil, &compileError{msg: c.describe(err, src)}
	}
	return &program{prog: prog, src: src, vars: vars}, nil
}

// describe renders a compile error on one line, with its position in the
// expression computed from the original source.
func (c *Compiler) describe(err error, src string) string {
	fe, ok := err.(*file.Error)
	if !ok {
		return internalNames.Replace(err.Error())
	}
	msg := internalNames.Replace(fe.Message)
	line, col := 1, 1
	runes := 0
	for _, r := range src {
		if runes == fe.From {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		runes++
	}
	return fmt.Sprintf("%s (%d:%d)", msg, line, col)
}

// rewriteOperatorCalls turns startsWith(…) / endsWith(…) in call position into
// calls of the same-length internal functions. The infix forms
// (`a startsWith "x"`, `a startsWith ("x")`) are left alone.
func rewriteOperatorCalls(src string) string {
	if !strings.Contains(src, "startsWith") && !strings.Contains(src, "endsWith") {
		return src
	}
	toks, err := lexer.Lex(file.NewSource(src))
	if err != nil {
		return src // the parser will report it
	}
	var byteAt []int // rune index → byte offset
	for i := range src {
		byteAt = append(byteAt, i)
	}
	byteAt = append(byteAt, len(src))
	b := []byte(src)
	for i, t := range toks {
		name, ok := opCallNames[t.Value]
		if !ok || t.Kind != lexer.Operator || i+1 >= len(toks) || !toks[i+1].Is(lexer.Bracket, "(") {
			continue
		}
		prev := i - 1
		if prev >= 0 && toks[prev].Is(lexer.Operator, ".", "?.") {
			continue // a member named startsWith
		}
		if prev >= 0 && toks[prev].Is(lexer.Operator, "not") {
			prev--
			if prev < 0 || !endsOperand(toks[prev]) {
				prev = -1 // `not startsWith(…)`: negated call
			}
		}
		if prev >= 0 && endsOperand(toks[prev]) {
			continue // infix: `x startsWith (…)`
		}
		if t.From < 0 || t.From >= len(byteAt)-1 {
			continue
		}
		at := byteAt[t.From]
		if at+len(name) <= len(b) && string(b[at:at+len(name)]) == t.Value {
			copy(b[at:], name)
		}
	}
	return string(b)
}

func endsOperand(t lexer.Token) bool {
	switch t.Kind {
	case lexer.Identifier, lexer.Number, lexer.String, lexer.Bytes:
		return true
	case lexer.Bracket:
		return t.Value == ")" || t.Value == "]" || t.Value == "}"
	}
	return false
}

// Builtins kept as they are: they do not allocate, or the VM meters them.
var keptBuiltins = map[string]bool{
	"all": true, "none": true, "any": true, "one": true, "filter": true, "map": true,
	"find": true, "findIndex": true, "findLast": true, "findLastIndex": true,
	"count": true, "sum": true, "groupBy": true, "sortBy": true, "reduce": true,
	"type": true, "abs": true, "ceil": true, "floor": true, "round": true,
	"int": true, "float": true, "indexOf": true, "lastIndexOf": true,
	"hasPrefix": true, "hasSuffix": true, "max": true, "min": true, "mean": true,
	"duration": true, "date": true, "timezone": true, "first": true, "last": true,
	"get": true, "reverse": true, "sort": true,
	"bitand": true, "bitor": true, "bitxor": true, "bitnand": true, "bitnot": true,
	"bitshl": true, "bitshr": true, "bitushr": true,
}

// config builds the expr-lang configuration. Phase 1 (metered=false) checks
// the expression as written; phase 2 compiles the hardened tree, where the
// allocating builtins are replaced by metered functions taking the meter as
// their first argument.
func (c *Compiler) config(metered, asBool bool) *conf.Config {
	opts := []exprlang.Option{
		exprlang.Env(map[string]any{}),
		exprlang.AllowUndefinedVariables(),
		exprlang.MaxNodes(MaxNodes),
		exprlang.DisableBuiltin("now"),
	}
	if asBool && !metered {
		// Phase 1 rejects conditions whose type is known not to be bool.
		// Phase 2 does not convert the result, so Eval can report the type.
		opts = append(opts, exprlang.AsBool())
	}
	for _, f := range builtin.Builtins {
		if keptBuiltins[f.Name] {
			continue
		}
		if _, ok := meteredBuiltins[f.Name]; ok && !metered {
			continue // phase 1 checks calls against the builtin's signature
		}
		if f.Name == "len" && !metered {
			continue
		}
		opts = append(opts, exprlang.DisableBuiltin(f.Name))
	}
	for _, f := range c.functions(metered) {
		opts = append(opts, exprlang.Function(f.name, f.fn, f.types...))
	}
	cfg := conf.CreateNew()
	for _, o := range opts {
		o(cfg)
	}
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	cfg.Check()
	return cfg
}

// collectVars returns the sorted top-level variables referenced by the tree.
// Calling anything but a known function is an error: the environment holds
// data, so an unknown function name is a typo.
func collectVars(root ast.Node, cfg *conf.Config) ([]string, error) {
	seen := map[string]bool{}
	bound := map[string]int{}
	var err error
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		switch n := n.(type) {
		case nil:
		case *ast.IdentifierNode:
			if bound[n.Value] == 0 && cfg.Functions[n.Value] == nil && cfg.Builtins[n.Value] == nil {
				seen[n.Value] = true
			}
		case *ast.CallNode:
			if id, ok := n.Callee.(*ast.IdentifierNode); ok && cfg.Functions[id.Value] == nil && cfg.Builtins[id.Value] == nil && err == nil {
				err = &file.Error{Location: id.Location(), Message: fmt.Sprintf("unknown function %s", id.Value)}
			}
			if _, ok := n.Callee.(*ast.IdentifierNode); !ok {
				walk(n.Callee)
			}
			for _, a := range n.Arguments {
				walk(a)
			}
		case *ast.VariableDeclaratorNode:
			walk(n.Value)
			bound[n.Name]++
			walk(n.Expr)
			bound[n.Name]--
		default:
			for _, ch := range children(n) {
				walk(*ch)
			}
		}
	}
	walk(root)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// children lists the child slots of a node (as ast.Walk visits them).
func children(n ast.Node) []*ast.Node {
	switch n := n.(type) {
	case *ast.UnaryNode:
		return []*ast.Node{&n.Node}
	case *ast.BinaryNode:
		return []*ast.Node{&n.Left, &n.Right}
	case *ast.ChainNode:
		return []*ast.Node{&n.Node}
	case *ast.MemberNode:
		return []*ast.Node{&n.Node, &n.Property}
	case *ast.SliceNode:
		out := []*ast.Node{&n.Node}
		if n.From != nil {
			out = append(out, &n.From)
		}
		if n.To != nil {
			out = append(out, &n.To)
		}
		return out
	case *ast.CallNode:
		out := []*ast.Node{&n.Callee}
		for i := range n.Arguments {
			out = append(out, &n.Arguments[i])
		}
		return out
	case *ast.BuiltinNode:
		out := make([]*ast.Node, 0, len(n.Arguments))
		for i := range n.Arguments {
			out = append(out, &n.Arguments[i])
		}
		return out
	case *ast.PredicateNode:
		return []*ast.Node{&n.Node}
	case *ast.VariableDeclaratorNode:
		return []*ast.Node{&n.Value, &n.Expr}
	case *ast.SequenceNode:
		out := make([]*ast.Node, 0, len(n.Nodes))
		for i := range n.Nodes {
			out = append(out, &n.Nodes[i])
		}
		return out
	case *ast.ConditionalNode:
		return []*ast.Node{&n.Cond, &n.Exp1, &n.Exp2}
	case *ast.ArrayNode:
		out := make([]*ast.Node, 0, len(n.Nodes))
		for i := range n.Nodes {
			out = append(out, &n.Nodes[i])
		}
		return out
	case *ast.MapNode:
		out := make([]*ast.Node, 0, len(n.Pairs))
		for i := range n.Pairs {
			out = append(out, &n.Pairs[i])
		}
		return out
	case *ast.PairNode:
		return []*ast.Node{&n.Key, &n.Value}
	}
	return nil
}

// Predicates whose body must be boolean.
var boolPredicates = map[string]bool{
	"all": true, "none": true, "any": true, "one": true, "filter": true,
	"find": true, "findIndex": true, "findLast": true, "findLastIndex": true, "count": true,
}

// harden rewrites a type-checked tree:
//   - every member access (a.b, a[i]) becomes optional (a?.b) so that access
//     on nil gives nil;
//   - string concatenation (+ whose operands may be strings) calls a metered
//     function;
//   - calls of allocating functions get the per-evaluation meter as their
//     first argument;
//   - every predicate body is wrapped in a call that counts the iteration;
//   - when anything uses the meter, the tree is wrapped in
//     `let $__m = $__newMeter(); …`.
func harden(tree *parser.Tree) error {
	// Decide with the phase-1 types, before any node is replaced.
	plus := map[*ast.BinaryNode]bool{}
	skipPred := map[*ast.PredicateNode]bool{}
	var decide func(n ast.Node)
	decide = func(n ast.Node) {
		switch n := n.(type) {
		case *ast.BinaryNode:
			if n.Operator == "+" && maybeString(n.Left) && maybeString(n.Right) && !(isLiteral(n.Left) && isLiteral(n.Right)) {
				plus[n] = true
			}
		case *ast.BuiltinNode:
			if boolPredicates[n.Name] {
				for _, a := range n.Arguments {
					if p, ok := a.(*ast.PredicateNode); ok {
						if t := p.Node.Type(); t != nil && t.Kind() != reflect.Bool && t.Kind() != reflect.Interface {
							skipPred[p] = true
						}
					}
				}
			}
		}
		for _, ch := range children(n) {
			decide(*ch)
		}
	}
	decide(tree.Node)

	h := &hardener{plus: plus, skipPred: skipPred}
	ast.Walk(&tree.Node, h)
	if h.err != nil {
		return h.err
	}
	// The checker keeps a CallNode's type from an earlier pass; forget the
	// phase-1 types so that calls are checked against the phase-2 functions.
	var reset func(n ast.Node)
	reset = func(n ast.Node) {
		if call, ok := n.(*ast.CallNode); ok {
			call.SetNature(nature.Nature{})
		}
		for _, ch := range children(n) {
			reset(*ch)
		}
	}
	reset(tree.Node)
	if h.needMeter {
		root := tree.Node
		let := &ast.VariableDeclaratorNode{
			Name:  meterVar,
			Value: &ast.CallNode{Callee: &ast.IdentifierNode{Value: newMeterFunc}},
			Expr:  root,
		}
		let.SetLocation(root.Location())
		tree.Node = let
	}
	return nil
}

func maybeString(n ast.Node) bool {
	t := n.Type()
	return t == nil || t.Kind() == reflect.String || t.Kind() == reflect.Interface
}

func isLiteral(n ast.Node) bool {
	switch n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NilNode, *ast.ConstantNode:
		return true
	}
	return false
}

type hardener struct {
	plus      map[*ast.BinaryNode]bool
	skipPred  map[*ast.PredicateNode]bool
	needMeter bool
	err       error
}

func (h *hardener) meterArg(at ast.Node) ast.Node {
	h.needMeter = true
	id := &ast.IdentifierNode{Value: meterVar}
	id.SetLocation(at.Location())
	return id
}

func (h *hardener) call(at ast.Node, name string, args ...ast.Node) ast.Node {
	callee := &ast.IdentifierNode{Value: name}
	callee.SetLocation(at.Location())
	call := &ast.CallNode{Callee: callee, Arguments: args}
	call.SetLocation(at.Location())
	return call
}

func (h *hardener) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		if n.Method {
			// Methods of values (a date's Format, …) are neither metered
			// nor documented; the Flux functions cover them (formatTime).
			h.err = &file.Error{Location: n.Location(), Message: "method calls are not allowed (use functions such as formatTime(t, layout))"}
			return
		}
		n.Optional = true
		chain := &ast.ChainNode{Node: n}
		chain.SetLocation(n.Location())
		*node = chain

	case *ast.BinaryNode:
		if h.plus[n] {
			*node = h.call(n, addFunc, h.meterArg(n), n.Left, n.Right)
		}

	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			if _, metered := fluxMetered[id.Value]; metered {
				n.Arguments = append([]ast.Node{h.meterArg(n)}, n.Arguments...)
			}
		}

	case *ast.BuiltinNode:
		if _, ok := meteredBuiltins[n.Name]; ok {
			args := append([]ast.Node{h.meterArg(n)}, n.Arguments...)
			*node = h.call(n, n.Name, args...)
			return
		}
		if n.Name == "len" {
			*node = h.call(n, "len", n.Arguments...)
			return
		}
		if !keptBuiltins[n.Name] {
			h.err = &file.Error{Location: n.Location(), Message: fmt.Sprintf("unknown function %s", n.Name)}
			return
		}
		for _, a := range n.Arguments {
			p, ok := a.(*ast.PredicateNode)
			if !ok || h.skipPred[p] {
				continue
			}
			p.Node = h.call(p.Node, tickFunc, h.meterArg(p.Node), p.Node)
		}
	}
}

// typeName names a value's type for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "bool"
	case string:
		return "string"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("integer (%T)", v)
	case float32, float64:
		return fmt.Sprintf("number (%T)", v)
	case map[string]any:
		return "map"
	case []any:
		return "array"
	case time.Time:
		return "time"
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		return fmt.Sprintf("map (%T)", v)
	case reflect.Slice, reflect.Array:
		return fmt.Sprintf("array (%T)", v)
	}
	return fmt.Sprintf("%T", v)
}
