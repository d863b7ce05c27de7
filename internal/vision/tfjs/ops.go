package tfjs

import (
	"fmt"
	"math"
	"slices"
)

type compileFunc func(c *compileCtx) (opImpl, error)

var registry map[string]compileFunc

func init() {
	registry = map[string]compileFunc{
		"Identity":      compileIdentity,
		"StopGradient":  compileIdentity,
		"Snapshot":      compileIdentity,
		"NoOp":          nil,
		"Transpose":     compileTranspose,
		"Reshape":       compileReshape,
		"Squeeze":       compileSqueeze,
		"ExpandDims":    compileExpandDims,
		"Pad":           compilePad,
		"PadV2":         compilePad,
		"ConcatV2":      compileConcat,
		"Concat":        compileConcat,
		"SplitV":        compileSplit,
		"Split":         compileSplit,
		"SparseToDense": compileSparseToDense,
		"Cast":          compileCast,
		"Shape":         compileShape,

		"Relu":      compileUnary(uRelu),
		"Relu6":     compileUnary(uRelu6),
		"LeakyRelu": compileUnary(uLeaky),
		"Sigmoid":   compileUnary(uSigmoid),
		"Tanh":      compileUnary(uTanh),
		"Elu":       compileUnary(uElu),
		"Exp":       compileUnary(uExp),
		"Neg":       compileUnary(uNeg),
		"Abs":       compileUnary(uAbs),
		"Sqrt":      compileUnary(uSqrt),
		"Rsqrt":     compileUnary(uRsqrt),
		"Square":    compileUnary(uSquare),
		"Log":       compileUnary(uLog),

		"Add":               compileBinary(bAdd),
		"AddV2":             compileBinary(bAdd),
		"BiasAdd":           compileBinary(bAdd),
		"Sub":               compileBinary(bSub),
		"Mul":               compileBinary(bMul),
		"RealDiv":           compileBinary(bDiv),
		"Div":               compileBinary(bDiv),
		"Maximum":           compileBinary(bMax),
		"Minimum":           compileBinary(bMin),
		"SquaredDifference": compileBinary(bSqDiff),
		"Pow":               compileBinary(bPow),

		"Softmax": compileSoftmax,
		"Mean":    compileReduce(rMean),
		"Sum":     compileReduce(rSum),
		"Max":     compileReduce(rMax),
		"Min":     compileReduce(rMin),

		"ResizeBilinear": compileResizeBilinear,
		"MaxPool":        compilePool(false),
		"AvgPool":        compilePool(true),

		"Conv2D":                     compileConv(false, false),
		"_FusedConv2D":               compileConv(false, true),
		"DepthwiseConv2dNative":      compileConv(true, false),
		"DepthwiseConv2D":            compileConv(true, false),
		"FusedDepthwiseConv2dNative": compileConv(true, true),
		"MatMul":                     compileMatMul(false),
		"_FusedMatMul":               compileMatMul(true),
	}
	delete(registry, "NoOp")
}

// ---------------------------------------------------------------- helpers

