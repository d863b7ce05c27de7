package tfjs

import (
	"fmt"
	"math"
	"slices"
)

// ---------------------------------------------------------------- activations

// Activation is an element-wise function fused into a kernel's epilogue.
type Activation uint8

const (
	ActNone Activation = iota
	ActRelu
	ActRelu6
	ActLeakyRelu // x < 0 ? alpha·x : x
	ActSigmoid
	ActElu
	ActTanh
	ActPrelu // x < 0 ? alpha[c]·x : x, per channel (Epilogue.PreluAlpha)
)

func activationByName(s string) (Activation, bool) {
	switch s {
	case "Relu":
		return ActRelu, true
	case "Relu6":
		return ActRelu6, true
	case "LeakyRelu":
		return ActLeakyRelu, true
	case "Sigmoid":
		return ActSigmoid, true
	case "Elu":
		return ActElu, true
	case "Tanh":
		return ActTanh, true
	case "Prelu":
		return ActPrelu, true
	}
	return ActNone, false
}

func sigmoid32(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// applyAct applies a (non-Prelu) activation in place.
func applyAct(d []float32, act Activation, alpha float32) {
	switch act {
	case ActRelu:
		for i, v := range d {
			if v < 0 {
				d[i] = 0
			}
		}
	case ActRelu6:
		for i, v := range d {
			d[i] = min(max(v, 0), 6)
		}
	case ActLeakyRelu:
		for i, v := range d {
			if v < 0 {
				d[i] = alpha * v
			}
		}
	case ActSigmoid:
		for i, v := range d {
			d[i] = sigmoid32(v)
		}
	case ActElu:
		for i, v := range d {
			if v < 0 {
				d[i] = float32(math.Expm1(float64(v)))
			}
		}
	case ActTanh:
		for i, v := range d {
			d[i] = float32(math.Tanh(float64(v)))
		}
	}
}

// ---------------------------------------------------------------- unary

type unaryKind uint8

const (
	uRelu unaryKind = iota
	uRelu6
	uLeaky
	uSigmoid
	uTanh
	uElu
	uExp
	uNeg
	uAbs
	uSqrt
	uRsqrt
	uSquare
	uLog
)

type unaryOp struct {
	kind  unaryKind
	alpha float32
}

func compileUnary(k unaryKind) compileFunc {
	return func(c *compileCtx) (opImpl, error) {
		if err := c.wantInputs(1, 1); err != nil {
			return nil, err
		}
		op := &unaryOp{kind: k}
		if k == uLeaky {
			a, err := c.a.float("alpha", 0.2)
			if err != nil {
				return nil, err
			}
			op.alpha = float32(a)
		}
		return op, nil
	}
}

// act maps the op to a fusable activation.
func (u *unaryOp) act() (Activation, bool) {
	switch u.kind {
	case uRelu:
		return ActRelu, true
	case uRelu6:
		return ActRelu6, true
	case uLeaky:
		return ActLeakyRelu, true
	case uSigmoid:
		return ActSigmoid, true
	case uElu:
		return ActElu, true
	case uTanh:
		return ActTanh, true
	}
	return ActNone, false
}

func (u *unaryOp) run(e *exec, in []*value) ([]*value, error) {
	x := in[0]
	out := e.allocLike(x, 0, x.dtype)
	xd, od := x.data(), out.data()
	parallelFor(len(xd), grainElems, func(lo, hi int) {
		u.apply(od[lo:hi], xd[lo:hi])
	})
	return []*value{out}, nil
}

func (u *unaryOp) apply(od, xd []float32) {
	od = od[:len(xd)]
	if a, ok := u.act(); ok {
		copy(od, xd)
		applyAct(od, a, u.alpha)
		return
	}
	for i, v := range xd {
		f := float64(v)
		switch u.kind {
		case uExp:
			f = math.Exp(f)
		case uNeg:
			f = -f
		case uAbs:
			f = math.Abs(f)
		case uSqrt:
			f = math.Sqrt(f)
		case uRsqrt:
			f = 1 / math.Sqrt(f)
		case uSquare:
			f = f * f
		case uLog:
			f = math.Log(f)
		}
		od[i] = float32(f)
	}
}

// ---------------------------------------------------------------- binary

type binKind uint8

const (
	bAdd binKind = iota
	bSub
	bMul
	bDiv
	bMax
	bMin
	bSqDiff
	bPow
)

type binaryOp struct{ kind binKind }

func compileBinary(k binKind) compileFunc {
	return func(c *compileCtx) (opImpl, error) {
		if err := c.wantInputs(2, 2); err != nil {
			return nil, err
		}
		if c.n.op == "BiasAdd" {
			if f, _ := c.a.str("data_format", "NHWC"); f != "NHWC" && f != "" {
				return nil, fmt.Errorf("BiasAdd data_format %q not supported", f)
			}
		}
		return &binaryOp{kind: k}, nil
	}
}

func (b *binaryOp) f(x, y float32) float32 {
	switch b.kind {
	case bAdd:
		return x + y
	case bSub:
		return x - y
	case bMul:
		return x * y
	case bDiv:
		return x / y
	case bMax:
		return max(x, y)
	case bMin:
		return min(x, y)
	case bSqDiff:
		return (x - y) * (x - y)
	case bPow:
		return float32(math.Pow(float64(x), float64(y)))
	}
	return 0
}

// flat computes o[i] = f(x[i], y[i]).
func (b *binaryOp) flat(o, x, y []float32) {
	o, y = o[:len(x)], y[:len(x)]
	switch b.kind {
	case bAdd:
		for i := range x {
			o[i] = x[i] + y[i]
		}
	case bMul:
		for i := range x {
			o[i] = x[i] * y[i]
		}
	case bSub:
		for i := range x {
			o[i] = x[i] - y[i]
		}
	default:
		for i := range x {
			o[i] = b.f(x[i], y[i])
		}
	}
}

// rows computes o[r·c+j] = f(x[r·c+j], v[j]) (or f(v[j], x[..]) when swap).
func (b *binaryOp) rows(o, x, v []float32, swap bool) {
	c := len(v)
	for r := 0; r+c <= len(x); r += c {
		xr, or := x[r:r+c], o[r:r+c]
		switch {
		case b.kind == bAdd:
			for j := range xr {
				or[j] = xr[j] + v[j]
			}
		case b.kind == bMul:
			for j := range xr {
				or[j] = xr[j] * v[j]
			}
		case swap:
			for j := range xr {
				or[j] = b.f(v[j], xr[j])
			}
		default:
			for j := range xr {
				or[j] = b.f(xr[j], v[j])
			}
		}
	}
}

func (b *binaryOp) scalar(o, x []float32, s float32, swap bool) {
	o = o[:len(x)]
	for i, v := range x {
		if swap {
			o[i] = b.f(s, v)
		} else {
			o[i] = b.f(v, s)
		}
	}
}

func (b *binaryOp) run(e *exec, in []*value) ([]*value, error) {
	x, y := in[0], in[1]
	dt := x.dtype
	if sameShape(x.shape, y.shape) {
		if !slices.Equal(x.perm, y.perm) {
			x, y = e.contig(x), e.contig(y)
		}
		oi := 0
		if !e.canReuse(0) && e.canReuse(1) {
			oi = 1
		}
		out := e.allocLike(in[oi], oi, dt)
		out.perm = x.perm
		xd, yd, od := x.data(), y.data(), out.data()
		parallelFor(len(xd), grainElems, func(lo, hi int) { b.flat(od[lo:hi], xd[lo:hi], yd[lo:hi]) })
		return []*value{out}, nil
	}
	// One side broadcasts onto the other without changing its shape.
	for swap := 0; swap < 2; swap++ {
		full, small := x, y
		if swap == 1 {
			full, small = y, x
		}
		if !broadcastsOnto(small.shape, full.shape) {
			continue
		}
		if small.size() == 1 {
			out := e.allocLike(full, swap, dt)
			fd, od := full.data(), out.data()
			s := small.data()[0]
			parallelFor(len(fd), grainElems, func(lo, hi int) { b.scalar(od[lo:hi], fd[lo:hi], s, swap == 1) })
			return []*value{out}, nil
		}
		// vector along one axis that is the physical innermost axis of full
		if ax, ok := vectorAxis(small.shape, full.rank()); ok {
			last := full.rank() - 1
			if full.perm != nil {
				last = full.perm[len(full.perm)-1]
			}
			if ax == last {
				out := e.allocLike(full, swap, dt)
				fd, od := full.data(), out.data()
				v := small.canonicalData()
				c := len(v)
				rowsN := len(fd) / c
				parallelFor(rowsN, grain(grainElems, c), func(lo, hi int) {
					b.rows(od[lo*c:hi*c], fd[lo*c:hi*c], v, swap == 1)
				})
				return []*value{out}, nil
			}
		}
		break
	}
	// General broadcasting on canonical layouts.
	x, y = e.contig(x), e.contig(y)
	oshape, err := broadcastShape(x.shape, y.shape)
	if err != nil {
		return nil, err
	}
	out := e.alloc(oshape, dt)
	broadcastApply(out.data(), oshape, x.data(), x.shape, y.data(), y.shape, b.f)
	return []*value{out}, nil
}

// broadcastsOnto reports whether small broadcasts to exactly full's shape.
func broadcastsOnto(small, full []int) bool {
	if len(small) > len(full) {
		for _, d := range small[:len(small)-len(full)] {
			if d != 1 {
				return false
			}
		}
		small = small[len(small)-len(full):]
	}
	off := len(full) - len(small)
	for i, d := range small {
		if d != 1 && d != full[off+i] {
			return false
		}
	}
	return true
}

// vectorAxis returns the single non-unit axis of s aligned to rank r.
func vectorAxis(s []int, r int) (int, bool) {
	ax := -1
	off := r - len(s)
	for i, d := range s {
		if d != 1 {
			if ax >= 0 {
				return 0, false
			}
			ax = off + i
		}
	}
	return ax, ax >= 0
}

func broadcastShape(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if k := i - (r - len(a)); k >= 0 {
			da = a[k]
		}
		if k := i - (r - len(b)); k >= 0 {
			db = b[k]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("incompatible shapes %v and %v", a, b)
		}
	}
	return out, nil
}

