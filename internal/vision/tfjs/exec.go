package tfjs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// exec is the state of one Run.
type exec struct {
	m     *Model
	ar    *arena
	temps []*value // released after the current op
	// reuse[i] reports whether input i's buffer may be overwritten by the
	// current op (its last use, sole owner, run-local).
	reuse []bool
}

// maxTensorElems bounds a single intermediate tensor (4 GiB of float32).
const maxTensorElems = 1 << 30

// errTooLarge is raised (as a panic, recovered into an error by Run and
// Load) when a graph asks for an absurdly large tensor.
type errTooLarge struct{ shape []int }

func (e errTooLarge) Error() string { return fmt.Sprintf("tensor of shape %v is too large", e.shape) }

// alloc returns a new run-local value (uninitialised data).
func (e *exec) alloc(shape []int, dt dtype) *value {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > maxTensorElems/d) {
			panic(errTooLarge{shape})
		}
		n *= d
	}
	return &value{shape: shape, buf: &buffer{data: e.ar.get(n), refs: 1}, dtype: dt}
}

// canReuse reports whether input i's buffer may be overwritten.
func (e *exec) canReuse(i int) bool { return i >= 0 && i < len(e.reuse) && e.reuse[i] }

// allocLike returns a value of the input's logical shape and layout, reusing
// the input's buffer when the executor allows it for input index i.
func (e *exec) allocLike(in *value, i int, dt dtype) *value {
	if e.canReuse(i) {
		in.buf.refs++
		e.reuse[i] = false
		return &value{shape: in.shape, perm: in.perm, buf: in.buf, dtype: dt}
	}
	v := e.alloc(in.shape, dt)
	v.perm = in.perm
	return v
}

// view returns a value sharing in's buffer with another shape/layout.
func (e *exec) view(in *value, shape, perm []int) *value {
	if !in.buf.pinned {
		in.buf.refs++
	}
	if perm != nil && isIdentity(perm) {
		perm = nil
	}
	return &value{shape: shape, perm: perm, buf: in.buf, dtype: in.dtype}
}

// contig returns v in canonical layout, transposing it (once, cached) when it
// is stored permuted.
func (e *exec) contig(v *value) *value {
	if v.perm == nil {
		return v
	}
	if v.mat == nil {
		out := e.alloc(v.shape, v.dtype)
		transposeInto(out.data(), v.data(), v.physShape(), invertPerm(v.perm))
		v.mat = out
	}
	return v.mat
}

// release drops one reference to v's buffer.
func (e *exec) release(v *value) {
	if v == nil {
		return
	}
	if v.mat != nil {
		e.release(v.mat)
		v.mat = nil
	}
	b := v.buf
	if b.pinned {
		return
	}
	b.refs--
	if b.refs == 0 {
		e.ar.put(b.data)
		b.data = nil
	}
}

// parseRef splits "node:1" into ("node", 1).
func parseRef(s string) (string, int) {
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if k, err := strconv.Atoi(s[i+1:]); err == nil && k >= 0 {
			return s[:i], k
		}
	}
	return s, 0
}