func normAxis(axis, rank int) (int, error) {
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= rank {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return axis, nil
}

// constInts returns input i as ints if it is a constant.
func (c *compileCtx) constInts(i int) []int {
	if v := c.konst(i); v != nil {
		return v.ints()
	}
	return nil
}

// ---------------------------------------------------------------- Identity

type identityOp struct{}

func compileIdentity(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(1, -1); err != nil {
		return nil, err
	}
	return identityOp{}, nil
}

func (identityOp) run(e *exec, in []*value) ([]*value, error) {
	return []*value{e.view(in[0], in[0].shape, in[0].perm)}, nil
}

// ---------------------------------------------------------------- Transpose

type transposeOp struct{ perm []int }

func compileTranspose(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(2, 2); err != nil {
		return nil, err
	}
	p := c.constInts(1)
	if p == nil {
		return nil, fmt.Errorf("non-constant perm is not supported")
	}
	seen := make([]bool, len(p))
	for _, x := range p {
		if x < 0 || x >= len(p) || seen[x] {
			return nil, fmt.Errorf("invalid perm %v", p)
		}
		seen[x] = true
	}
	return &transposeOp{perm: p}, nil
}

// run is free: the result records the permutation (see value.perm) and the
// data is moved only when a consumer needs the canonical layout.
func (t *transposeOp) run(e *exec, in []*value) ([]*value, error) {
	x := in[0]
	if x.rank() != len(t.perm) {
		return nil, fmt.Errorf("perm %v for rank-%d input", t.perm, x.rank())
	}
	shape := make([]int, len(t.perm))
	for i, p := range t.perm {
		shape[i] = x.shape[p]
	}
	pinv := invertPerm(t.perm)
	var q []int
	if x.perm == nil {
		q = pinv
	} else {
		q = make([]int, len(pinv))
		for k, p := range x.perm {
			q[k] = pinv[p]
		}
	}
	return []*value{e.view(x, shape, q)}, nil
}

// ---------------------------------------------------------------- Reshape & co

type reshapeOp struct {
	kind    int // 0 reshape, 1 squeeze, 2 expand dims
	shape   []int
	axes    []int
	dynamic bool
}

func compileReshape(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(2, 2); err != nil {
		return nil, err
	}
	op := &reshapeOp{}
	if s := c.konst(1); s != nil {
		op.shape = s.ints()
	} else {
		op.dynamic = true
	}
	return op, nil
}

func compileSqueeze(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	axes, err := c.a.ints("squeeze_dims", nil)
	if err != nil {
		return nil, err
	}
	if len(axes) == 0 {
		axes, _ = c.a.ints("axis", nil)
	}
	return &reshapeOp{kind: 1, axes: axes}, nil
}

func compileExpandDims(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(2, 2); err != nil {
		return nil, err
	}
	ax := c.constInts(1)
	if len(ax) != 1 {
		return nil, fmt.Errorf("needs a constant scalar axis")
	}
	return &reshapeOp{kind: 2, axes: ax}, nil
}

func (r *reshapeOp) targetShape(in []*value) ([]int, error) {
	x := in[0]
	switch r.kind {
	case 1:
		var out []int
		drop := map[int]bool{}
		for _, a := range r.axes {
			a, err := normAxis(a, x.rank())
			if err != nil {
				return nil, err
			}
			if x.shape[a] != 1 {
				return nil, fmt.Errorf("cannot squeeze axis %d of shape %v", a, x.shape)
			}
			drop[a] = true
		}
		for i, d := range x.shape {
			if (len(r.axes) == 0 && d == 1) || drop[i] {
				continue
			}
			out = append(out, d)
		}
		return out, nil
	case 2:
		a := r.axes[0]
		if a < 0 {
			a += x.rank() + 1
		}
		if a < 0 || a > x.rank() {
			return nil, fmt.Errorf("expand axis %d out of range", r.axes[0])
		}
		out := slices.Clone(x.shape)
		return slices.Insert(out, a, 1), nil
	}
	want := r.shape
	if r.dynamic {
		want = in[1].ints()
	}
	out := slices.Clone(want)
	n := x.size()
	known, infer := 1, -1
	for i, d := range out {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			return nil, fmt.Errorf("invalid reshape target %v", want)
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if known == 0 || n%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", x.shape, want)
		}
		out[infer] = n / known
	} else if known != n {
		return nil, fmt.Errorf("cannot reshape %v (%d values) to %v", x.shape, n, want)
	}
	return out, nil
}

func (r *reshapeOp) run(e *exec, in []*value) ([]*value, error) {
	x := in[0]
	shape, err := r.targetShape(in)
	if err != nil {
		return nil, err
	}
	if x.perm == nil {
		return []*value{e.view(x, shape, nil)}, nil
	}
	if q, ok := reshapePerm(x.shape, x.perm, shape); ok {
		return []*value{e.view(x, shape, q)}, nil
	}
	c := e.contig(x)
	return []*value{e.view(c, shape, nil)}, nil
}

