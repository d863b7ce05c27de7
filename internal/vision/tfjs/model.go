package tfjs

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
)

// Model is a loaded graph model; read-only after load and safe for
// concurrent Run calls.
type Model struct {
	nodes   []*node
	byName  map[string]int
	order   []int // topological order of the runtime (non-constant, unfused) nodes
	inputs  []IO
	outputs []IO
	gemm    Gemm

	// Format metadata from model.json.
	GeneratedBy string
	ConvertedBy string
}

type ref struct{ node, out int }

type node struct {
	name   string
	op     string
	inputs []ref
	nout   int
	impl   opImpl
	konst  []*value // constant (or folded) outputs
	fused  bool     // folded into another node by an optimisation
	attrs  attrs

	// Placeholder
	dtype            dtype
	placeholderShape []int
}

// opImpl is a compiled op.
type opImpl interface {
	run(e *exec, in []*value) ([]*value, error)
}

// Inputs describes the model's inputs (Placeholder nodes).
func (m *Model) Inputs() []IO { return cloneIO(m.inputs) }

// Outputs describes the model's outputs in signature order (the order tfjs
// reports model.outputs), or the unconsumed nodes when there is no signature.
func (m *Model) Outputs() []IO { return cloneIO(m.outputs) }

func cloneIO(in []IO) []IO {
	out := make([]IO, len(in))
	for i, x := range in {
		out[i] = IO{Name: x.Name, Shape: slices.Clone(x.Shape), DType: x.DType}
	}
	return out
}

// Ops lists the TensorFlow op names the executor implements.
func Ops() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Load reads model.json and its weight shards from fsys (shard paths are
// relative to the directory of modelJSON). Unknown ops, malformed JSON,
// missing or short shards and unsupported dtypes are reported as errors.
func Load(fsys fs.FS, modelJSON string) (m *Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			if tl, ok := r.(errTooLarge); ok {
				m, err = nil, fmt.Errorf("tfjs: load %s: %w", modelJSON, tl)
			} else {
				m, err = nil, fmt.Errorf("tfjs: load %s: internal error: %v", modelJSON, r)
			}
		}
	}()
	b, err := fs.ReadFile(fsys, modelJSON)
	if err != nil {
		return nil, fmt.Errorf("tfjs: %w", err)
	}
	m, err = load(fsys, path.Dir(modelJSON), b)
	if err != nil {
		return nil, fmt.Errorf("tfjs: load %s: %w", modelJSON, err)
	}
	return m, nil
}