// Run evaluates the requested outputs (all model outputs when none are
// given) for the inputs (by input name, with or without ":0"). Output names
// may also name intermediate nodes ("name" or "name:k") that were not fused
// away. Results are freshly allocated and owned by the caller.
func (m *Model) Run(ctx context.Context, inputs map[string]*Tensor, outputs ...string) (res map[string]*Tensor, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if len(outputs) == 0 {
		for _, o := range m.outputs {
			outputs = append(outputs, o.Name)
		}
	}
	// Resolve outputs.
	type want struct {
		name string
		r    ref
	}
	wants := make([]want, len(outputs))
	for i, o := range outputs {
		nm, k := parseRef(o)
		idx, ok := m.byName[nm]
		if !ok {
			return nil, fmt.Errorf("tfjs: unknown output %q", o)
		}
		n := m.nodes[idx]
		if n.fused {
			return nil, fmt.Errorf("tfjs: output %q was fused into another op and is not available", o)
		}
		if k >= n.nout {
			return nil, fmt.Errorf("tfjs: node %q has %d outputs, %q requested", nm, n.nout, o)
		}
		wants[i] = want{o, ref{idx, k}}
	}

	e := &exec{m: m, ar: arenaPool.Get().(*arena)}
	defer arenaPool.Put(e.ar)
	defer func() {
		if r := recover(); r != nil {
			if tl, ok := r.(errTooLarge); ok {
				err = fmt.Errorf("tfjs: %w", tl)
			} else {
				err = fmt.Errorf("tfjs: internal error: %v", r)
			}
			res = nil
		}
	}()

	vals := make([][]*value, len(m.nodes))
	// Feed inputs.
	fed := map[int]bool{}
	for name, t := range inputs {
		nm, _ := parseRef(name)
		idx, ok := m.byName[nm]
		if !ok || m.nodes[idx].op != "Placeholder" {
			return nil, fmt.Errorf("tfjs: unknown input %q", name)
		}
		if t == nil {
			return nil, fmt.Errorf("tfjs: input %q is nil", name)
		}
		if len(t.Data) != shapeSize(t.Shape) {
			return nil, fmt.Errorf("tfjs: input %q: shape %v needs %d values, got %d", name, t.Shape, shapeSize(t.Shape), len(t.Data))
		}
		n := m.nodes[idx]
		if ps := n.placeholderShape; ps != nil {
			ok := len(ps) == len(t.Shape)
			for i := 0; ok && i < len(ps); i++ {
				ok = ps[i] < 0 || ps[i] == t.Shape[i]
			}
			if !ok {
				return nil, fmt.Errorf("tfjs: input %q: shape %v does not match %v", name, t.Shape, ps)
			}
		}
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tfjs: input %q: negative dimension in %v", name, t.Shape)
			}
		}
		v := &value{shape: append([]int(nil), t.Shape...), buf: &buffer{data: t.Data, pinned: true}, dtype: n.dtype}
		vals[idx] = []*value{v}
		fed[idx] = true
	}

	// Which nodes are needed, and how often each output is consumed.
	needed := make([]bool, len(m.nodes))
	var mark func(i int) error
	mark = func(i int) error {
		if needed[i] {
			return nil
		}
		needed[i] = true
		n := m.nodes[i]
		if n.konst != nil || fed[i] {
			return nil
		}
		if n.op == "Placeholder" {
			return fmt.Errorf("tfjs: input %q not provided", n.name)
		}
		for _, r := range n.inputs {
			if err := mark(r.node); err != nil {
				return err
			}
		}
		return nil
	}
	remaining := make([][]int32, len(m.nodes))
	for _, w := range wants {
		if err := mark(w.r.node); err != nil {
			return nil, err
		}
	}
	for i, n := range m.nodes {
		if !needed[i] {
			continue
		}
		remaining[i] = make([]int32, n.nout)
	}
	for _, i := range m.order {
		if !needed[i] || fed[i] {
			continue
		}
		for _, r := range m.nodes[i].inputs {
			remaining[r.node][r.out]++
		}
	}
	for _, w := range wants {
		remaining[w.r.node][w.r.out]++ // pinned until the end
	}

	for i, n := range m.nodes {
		if n.konst != nil && needed[i] {
			vals[i] = n.konst
		}
	}

	in := make([]*value, 0, 8)
	for _, i := range m.order {
		if !needed[i] || fed[i] || vals[i] != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			e.releaseAll(vals)
			return nil, err
		}
		n := m.nodes[i]
		in = in[:0]
		for _, r := range n.inputs {
			in = append(in, vals[r.node][r.out])
		}
		// Inputs whose buffer this op may overwrite.
		e.reuse = e.reuse[:0]
		for k, r := range n.inputs {
			v := in[k]
			ok := !v.buf.pinned && v.buf.refs == 1 && v.mat == nil
			if ok {
				uses := int32(0)
				for _, r2 := range n.inputs {
					if r2 == r {
						uses++
					}
				}
				ok = remaining[r.node][r.out] == uses
			}
			e.reuse = append(e.reuse, ok)
		}
		out, err := n.impl.run(e, in)
		for _, t := range e.temps {
			e.release(t)
		}
		e.temps = e.temps[:0]
		if err != nil {
			e.releaseAll(vals)
			return nil, fmt.Errorf("tfjs: node %q (%s): %w", n.name, n.op, err)
		}
		if len(out) != n.nout {
			e.releaseAll(vals)
			return nil, fmt.Errorf("tfjs: node %q (%s): produced %d outputs, want %d", n.name, n.op, len(out), n.nout)
		}
		vals[i] = out
		for _, r := range n.inputs {
			remaining[r.node][r.out]--
			if remaining[r.node][r.out] == 0 {
				e.release(vals[r.node][r.out])
				if m.nodes[r.node].konst == nil {
					vals[r.node][r.out] = nil
				}
			}
		}
		for k := range out {
			if remaining[i][k] == 0 {
				e.release(out[k])
				out[k] = nil
			}
		}
	}

	res = make(map[string]*Tensor, len(wants))
	exported := map[ref]*Tensor{}
	for _, w := range wants {
		if t, ok := exported[w.r]; ok {
			res[w.name] = &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
			continue
		}
		v := vals[w.r.node][w.r.out]
		if v == nil {
			return nil, fmt.Errorf("tfjs: output %q was not computed", w.name)
		}
		res[w.name] = e.export(v)
		exported[w.r] = res[w.name]
	}
	e.releaseAll(vals)
	return res, nil
}

// export returns v as a caller-owned Tensor (canonical layout, own memory).
func (e *exec) export(v *value) *Tensor {
	shape := append([]int(nil), v.shape...)
	if v.perm == nil && !v.buf.pinned && v.buf.refs == 1 && len(v.buf.data) == v.size() {
		d := v.buf.data
		v.buf.data = nil
		v.buf.refs = 0
		v.buf.pinned = true // detached: nothing to recycle
		return &Tensor{Shape: shape, Data: d}
	}
	out := make([]float32, v.size())
	if v.perm == nil {
		copy(out, v.data())
	} else {
		transposeInto(out, v.data(), v.physShape(), invertPerm(v.perm))
	}
	return &Tensor{Shape: shape, Data: out}
}

func (e *exec) releaseAll(vals [][]*value) {
	for i, vs := range vals {
		if e.m.nodes[i].konst != nil {
			continue
		}
		for k, v := range vs {
			if v != nil {
				e.release(v)
				vs[k] = nil
			}
		}
	}
}