// reshapePerm finds a layout for reshaping a permuted value without moving
// data: each group of logical input axes that merges into (or splits from) a
// group of output axes must be stored contiguously and in order.
func reshapePerm(in, perm, out []int) ([]int, bool) {
	// strip size-1 axes on both sides; they can go anywhere.
	type grp struct{ inAxes, outAxes []int }
	var groups []grp
	i, o := 0, 0
	for i < len(in) || o < len(out) {
		for i < len(in) && in[i] == 1 {
			i++
		}
		for o < len(out) && out[o] == 1 {
			o++
		}
		if i >= len(in) || o >= len(out) {
			if i < len(in) || o < len(out) {
				return nil, false
			}
			break
		}
		g := grp{inAxes: []int{i}, outAxes: []int{o}}
		pi, po := in[i], out[o]
		i++
		o++
		for pi != po {
			if pi < po {
				for i < len(in) && in[i] == 1 {
					i++
				}
				if i >= len(in) {
					return nil, false
				}
				g.inAxes = append(g.inAxes, i)
				pi *= in[i]
				i++
			} else {
				for o < len(out) && out[o] == 1 {
					o++
				}
				if o >= len(out) {
					return nil, false
				}
				g.outAxes = append(g.outAxes, o)
				po *= out[o]
				o++
			}
		}
		groups = append(groups, g)
	}
	// physical position of each logical input axis
	pos := invertPerm(perm)
	type placed struct {
		at int
		g  grp
	}
	var pl []placed
	for _, g := range groups {
		for k := 1; k < len(g.inAxes); k++ {
			// consecutive non-unit axes must be physically in order; unit
			// axes between them are allowed anywhere, so compare positions
			// among non-unit axes only.
			if !physicallyAdjacent(pos, in, g.inAxes[k-1], g.inAxes[k]) {
				return nil, false
			}
		}
		pl = append(pl, placed{pos[g.inAxes[0]], g})
	}
	slices.SortFunc(pl, func(a, b placed) int { return a.at - b.at })
	var q []int
	usedOut := make([]bool, len(out))
	for _, p := range pl {
		for _, a := range p.g.outAxes {
			q = append(q, a)
			usedOut[a] = true
		}
	}
	// unit output axes: put them first (any position is valid).
	var units []int
	for a := range out {
		if !usedOut[a] {
			units = append(units, a)
		}
	}
	return append(units, q...), true
}

