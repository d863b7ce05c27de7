package tfjs

// Graph rewrites applied at load, after constant folding. Each one removes
// a memory pass over a large activation tensor:
//
//   - bias: Conv → Add(const vector[co])          ⇒ Conv with bias
//   - residual: Conv(bias, no act) → Add(·, y)     ⇒ Conv with residual y
//   - activation: Conv → act, or Conv → Transpose → act (the act commutes
//     with the transpose)                          ⇒ Conv with act
//
// Nodes that are model outputs are never removed. A fused node keeps its
// name but cannot be requested from Run.

// optimizeGraph enables the rewrites (tests turn it off to compare).
var optimizeGraph = true

func (m *Model) optimize() {
	for changed := true; changed; {
		changed = m.fuseBias() || m.fuseResidual() || m.fuseActivation()
	}
}

// consumers returns, for every live node output, the consuming node indices
// (one entry per use).
func (m *Model) consumers() map[ref][]int {
	out := map[ref][]int{}
	for i, n := range m.nodes {
		if n.fused || n.konst != nil {
			continue
		}
		for _, r := range n.inputs {
			out[r] = append(out[r], i)
		}
	}
	return out
}

func (m *Model) isOutput(i int) bool {
	for _, o := range m.outputs {
		nm, _ := parseRef(o.Name)
		if m.byName[nm] == i {
			return true
		}
	}
	return false
}

// replaceUses points every use of from at to.
func (m *Model) replaceUses(from, to ref) {
	for _, n := range m.nodes {
		if n.fused {
			continue
		}
		for k, r := range n.inputs {
			if r == from {
				n.inputs[k] = to
			}
		}
	}
}

// sole returns the only consumer of node i's output 0, or -1.
func sole(cons map[ref][]int, i int) int {
	c := cons[ref{i, 0}]
	if len(c) != 1 {
		return -1
	}
	return c[0]
}

func (m *Model) runtimeConv(i int) *convOp {
	n := m.nodes[i]
	if n.fused || n.konst != nil {
		return nil
	}
	op, _ := n.impl.(*convOp)
	return op
}

// convThenAdd finds the pattern both fusions below start from: node i is
// a plain conv (no activation or residual yet) whose only consumer j is a
// two-input Add of the conv and some other value. It returns the conv, j
// and that other input; op is nil when the pattern does not match.
func (m *Model) convThenAdd(cons map[ref][]int, i int) (op *convOp, j int, other ref) {
	op = m.runtimeConv(i)
	if op == nil || op.act != ActNone || op.resIdx >= 0 || m.isOutput(i) {
		return nil, 0, ref{}
	}
	j = sole(cons, i)
	if j < 0 || m.isOutput(j) {
		return nil, 0, ref{}
	}
	a := m.nodes[j]
	if b, ok := a.impl.(*binaryOp); !ok || b.kind != bAdd || len(a.inputs) != 2 {
		return nil, 0, ref{}
	}
	other = a.inputs[1]
	if other.node == i {
		other = a.inputs[0]
	}
	if other.node == i {
		return nil, 0, ref{}
	}
	return op, j, other
}

func (m *Model) fuseBias() bool {
	cons := m.consumers()
	changed := false
	for i := range m.nodes {
		op, j, other := m.convThenAdd(cons, i)
		if op == nil {
			continue
		}
		a := m.nodes[j]
		k := m.nodes[other.node].konst
		if k == nil {
			continue
		}
		bv := k[other.out]
		if bv.size() != op.co || (op.nchw && bv.rank() != 3) || (!op.nchw && !isVectorOnLast(bv.shape)) {
			continue
		}
		if op.nchw && (bv.shape[0] != op.co || bv.shape[1] != 1 || bv.shape[2] != 1) {
			continue
		}
		nb := append([]float32(nil), bv.canonicalData()...)
		if op.bias != nil {
			for c := range nb {
				nb[c] += op.bias[c]
			}
		}
		op.bias = nb
		m.replaceUses(ref{j, 0}, ref{i, 0})
		a.fused = true
		changed = true
		cons = m.consumers()
	}
	return changed
}

// isVectorOnLast reports whether s is [c] or [1,…,1,c].
func isVectorOnLast(s []int) bool {
	for _, d := range s[:max(len(s)-1, 0)] {
		if d != 1 {
			return false
		}
	}
	return len(s) >= 1
}

func (m *Model) fuseResidual() bool {
	cons := m.consumers()
	changed := false
	for i := range m.nodes {
		op, j, other := m.convThenAdd(cons, i)
		if op == nil || m.nodes[other.node].konst != nil {
			continue
		}
		a := m.nodes[j]
		// The residual must not depend on the conv (that would be a cycle).
		if m.dependsOn(other.node, i) {
			continue
		}
		n := m.nodes[i]
		op.resIdx = len(n.inputs)
		n.inputs = append(n.inputs, other)
		m.replaceUses(ref{j, 0}, ref{i, 0})
		a.fused = true
		changed = true
		cons = m.consumers()
	}
	return changed
}

// dependsOn reports whether node a (transitively) consumes node b.
func (m *Model) dependsOn(a, b int) bool {
	seen := map[int]bool{}
	var walk func(i int) bool
	walk = func(i int) bool {
		if i == b {
			return true
		}
		if seen[i] {
			return false
		}
		seen[i] = true
		for _, r := range m.nodes[i].inputs {
			if walk(r.node) {
				return true
			}
		}
		return false
	}
	return walk(a)
}

func (m *Model) fuseActivation() bool {
	cons := m.consumers()
	changed := false
	for i := range m.nodes {
		op := m.runtimeConv(i)
		if op == nil || op.act != ActNone || m.isOutput(i) {
			continue
		}
		j := sole(cons, i)
		if j < 0 {
			continue
		}
		via := -1 // a Transpose between conv and activation
		if _, ok := m.nodes[j].impl.(*transposeOp); ok && !m.isOutput(j) {
			via = j
			if j = sole(cons, via); j < 0 {
				continue
			}
		}
		u, ok := m.nodes[j].impl.(*unaryOp)
		if !ok || m.isOutput(j) {
			continue
		}
		act, ok := u.act()
		if !ok {
			continue
		}
		op.act, op.alpha = act, u.alpha
		from := ref{i, 0}
		if via >= 0 {
			from = ref{via, 0}
		}
		m.replaceUses(ref{j, 0}, from)
		m.nodes[j].fused = true
		changed = true
		cons = m.consumers()
	}
	return changed
}