// bstrides returns strides of s broadcast to rank r (0 on broadcast axes).
func bstrides(s []int, oshape []int) []int {
	r := len(oshape)
	st := make([]int, r)
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		k := i + r - len(s)
		if s[i] != 1 {
			st[k] = acc
		}
		acc *= s[i]
	}
	return st
}

func broadcastApply(o []float32, oshape []int, x []float32, xs []int, y []float32, ys []int, f func(a, b float32) float32) {
	r := len(oshape)
	if r == 0 {
		o[0] = f(x[0], y[0])
		return
	}
	sx, sy := bstrides(xs, oshape), bstrides(ys, oshape)
	inner := oshape[r-1]
	outer := len(o) / max(inner, 1)
	parallelFor(outer, grain(grainElems, inner), func(lo, hi int) {
		idx := make([]int, r)
		rem := lo
		for i := r - 2; i >= 0; i-- {
			idx[i] = rem % oshape[i]
			rem /= oshape[i]
		}
		for row := lo; row < hi; row++ {
			bx, by := 0, 0
			for i := 0; i < r-1; i++ {
				bx += idx[i] * sx[i]
				by += idx[i] * sy[i]
			}
			orow := o[row*inner : (row+1)*inner]
			for j := range orow {
				orow[j] = f(x[bx+j*sx[r-1]], y[by+j*sy[r-1]])
			}
			for i := r - 2; i >= 0; i-- {
				idx[i]++
				if idx[i] < oshape[i] {
					break
				}
				idx[i] = 0
			}
		}
	})
}