// physicallyAdjacent reports whether logical axis b follows a directly in
// physical order, ignoring size-1 axes in between.
func physicallyAdjacent(pos, shape []int, a, b int) bool {
	pa, pb := pos[a], pos[b]
	if pb <= pa {
		return false
	}
	// every axis physically between must have size 1
	for ax, p := range pos {
		if p > pa && p < pb && shape[ax] != 1 {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- Pad

type padOp struct {
	pads  []int // flat [before0, after0, before1, ...]
	value float32
	hasV  bool
}

func compilePad(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(2, 3); err != nil {
		return nil, err
	}
	if mode, _ := c.a.str("mode", "CONSTANT"); mode != "" && mode != "CONSTANT" && mode != "constant" {
		return nil, fmt.Errorf("pad mode %q not supported", mode)
	}
	p := c.constInts(1)
	if p == nil {
		return nil, fmt.Errorf("non-constant paddings are not supported")
	}
	if len(p)%2 != 0 {
		return nil, fmt.Errorf("paddings must have shape [rank, 2]")
	}
	for _, x := range p {
		if x < 0 {
			return nil, fmt.Errorf("negative padding %v", p)
		}
	}
	op := &padOp{pads: p}
	if len(c.n.inputs) == 3 {
		v := c.konst(2)
		if v == nil || v.size() != 1 {
			return nil, fmt.Errorf("constant_values must be a constant scalar")
		}
		op.value = v.data()[0]
		op.hasV = true
	} else if f, err := c.a.float("constant_value", 0); err == nil {
		op.value = float32(f)
	}
	return op, nil
}

func (p *padOp) run(e *exec, in []*value) ([]*value, error) {
	x := in[0]
	r := x.rank()
	if len(p.pads) != 2*r {
		return nil, fmt.Errorf("paddings for rank %d, input rank %d", len(p.pads)/2, r)
	}
	oshape := make([]int, r)
	for i := range oshape {
		oshape[i] = x.shape[i] + p.pads[2*i] + p.pads[2*i+1]
	}
	out := e.alloc(oshape, x.dtype)
	out.perm = x.perm
	// Physical pads.
	ps := x.physShape()
	pp := make([]int, 2*r)
	for k := 0; k < r; k++ {
		a := k
		if x.perm != nil {
			a = x.perm[k]
		}
		pp[2*k], pp[2*k+1] = p.pads[2*a], p.pads[2*a+1]
	}
	padND(out.data(), x.data(), ps, pp, p.value)
	return []*value{out}, nil
}

// padND pads src (shape s) into dst with pads pp (flat before/after pairs).
func padND(dst, src []float32, s, pp []int, fill float32) {
	r := len(s)
	os := make([]int, r)
	for i := range s {
		os[i] = s[i] + pp[2*i] + pp[2*i+1]
	}
	// merge trailing unpadded axes into the row length
	inner := 1
	last := r
	for last > 0 && pp[2*(last-1)] == 0 && pp[2*(last-1)+1] == 0 {
		inner *= s[last-1]
		last--
	}
	if last == 0 {
		copy(dst, src)
		return
	}
	// rows: axes [0, last-1) iterate, axis last-1 padded, inner block
	ax := last - 1
	rowIn := s[ax] * inner
	rowOut := os[ax] * inner
	before := pp[2*ax] * inner
	totalRows := 1 // number of rows in dst
	for i := 0; i < ax; i++ {
		totalRows *= os[i]
	}
	// isData maps a dst row to its src row, or reports a pure padding row.
	isData := func(row int) (bool, int) {
		srow, sst := 0, 1
		for i := ax - 1; i >= 0; i-- {
			c := row % os[i]
			row /= os[i]
			ci := c - pp[2*i]
			if ci < 0 || ci >= s[i] {
				return false, 0
			}
			srow += ci * sst
			sst *= s[i]
		}
		return true, srow
	}
	parallelFor(totalRows, grain(grainElems, rowOut), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			d := dst[row*rowOut : (row+1)*rowOut]
			ok, srow := isData(row)
			if !ok {
				fillF32(d, fill)
				continue
			}
			fillF32(d[:before], fill)
			copy(d[before:before+rowIn], src[srow*rowIn:(srow+1)*rowIn])
			fillF32(d[before+rowIn:], fill)
		}
	})
}

func fillF32(d []float32, v float32) {
	if v == 0 {
		clear(d)
		return
	}
	for i := range d {
		d[i] = v
	}
}

// ---------------------------------------------------------------- Concat

type concatOp struct {
	axis    int
	axisIdx int // index of the axis input (first for Concat, last for ConcatV2)
}

func compileConcat(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(2, -1); err != nil {
		return nil, err
	}
	idx := len(c.n.inputs) - 1
	if c.n.op == "Concat" {
		idx = 0
	}
	ax := c.constInts(idx)
	if len(ax) != 1 {
		return nil, fmt.Errorf("needs a constant scalar axis")
	}
	return &concatOp{axis: ax[0], axisIdx: idx}, nil
}

func (c *concatOp) run(e *exec, in []*value) ([]*value, error) {
	xs := make([]*value, 0, len(in)-1)
	for i, v := range in {
		if i != c.axisIdx {
			xs = append(xs, v)
		}
	}
	r := xs[0].rank()
	axis, err := normAxis(c.axis, r)
	if err != nil {
		return nil, err
	}
	oshape := slices.Clone(xs[0].shape)
	oshape[axis] = 0
	samePerm := true
	for _, x := range xs {
		if x.rank() != r {
			return nil, fmt.Errorf("concat of ranks %d and %d", r, x.rank())
		}
		for i := range oshape {
			if i != axis && x.shape[i] != xs[0].shape[i] {
				return nil, fmt.Errorf("concat shapes %v and %v on axis %d", xs[0].shape, x.shape, axis)
			}
		}
		oshape[axis] += x.shape[axis]
		samePerm = samePerm && slices.Equal(x.perm, xs[0].perm)
	}
	var perm []int
	if samePerm {
		perm = xs[0].perm
	} else {
		for i, x := range xs {
			xs[i] = e.contig(x)
		}
	}
	pax := axis
	if perm != nil {
		pax = invertPerm(perm)[axis]
	}
	out := e.alloc(oshape, xs[0].dtype)
	out.perm = perm
	ps := out.physShape()
	outer := 1
	for i := 0; i < pax; i++ {
		outer *= ps[i]
	}
	inner := 1
	for i := pax + 1; i < r; i++ {
		inner *= ps[i]
	}
	od := out.data()
	orow := ps[pax] * inner
	parallelFor(outer, grain(grainElems, orow), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			off := o * orow
			for _, x := range xs {
				n := x.shape[axis] * inner
				copy(od[off:off+n], x.data()[o*n:(o+1)*n])
				off += n
			}
		}
	})
	return []*value{out}, nil
}