func load(fsys fs.FS, dir string, raw []byte) (*Model, error) {
	var jm jsonModel
	if err := json.Unmarshal(raw, &jm); err != nil {
		return nil, fmt.Errorf("malformed model.json: %w", err)
	}
	if jm.Format != "" && jm.Format != "graph-model" {
		return nil, fmt.Errorf("format %q is not a graph model", jm.Format)
	}
	if jm.ModelTopology == nil || len(jm.ModelTopology.Node) == 0 {
		return nil, fmt.Errorf("malformed model.json: no modelTopology.node")
	}
	if lib := strings.TrimSpace(string(jm.ModelTopology.Library)); lib != "" && lib != "{}" && lib != "null" {
		var l struct {
			Function []json.RawMessage `json:"function"`
		}
		if err := json.Unmarshal(jm.ModelTopology.Library, &l); err == nil && len(l.Function) > 0 {
			return nil, fmt.Errorf("graph functions (control flow) are not supported")
		}
	}
	weights, err := loadWeights(fsys, dir, jm.WeightsManifest)
	if err != nil {
		return nil, err
	}
	sig := jm.Signature
	if len(sig) == 0 {
		sig = jm.UserDefinedMetadata.Signature
	}
	sigIn, sigOut, err := parseSignature(sig)
	if err != nil {
		return nil, err
	}

	m := &Model{byName: map[string]int{}, gemm: defaultGemm(), GeneratedBy: jm.GeneratedBy, ConvertedBy: jm.ConvertedBy}
	for _, jn := range jm.ModelTopology.Node {
		if jn.Name == "" {
			return nil, fmt.Errorf("node without a name")
		}
		if jn.Op == "" {
			return nil, fmt.Errorf("node %q has no op", jn.Name)
		}
		if _, dup := m.byName[jn.Name]; dup {
			return nil, fmt.Errorf("duplicate node name %q", jn.Name)
		}
		m.byName[jn.Name] = len(m.nodes)
		m.nodes = append(m.nodes, &node{name: jn.Name, op: jn.Op, nout: 1, attrs: attrs{node: jn.Name, op: jn.Op, m: jn.Attr}})
	}
	// Unknown ops are reported all at once.
	var unknown []string
	for _, n := range m.nodes {
		if _, ok := registry[n.op]; !ok && n.op != "Const" && n.op != "Placeholder" {
			unknown = append(unknown, fmt.Sprintf("%s (node %q)", n.op, n.name))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unsupported ops: %s", strings.Join(unknown, ", "))
	}
	for i, jn := range jm.ModelTopology.Node {
		n := m.nodes[i]
		for _, s := range jn.Input {
			if strings.HasPrefix(s, "^") {
				continue // control dependency
			}
			nm, k := parseRef(s)
			idx, ok := m.byName[nm]
			if !ok {
				return nil, fmt.Errorf("node %q: unknown input %q", n.name, s)
			}
			n.inputs = append(n.inputs, ref{idx, k})
		}
	}
	order, err := topoSort(m.nodes, nil)
	if err != nil {
		return nil, err
	}

	// Compile in topological order, folding constant subgraphs.
	for _, i := range order {
		n := m.nodes[i]
		for _, r := range n.inputs {
			if r.out >= m.nodes[r.node].nout {
				return nil, fmt.Errorf("node %q: input %q has only %d outputs", n.name, m.nodes[r.node].name, m.nodes[r.node].nout)
			}
		}
		switch n.op {
		case "Const":
			v, ok := weights[n.name]
			if !ok {
				a, has := n.attrs.m["value"]
				if !has || a.Tensor == nil {
					return nil, fmt.Errorf("Const %q has no weights entry and no inline value", n.name)
				}
				if v, err = inlineTensor(a.Tensor); err != nil {
					return nil, fmt.Errorf("Const %q: %w", n.name, err)
				}
			}
			n.konst = []*value{v}
			continue
		case "Placeholder":
			dt, err := n.attrs.dtype("dtype")
			if err != nil {
				return nil, err
			}
			dts, err := tfDtype(dt)
			if err != nil {
				return nil, fmt.Errorf("Placeholder %q: %w", n.name, err)
			}
			n.dtype = map[string]dtype{"float32": dtFloat, "int32": dtInt, "bool": dtBool}[dts]
			if a, ok := n.attrs.m["shape"]; ok && a.Shape != nil {
				n.placeholderShape = shapeFromJSON(a.Shape)
			}
			continue
		}
		c := &compileCtx{m: m, n: n, a: n.attrs}
		impl, err := registry[n.op](c)
		if err != nil {
			if strings.HasPrefix(err.Error(), "node ") {
				return nil, err
			}
			return nil, fmt.Errorf("node %q (%s): %w", n.name, n.op, err)
		}
		n.impl = impl
		if c.nout > 0 {
			n.nout = c.nout
		}
		if c.allConst() && !c.noFold {
			if err := m.fold(n); err != nil {
				return nil, fmt.Errorf("node %q (%s): constant folding: %w", n.name, n.op, err)
			}
		}
	}

	// Inputs and outputs.
	for _, i := range order {
		n := m.nodes[i]
		if n.op == "Placeholder" {
			m.inputs = append(m.inputs, IO{Name: n.name, Shape: slices.Clone(n.placeholderShape), DType: n.dtype.String()})
		}
	}
	if len(sigIn) > 0 {
		// Prefer the signature's order for inputs when it names Placeholders.
		var ins []IO
		for _, e := range sigIn {
			nm, _ := parseRef(e.Name)
			for _, io := range m.inputs {
				if io.Name == nm {
					ins = append(ins, io)
				}
			}
		}
		if len(ins) == len(m.inputs) {
			m.inputs = ins
		}
	}
	if len(sigOut) > 0 {
		for _, e := range sigOut {
			nm, k := parseRef(e.Name)
			idx, ok := m.byName[nm]
			if !ok || k >= m.nodes[idx].nout {
				return nil, fmt.Errorf("signature output %q is not a node output", e.Name)
			}
			dt := "float32"
			if e.Dtype != "" {
				if d, err := tfDtype(e.Dtype); err == nil {
					dt = d
				}
			}
			name := nm
			if k > 0 {
				name = fmt.Sprintf("%s:%d", nm, k)
			}
			m.outputs = append(m.outputs, IO{Name: name, Shape: shapeFromJSON(e.Shape), DType: dt})
		}
	} else {
		used := map[int]bool{}
		for _, n := range m.nodes {
			for _, r := range n.inputs {
				used[r.node] = true
			}
		}
		for _, i := range order {
			n := m.nodes[i]
			if !used[i] && n.op != "Const" && n.op != "Placeholder" {
				m.outputs = append(m.outputs, IO{Name: n.name, DType: "float32"})
			}
		}
	}
	if len(m.outputs) == 0 {
		return nil, fmt.Errorf("model has no outputs")
	}

	if optimizeGraph {
		m.optimize()
	}
	if m.order, err = topoSort(m.nodes, func(n *node) bool { return n.konst == nil && !n.fused && n.op != "Const" }); err != nil {
		return nil, err
	}
	for _, n := range m.nodes {
		n.attrs = attrs{} // not needed after load
	}
	return m, nil
}

// topoSort orders nodes (Kahn's algorithm, stable by graph order); keep
// selects the nodes to return (all when nil). Cycles are errors.
func topoSort(nodes []*node, keep func(*node) bool) ([]int, error) {
	indeg := make([]int, len(nodes))
	cons := make([][]int, len(nodes))
	for i, n := range nodes {
		if n.fused {
			continue
		}
		seen := map[int]bool{}
		for _, r := range n.inputs {
			if !seen[r.node] {
				seen[r.node] = true
				indeg[i]++
				cons[r.node] = append(cons[r.node], i)
			}
		}
	}
	var queue, order []int
	for i, n := range nodes {
		if indeg[i] == 0 && !n.fused {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		order = append(order, i)
		for _, c := range cons[i] {
			indeg[c]--
			if indeg[c] == 0 {
				queue = append(queue, c)
			}
		}
	}
	live := 0
	for _, n := range nodes {
		if !n.fused {
			live++
		}
	}
	if len(order) != live {
		for i, n := range nodes {
			if indeg[i] > 0 && !n.fused {
				return nil, fmt.Errorf("graph has a cycle through node %q", n.name)
			}
		}
		return nil, fmt.Errorf("graph has a cycle")
	}
	if keep == nil {
		return order, nil
	}
	out := order[:0]
	for _, i := range order {
		if keep(nodes[i]) {
			out = append(out, i)
		}
	}
	return out, nil
}

// fold evaluates a node whose inputs are all constants and stores the
// results as constants.
func (m *Model) fold(n *node) error {
	e := &exec{m: m, ar: &arena{free: map[int][][]float32{}}}
	in := make([]*value, len(n.inputs))
	for i, r := range n.inputs {
		in[i] = m.nodes[r.node].konst[r.out]
	}
	out, err := n.impl.run(e, in)
	if err != nil {
		return err
	}
	if len(out) != n.nout {
		return fmt.Errorf("produced %d outputs, want %d", len(out), n.nout)
	}
	n.konst = make([]*value, len(out))
	for k, v := range out {
		var d []float32
		if v.perm == nil {
			d = slices.Clone(v.data())
		} else {
			d = v.canonicalData()
		}
		n.konst[k] = newConst(slices.Clone(v.shape), d, v.dtype)
	}
	return nil
}

// compileCtx is what an op compiler sees.
type compileCtx struct {
	m      *Model
	n      *node
	a      attrs
	nout   int  // number of outputs when > 1
	noFold bool // never constant-fold
}

func (c *compileCtx) allConst() bool {
	for _, r := range c.n.inputs {
		if c.m.nodes[r.node].konst == nil {
			return false
		}
	}
	return true
}

// konst returns input i's value when it is a constant, else nil.
func (c *compileCtx) konst(i int) *value {
	if i >= len(c.n.inputs) {
		return nil
	}
	r := c.n.inputs[i]
	if k := c.m.nodes[r.node].konst; k != nil {
		return k[r.out]
	}
	return nil
}

func (c *compileCtx) wantInputs(min, max int) error {
	if len(c.n.inputs) < min || (max >= 0 && len(c.n.inputs) > max) {
		if min == max {
			return fmt.Errorf("expects %d inputs, has %d", min, len(c.n.inputs))
		}
		return fmt.Errorf("expects %d..%d inputs, has %d", min, max, len(c.n.inputs))
	}
	return nil
}