// ---------------------------------------------------------------- Softmax

type softmaxOp struct{}

func compileSoftmax(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	return softmaxOp{}, nil
}

func (softmaxOp) run(e *exec, in []*value) ([]*value, error) {
	x := e.contig(in[0])
	if x.rank() == 0 {
		return nil, fmt.Errorf("softmax of a scalar")
	}
	out := e.alloc(x.shape, x.dtype)
	c := x.shape[x.rank()-1]
	if c == 0 {
		return []*value{out}, nil
	}
	xd, od := x.data(), out.data()
	for r := 0; r < len(xd); r += c {
		row, orow := xd[r:r+c], od[r:r+c]
		m := row[0]
		for _, v := range row {
			m = max(m, v)
		}
		var s float32
		for j, v := range row {
			ev := float32(math.Exp(float64(v - m)))
			orow[j] = ev
			s += ev
		}
		for j := range orow {
			orow[j] /= s
		}
	}
	return []*value{out}, nil
}

// ---------------------------------------------------------------- reductions

type reduceKind uint8

const (
	rMean reduceKind = iota
	rSum
	rMax
	rMin
)

type reduceOp struct {
	kind     reduceKind
	axes     []int
	keepDims bool
}

func compileReduce(k reduceKind) compileFunc {
	return func(c *compileCtx) (opImpl, error) {
		if err := c.wantInputs(2, 2); err != nil {
			return nil, err
		}
		ax := c.konst(1)
		if ax == nil {
			return nil, fmt.Errorf("non-constant reduction axes are not supported")
		}
		keep, err := c.a.bool("keep_dims", false)
		if err != nil {
			return nil, err
		}
		return &reduceOp{kind: k, axes: ax.ints(), keepDims: keep}, nil
	}
}