// ---------------------------------------------------------------- Split

type splitOp struct {
	v      bool // SplitV
	sizes  []int
	axis   int
	num    int
	xIndex int
}

func compileSplit(c *compileCtx) (opImpl, error) {
	num, err := c.a.int("num_split", 0)
	if err != nil {
		return nil, err
	}
	if num <= 0 {
		return nil, fmt.Errorf("num_split must be positive")
	}
	op := &splitOp{num: num}
	if c.n.op == "SplitV" {
		if err := c.wantInputs(3, 3); err != nil {
			return nil, err
		}
		op.v = true
		op.sizes = c.constInts(1)
		ax := c.constInts(2)
		if op.sizes == nil || len(ax) != 1 {
			return nil, fmt.Errorf("needs constant size_splits and axis")
		}
		if len(op.sizes) != num {
			return nil, fmt.Errorf("%d sizes for num_split %d", len(op.sizes), num)
		}
		op.axis = ax[0]
	} else {
		if err := c.wantInputs(2, 2); err != nil {
			return nil, err
		}
		ax := c.constInts(0)
		if len(ax) != 1 {
			return nil, fmt.Errorf("needs a constant axis")
		}
		op.axis = ax[0]
		op.xIndex = 1
	}
	c.nout = num
	return op, nil
}

func (s *splitOp) run(e *exec, in []*value) ([]*value, error) {
	x := in[s.xIndex]
	axis, err := normAxis(s.axis, x.rank())
	if err != nil {
		return nil, err
	}
	dim := x.shape[axis]
	sizes := make([]int, s.num)
	if s.v {
		copy(sizes, s.sizes)
		sum, infer := 0, -1
		for i, v := range sizes {
			if v == -1 {
				if infer >= 0 {
					return nil, fmt.Errorf("more than one -1 in size_splits")
				}
				infer = i
			} else if v < 0 {
				return nil, fmt.Errorf("invalid size_splits %v", s.sizes)
			} else {
				sum += v
			}
		}
		if infer >= 0 {
			sizes[infer] = dim - sum
			sum = dim
		}
		if sum != dim || (infer >= 0 && sizes[infer] < 0) {
			return nil, fmt.Errorf("size_splits %v do not add up to %d", s.sizes, dim)
		}
	} else {
		if dim%s.num != 0 {
			return nil, fmt.Errorf("dimension %d not divisible by %d", dim, s.num)
		}
		for i := range sizes {
			sizes[i] = dim / s.num
		}
	}
	pax := axis
	if x.perm != nil {
		pax = invertPerm(x.perm)[axis]
	}
	ps := x.physShape()
	outer := 1
	for i := 0; i < pax; i++ {
		outer *= ps[i]
	}
	inner := 1
	for i := pax + 1; i < len(ps); i++ {
		inner *= ps[i]
	}
	outs := make([]*value, s.num)
	xd := x.data()
	off := 0
	for k, sz := range sizes {
		shape := slices.Clone(x.shape)
		shape[axis] = sz
		o := e.alloc(shape, x.dtype)
		o.perm = x.perm
		od := o.data()
		n := sz * inner
		row := dim * inner
		start := off
		parallelFor(outer, grain(grainElems, n), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				copy(od[r*n:(r+1)*n], xd[r*row+start:r*row+start+n])
			}
		})
		off += n
		outs[k] = o
	}
	return outs, nil
}