func (r *reduceOp) run(e *exec, in []*value) ([]*value, error) {
	x := e.contig(in[0])
	rank := x.rank()
	red := make([]bool, rank)
	for _, a := range r.axes {
		a, err := normAxis(a, rank)
		if err != nil {
			return nil, err
		}
		red[a] = true
	}
	var oshape, keptShape []int
	var permK, permR []int
	for i, d := range x.shape {
		if red[i] {
			permR = append(permR, i)
			if r.keepDims {
				oshape = append(oshape, 1)
			}
		} else {
			permK = append(permK, i)
			keptShape = append(keptShape, d)
			oshape = append(oshape, d)
		}
	}
	outer := shapeSize(keptShape)
	n := x.size() / max(outer, 1)
	out := e.alloc(oshape, x.dtype)
	od := out.data()
	xd := x.data()
	// Contiguous reduced block [outer, n, inner]?
	first, last := -1, -1
	for i := range red {
		if red[i] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	contiguous := first >= 0
	for i := first; contiguous && i <= last; i++ {
		contiguous = red[i]
	}
	if first < 0 { // no axes: copy
		copy(od, xd)
		return []*value{out}, nil
	}
	if !contiguous {
		perm := append(slices.Clone(permK), permR...)
		tmp := make([]float32, len(xd))
		transposeInto(tmp, xd, x.shape, perm)
		xd = tmp
		first, last = len(permK), rank-1
		s := make([]int, 0, rank)
		for _, p := range perm {
			s = append(s, x.shape[p])
		}
		x = &value{shape: s}
	}
	pre := shapeSize(x.shape[:first])
	inner := shapeSize(x.shape[last+1:])
	for p := 0; p < pre; p++ {
		for j := 0; j < inner; j++ {
			var acc float64
			switch r.kind {
			case rMax:
				acc = math.Inf(-1)
			case rMin:
				acc = math.Inf(1)
			}
			for k := 0; k < n; k++ {
				v := float64(xd[(p*n+k)*inner+j])
				switch r.kind {
				case rMean, rSum:
					acc += v
				case rMax:
					acc = max(acc, v)
				case rMin:
					acc = min(acc, v)
				}
			}
			if r.kind == rMean {
				acc /= float64(n)
			}
			od[p*inner+j] = float32(acc)
		}
	}
	return []*value{out}, nil
}

// ---------------------------------------------------------------- ResizeBilinear

type resizeOp struct {
	align, half bool
	size        []int
}

func compileResizeBilinear(c *compileCtx) (opImpl, error) {
	if err := c.wantInputs(2, 2); err != nil {
		return nil, err
	}
	op := &resizeOp{}
	var err error
	if op.align, err = c.a.bool("align_corners", false); err != nil {
		return nil, err
	}
	if op.half, err = c.a.bool("half_pixel_centers", false); err != nil {
		return nil, err
	}
	op.size = c.constInts(1)
	if len(op.size) != 2 || op.size[0] <= 0 || op.size[1] <= 0 {
		return nil, fmt.Errorf("needs a constant positive size [h, w]")
	}
	return op, nil
}

func (r *resizeOp) run(e *exec, in []*value) ([]*value, error) {
	x := e.contig(in[0])
	if x.rank() != 4 {
		return nil, fmt.Errorf("images must be rank 4 NHWC, got %v", x.shape)
	}
	out := e.alloc([]int{x.shape[0], r.size[0], r.size[1], x.shape[3]}, x.dtype)
	ResizeBilinear(out.data(), x.data(), x.shape[0], x.shape[1], x.shape[2], x.shape[3], r.size[0], r.size[1], r.align, r.half)
	return []*value{out}, nil
}

// ResizeBilinear resizes NHWC images src [n,h,w,c] to dst [n,oh,ow,c] with
// tf.image.resizeBilinear semantics (tfjs-backend-cpu 4.22.0).
func ResizeBilinear(dst, src []float32, n, h, w, c, oh, ow int, alignCorners, halfPixel bool) {
	ratio := func(in, out int) float64 {
		if alignCorners && out > 1 {
			return float64(in-1) / float64(out-1)
		}
		return float64(in) / float64(out)
	}
	rh, rw := ratio(h, oh), ratio(w, ow)
	type tap struct {
		lo, hi int
		frac   float32
	}
	taps := func(r float64, in, out int) []tap {
		t := make([]tap, out)
		for i := range t {
			s := r * float64(i)
			if halfPixel {
				s = r*(float64(i)+0.5) - 0.5
			}
			fl := math.Floor(s)
			t[i] = tap{lo: max(0, int(fl)), hi: min(in-1, int(math.Ceil(s))), frac: float32(s - fl)}
		}
		return t
	}
	ty, tx := taps(rh, h, oh), taps(rw, w, ow)
	parallelFor(n*oh, grain(grainElems, 4*ow*c), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			b, y := row/oh, row%oh
			t := ty[y]
			top := src[(b*h+t.lo)*w*c:]
			bot := src[(b*h+t.hi)*w*c:]
			o := dst[row*ow*c : (row+1)*ow*c]
			for x, u := range tx {
				for k := 0; k < c; k++ {
					tl, tr := top[u.lo*c+k], top[u.hi*c+k]
					bl, br := bot[u.lo*c+k], bot[u.hi*c+k]
					tv := tl + (tr-tl)*u.frac
					bv := bl + (br-bl)*u.frac
					o[x*c+k] = tv + (bv-tv)*t.frac
				}
			}
		}
	})
}

// ---------------------------------------------------------------- pooling

type poolOp struct {
	avg    bool
	kh, kw int
	sh, sw int
	pad    padSpec
}

func compilePool(avg bool) compileFunc {
	return func(c *compileCtx) (opImpl, error) {
		if err := c.wantInputs(1, 1); err != nil {
			return nil, err
		}
		ks, err := c.a.ints("ksize", nil)
		if err != nil {
			return nil, err
		}
		st, err := c.a.ints("strides", nil)
		if err != nil {
			return nil, err
		}
		if len(ks) != 4 || len(st) != 4 {
			return nil, fmt.Errorf("ksize and strides must have 4 values")
		}
		if df, _ := c.a.str("data_format", "NHWC"); df != "NHWC" && df != "" {
			return nil, fmt.Errorf("data_format %q not supported", df)
		}
		if ks[0] != 1 || ks[3] != 1 || st[0] != 1 || st[3] != 1 {
			return nil, fmt.Errorf("pooling over batch or channels is not supported")
		}
		pad, err := parsePadding(c.a)
		if err != nil {
			return nil, err
		}
		op := &poolOp{avg: avg, kh: ks[1], kw: ks[2], sh: st[1], sw: st[2], pad: pad}
		if op.kh <= 0 || op.kw <= 0 || op.sh <= 0 || op.sw <= 0 {
			return nil, fmt.Errorf("invalid ksize %v / strides %v", ks, st)
		}
		return op, nil
	}
}