// ---------------------------------------------------------------- SparseToDense

type sparseToDenseOp struct{}

func compileSparseToDense(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(4, 4); err != nil {
		return nil, err
	}
	return sparseToDenseOp{}, nil
}

func (sparseToDenseOp) run(e *exec, in []*value) ([]*value, error) {
	idx, shp, vals, def := in[0], in[1].ints(), in[2], in[3]
	if def.size() != 1 {
		return nil, fmt.Errorf("default_value must be a scalar")
	}
	for _, d := range shp {
		if d < 0 {
			return nil, fmt.Errorf("invalid output_shape %v", shp)
		}
	}
	out := e.alloc(slices.Clone(shp), vals.dtype)
	od := out.data()
	fillF32(od, def.canonicalData()[0])
	ix := idx.canonicalData()
	var n, r int
	switch idx.rank() {
	case 0:
		n, r = 1, 1
	case 1:
		n, r = idx.shape[0], 1
		if len(shp) != 1 {
			r = len(shp)
			n = 1
		}
	case 2:
		n, r = idx.shape[0], idx.shape[1]
	default:
		return nil, fmt.Errorf("sparse_indices must have rank <= 2")
	}
	if r != len(shp) && n > 0 {
		return nil, fmt.Errorf("sparse_indices rank %d for output rank %d", r, len(shp))
	}
	vd := vals.canonicalData()
	if vals.size() != 1 && vals.size() != n {
		return nil, fmt.Errorf("%d sparse_values for %d indices", vals.size(), n)
	}
	for i := 0; i < n; i++ {
		off := 0
		for k := 0; k < r; k++ {
			c := int(ix[i*r+k])
			if c < 0 || c >= shp[k] {
				return nil, fmt.Errorf("index %d out of bounds", c)
			}
			off = off*shp[k] + c
		}
		if vals.size() == 1 {
			od[off] = vd[0]
		} else {
			od[off] = vd[i]
		}
	}
	return []*value{out}, nil
}

// ---------------------------------------------------------------- Cast / Shape

type castOp struct{ to dtype }

func compileCast(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	t, err := c.a.dtype("DstT")
	if err != nil {
		return nil, err
	}
	s, err := tfDtype(t)
	if err != nil {
		return nil, err
	}
	return &castOp{to: map[string]dtype{"float32": dtFloat, "int32": dtInt, "bool": dtBool}[s]}, nil
}

func (c *castOp) run(e *exec, in []*value) ([]*value, error) {
	x := in[0]
	if c.to == dtFloat || x.dtype == c.to {
		v := e.view(x, x.shape, x.perm)
		v.dtype = c.to
		return []*value{v}, nil
	}
	out := e.allocLike(x, 0, c.to)
	od, xd := out.data(), x.data()
	for i, v := range xd {
		if c.to == dtInt {
			od[i] = float32(math.Trunc(float64(v)))
		} else if v != 0 {
			od[i] = 1
		} else {
			od[i] = 0
		}
	}
	return []*value{out}, nil
}

type shapeOp struct{}

func compileShape(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	return shapeOp{}, nil
}

func (shapeOp) run(e *exec, in []*value) ([]*value, error) {
	x := in[0]
	out := e.alloc([]int{x.rank()}, dtInt)
	for i, d := range x.shape {
		out.data()[i] = float32(d)
	}
	return []*value{out}, nil
}