func (p *poolOp) run(e *exec, in []*value) ([]*value, error) {
	x := e.contig(in[0])
	if x.rank() != 4 {
		return nil, fmt.Errorf("input must be rank 4 NHWC, got %v", x.shape)
	}
	n, h, w, c := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	oh, pt, _, err := p.pad.out(h, p.kh, p.sh, 1, 0)
	if err != nil {
		return nil, err
	}
	ow, pl, _, err := p.pad.out(w, p.kw, p.sw, 1, 1)
	if err != nil {
		return nil, err
	}
	out := e.alloc([]int{n, oh, ow, c}, x.dtype)
	xd, od := x.data(), out.data()
	// Fast path for max pools (AVX2): pad with -Inf (padding never wins)
	// so no window leaves the input.
	var tapOff []int
	if !p.avg && c >= 8 && haveAVX2() {
		ph := max((oh-1)*p.sh+p.kh, h+pt)
		pw := max((ow-1)*p.sw+p.kw, w+pl)
		if pt > 0 || pl > 0 || ph > h || pw > w {
			scratch := getScratch(n * ph * pw * c)
			defer putScratch(scratch)
			padND(*scratch, xd, []int{n, h, w, c}, []int{0, 0, pt, ph - h - pt, pl, pw - w - pl, 0, 0}, float32(math.Inf(-1)))
			xd, h, w, pt, pl = *scratch, ph, pw, 0, 0
		}
		for ky := 0; ky < p.kh; ky++ {
			for kx := 0; kx < p.kw; kx++ {
				tapOff = append(tapOff, 4*(ky*w+kx)*c)
			}
		}
	}
	parallelFor(n*oh, grain(grainElems, ow*c*p.kh*p.kw), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			b, oy := row/oh, row%oh
			y0 := oy*p.sh - pt
			c0 := 0
			if tapOff != nil && maxPoolRowAVX2(od[row*ow*c:(row+1)*ow*c], xd[(b*h+y0)*w*c:], tapOff, c, ow, p.sw) {
				c0 = c / 8 * 8
				if c0 == c {
					continue
				}
			}
			for ox := 0; ox < ow; ox++ {
				x0 := ox*p.sw - pl
				o := od[(row*ow+ox)*c+c0 : (row*ow+ox+1)*c]
				cnt := 0
				for ky := max(0, -y0); ky < p.kh && y0+ky < h; ky++ {
					for kx := max(0, -x0); kx < p.kw && x0+kx < w; kx++ {
						src := xd[((b*h+y0+ky)*w+x0+kx)*c+c0:][:len(o)]
						switch {
						case cnt == 0:
							copy(o, src)
						case p.avg:
							for k, v := range src {
								o[k] += v
							}
						default:
							for k, v := range src {
								if v > o[k] {
									o[k] = v
								}
							}
						}
						cnt++
					}
				}
				switch {
				case cnt == 0:
					clear(o)
				case p.avg && cnt > 1:
					inv := 1 / float32(cnt)
					for k := range o {
						o[k] *= inv
					}
				}
			}
		}
	})
	return []*value{out}, nil
}
