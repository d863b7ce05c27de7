package tfjs

import (
	"fmt"
	"strings"
)

// ---------------------------------------------------------------- padding

type padMode uint8

const (
	padValid padMode = iota
	padSame
	padExplicit
)

type padSpec struct {
	mode     padMode
	explicit []int // 8 values: [n0,n1,h0,h1,w0,w1,c0,c1]
}

func parsePadding(a attrs) (padSpec, error) {
	s, err := a.str("padding", "VALID")
	if err != nil {
		return padSpec{}, err
	}
	switch strings.ToUpper(s) {
	case "VALID":
		return padSpec{mode: padValid}, nil
	case "SAME":
		return padSpec{mode: padSame}, nil
	case "EXPLICIT":
		e, err := a.ints("explicit_paddings", nil)
		if err != nil {
			return padSpec{}, err
		}
		if len(e) != 8 {
			return padSpec{}, fmt.Errorf("EXPLICIT padding needs 8 explicit_paddings, got %v", e)
		}
		for _, v := range e {
			if v < 0 {
				return padSpec{}, fmt.Errorf("negative explicit padding %v", e)
			}
		}
		return padSpec{mode: padExplicit, explicit: e}, nil
	}
	return padSpec{}, fmt.Errorf("unsupported padding %q", s)
}

// out returns the output size and the before/after padding of one spatial
// axis (axis 0 = H, 1 = W) with TF's rules.
func (p padSpec) out(in, k, stride, dil, axis int) (out, before, after int, err error) {
	ek := (k-1)*dil + 1
	switch p.mode {
	case padSame:
		out = (in + stride - 1) / stride
		total := max((out-1)*stride+ek-in, 0)
		before = total / 2
		after = total - before
	case padValid:
		if in < ek {
			return 0, 0, 0, fmt.Errorf("input size %d smaller than the kernel extent %d", in, ek)
		}
		out = (in-ek)/stride + 1
	case padExplicit:
		before, after = p.explicit[2+2*axis], p.explicit[3+2*axis]
		if in+before+after < ek {
			return 0, 0, 0, fmt.Errorf("padded input size %d smaller than the kernel extent %d", in+before+after, ek)
		}
		out = (in+before+after-ek)/stride + 1
	}
	return out, before, after, nil
}

// ---------------------------------------------------------------- conv op

type convOp struct {
	depthwise bool
	nchw      bool
	sh, sw    int
	dh, dw    int
	pad       padSpec

	kh, kw, ci, co int // co = ci·mult for depthwise
	mult           int

	filterIdx int       // input index of a non-constant filter (-1 when packed)
	packed    []float32 // Gemm.Pack'ed filter (conv) or raw [kh·kw, ci·mult] (depthwise)
	dwBlocks  []float32 // depthwise, mult 1: weights as [ci/8][kh·kw][8]
	gemm      Gemm

	bias       []float32
	act        Activation
	alpha      float32
	preluAlpha []float32
	resIdx     int // input index of a fused residual (-1 none)
}

func compileConv(depthwise, fused bool) compileFunc {
	return func(c *compileCtx) (opImpl, error) {
		if err := c.wantInputs(2, -1); err != nil {
			return nil, err
		}
		op := &convOp{depthwise: depthwise, filterIdx: -1, resIdx: -1, gemm: c.m.gemm}
		df, err := c.a.str("data_format", "NHWC")
		if err != nil {
			return nil, err
		}
		switch df {
		case "NHWC", "":
		case "NCHW":
			op.nchw = true
		default:
			return nil, fmt.Errorf("data_format %q not supported", df)
		}
		st, err := c.a.ints("strides", []int{1, 1, 1, 1})
		if err != nil {
			return nil, err
		}
		dl, err := c.a.ints("dilations", []int{1, 1, 1, 1})
		if err != nil {
			return nil, err
		}
		if len(st) != 4 || len(dl) != 4 {
			return nil, fmt.Errorf("strides and dilations need 4 values")
		}
		if op.nchw {
			op.sh, op.sw, op.dh, op.dw = st[2], st[3], dl[2], dl[3]
		} else {
			op.sh, op.sw, op.dh, op.dw = st[1], st[2], dl[1], dl[2]
		}
		if op.sh <= 0 || op.sw <= 0 || op.dh <= 0 || op.dw <= 0 {
			return nil, fmt.Errorf("invalid strides %v / dilations %v", st, dl)
		}
		if op.pad, err = parsePadding(c.a); err != nil {
			return nil, err
		}
		if op.pad.mode == padExplicit && op.nchw {
			e := op.pad.explicit
			op.pad.explicit = []int{e[0], e[1], e[4], e[5], e[6], e[7], e[2], e[3]}
		}
		nargs := 0
		if fused {
			ops, err := c.a.strs("fused_ops")
			if err != nil {
				return nil, err
			}
			if nargs, err = c.a.int("num_args", 0); err != nil {
				return nil, err
			}
			la, err := c.a.float("leakyrelu_alpha", 0.2)
			if err != nil {
				return nil, err
			}
			op.alpha = float32(la)
			if len(ops) > 2 {
				return nil, fmt.Errorf("fused_ops %v not supported", ops)
			}
			extra, actName := "", ""
			if len(ops) > 0 {
				extra = ops[0]
			}
			if len(ops) > 1 {
				actName = ops[1]
			}
			if _, isAct := activationByName(extra); isAct && actName == "" {
				extra, actName = "", extra
			}
			switch extra {
			case "", "BiasAdd":
			default:
				return nil, fmt.Errorf("fused op %q not supported", extra)
			}
			if actName != "" {
				a, ok := activationByName(actName)
				if !ok {
					return nil, fmt.Errorf("fused activation %q not supported", actName)
				}
				op.act = a
			}
			want := 0
			if extra == "BiasAdd" {
				want++
			}
			if op.act == ActPrelu {
				want++
			}
			if nargs != want || len(c.n.inputs) != 2+nargs {
				return nil, fmt.Errorf("fused_ops %v need %d args, num_args %d, %d inputs", ops, want, nargs, len(c.n.inputs))
			}
			ai := 2
			if extra == "BiasAdd" {
				b := c.konst(ai)
				if b == nil {
					return nil, fmt.Errorf("non-constant bias is not supported")
				}
				op.bias = b.canonicalData()
				ai++
			}
			if op.act == ActPrelu {
				p := c.konst(ai)
				if p == nil {
					return nil, fmt.Errorf("non-constant prelu alpha is not supported")
				}
				op.preluAlpha = p.canonicalData()
			}
		} else if len(c.n.inputs) != 2 {
			return nil, fmt.Errorf("expects 2 inputs, has %d", len(c.n.inputs))
		}
		f := c.konst(1)
		if f == nil {
			return nil, fmt.Errorf("non-constant filters are not supported")
		}
		if f.rank() != 4 {
			return nil, fmt.Errorf("filter must be rank 4, got %v", f.shape)
		}
		op.kh, op.kw, op.ci = f.shape[0], f.shape[1], f.shape[2]
		if depthwise {
			op.mult = f.shape[3]
			op.co = op.ci * op.mult
			op.packed = f.canonicalData()
			if op.mult == 1 {
				op.dwBlocks = packDepthwise(op.packed, op.kh*op.kw, op.ci)
			}
		} else {
			op.co = f.shape[3]
			op.packed = op.gemm.Pack(f.canonicalData(), op.kh*op.kw*op.ci, op.co)
		}
		if op.kh <= 0 || op.kw <= 0 || op.ci <= 0 || op.co <= 0 {
			return nil, fmt.Errorf("invalid filter shape %v", f.shape)
		}
		if op.bias != nil && len(op.bias) != op.co {
			return nil, fmt.Errorf("bias has %d values for %d output channels", len(op.bias), op.co)
		}
		if op.preluAlpha != nil && len(op.preluAlpha) != op.co {
			if len(op.preluAlpha) == 1 {
				v := op.preluAlpha[0]
				op.preluAlpha = make([]float32, op.co)
				fillF32(op.preluAlpha, v)
			} else {
				return nil, fmt.Errorf("prelu alpha has %d values for %d channels", len(op.preluAlpha), op.co)
			}
		}
		return op, nil
	}
}

func (op *convOp) run(e *exec, in []*value) ([]*value, error) {
	x := in[0]
	if x.rank() != 4 {
		return nil, fmt.Errorf("input must be rank 4, got %v", x.shape)
	}
	if op.nchw {
		x = e.view(x, []int{x.shape[0], x.shape[2], x.shape[3], x.shape[1]}, composePerm(x.perm, []int{0, 2, 3, 1}))
		e.temps = append(e.temps, x)
	}
	x = e.contig(x)
	n, h, w, ci := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	if ci != op.ci {
		return nil, fmt.Errorf("input has %d channels, filter expects %d", ci, op.ci)
	}
	oh, pt, pb, err := op.pad.out(h, op.kh, op.sh, op.dh, 0)
	if err != nil {
		return nil, err
	}
	ow, pl, pr, err := op.pad.out(w, op.kw, op.sw, op.dw, 1)
	if err != nil {
		return nil, err
	}
	oshape := []int{n, oh, ow, op.co}
	ep := &Epilogue{Bias: op.bias, Act: op.act, Alpha: op.alpha, PreluAlpha: op.preluAlpha}

	var out *value
	var lateRes *value // residual that could not be fused (shape mismatch)
	if op.resIdx >= 0 {
		r := in[op.resIdx]
		if op.nchw {
			r = e.view(r, permuteShape(r.shape, []int{0, 2, 3, 1}), composePerm(r.perm, []int{0, 2, 3, 1}))
			e.temps = append(e.temps, r)
		}
		if sameShape(r.shape, oshape) {
			// (The output must not alias the residual: kernels store
			// partial sums before the epilogue reads it.)
			ep.Residual = e.contig(r).data()
		} else {
			lateRes = in[op.resIdx]
		}
	}
	if lateRes != nil && ep.Act != ActNone {
		return nil, fmt.Errorf("fused residual of shape %v does not match conv output %v", lateRes.shape, oshape)
	}
	if out == nil {
		out = e.alloc(oshape, x.dtype)
	}
	if op.depthwise {
		depthwise(out.data(), x.data(), op.packed, op.dwBlocks, n, h, w, ci, op.mult, op.kh, op.kw, op.sh, op.sw, op.dh, op.dw, pt, pb, pl, pr, oh, ow, ep)
	} else {
		convGemm(op.gemm, out.data(), x.data(), op.packed, n, h, w, ci, op.kh, op.kw, op.sh, op.sw, op.dh, op.dw, pt, pl, oh, ow, op.co, ep)
	}
	if op.nchw {
		v := e.view(out, []int{n, op.co, oh, ow}, []int{0, 2, 3, 1})
		e.release(out)
		out = v
	}
	if lateRes != nil {
		add := &binaryOp{kind: bAdd}
		saved := e.reuse
		e.reuse = nil
		res, err := add.run(e, []*value{out, lateRes})
		e.reuse = saved
		e.release(out)
		if err != nil {
			return nil, err
		}
		return res, nil
	}
	return []*value{out}, nil
}

// composePerm returns the layout of Transpose(v, p) for a value stored
// with layout vp (nil = canonical).
func composePerm(vp, p []int) []int {
	pinv := invertPerm(p)
	if vp == nil {
		return pinv
	}
	q := make([]int, len(vp))
	for k, a := range vp {
		q[k] = pinv[a]
	}
	return q
}

func permuteShape(s, p []int) []int {
	out := make([]int, len(p))
	for i, a := range p {
		out[i] = s[a]
	}
	return out
}

// gemmRowBlock returns how many output rows one im2col block holds: a
// multiple of the micro-tile height that keeps the block around 128 KiB.
func gemmRowBlock(k int) int {
	rows := (32768 / max(k, 1)) / gemmMR * gemmMR
	return min(max(rows, gemmMR*2), gemmMR*64)
}

// convGemm computes an NHWC convolution as im2col + GEMM, parallel over
// output rows.
func convGemm(g Gemm, out, x, packed []float32, n, h, w, ci, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, co int, ep *Epilogue) {
	M := n * oh * ow
	K := kh * kw * ci
	direct := kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && oh == h && ow == w
	blk := gemmRowBlock(K)
	g0 := max(gemmMR, grain(grainMACs, K*co))
	parallelRows(M, gemmMR, g0, func(lo, hi int) {
		var scratch *[]float32
		if !direct {
			scratch = getScratch(blk * K)
			defer putScratch(scratch)
		}
		for r0 := lo; r0 < hi; r0 += blk {
			r1 := min(r0+blk, hi)
			var a []float32
			if direct {
				a = x[r0*K : r1*K]
			} else {
				a = (*scratch)[:(r1-r0)*K]
				im2col(a, x, r0, r1, h, w, ci, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow)
			}
			sub := *ep
			if ep.Residual != nil {
				sub.Residual = ep.Residual[r0*co : r1*co]
			}
			g.MatMul(out[r0*co:r1*co], a, packed, r1-r0, K, co, &sub)
		}
	})
}

// im2col writes the patches of output pixels [r0, r1) (flattened n·oh·ow)
// as rows of a (each kh·kw·ci long, zero where the window leaves the input).
func im2col(a, x []float32, r0, r1, h, w, ci, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow int) {
	K := kh * kw * ci
	for m := r0; m < r1; m++ {
		row := a[(m-r0)*K : (m-r0+1)*K]
		b := m / (oh * ow)
		rem := m % (oh * ow)
		oy, ox := rem/ow, rem%ow
		iy0 := oy*sh - pt
		ix0 := ox*sw - pl
		// valid kx range
		kx0, kx1 := 0, kw
		for kx0 < kw && ix0+kx0*dw < 0 {
			kx0++
		}
		for kx1 > kx0 && ix0+(kx1-1)*dw >= w {
			kx1--
		}
		for ky := 0; ky < kh; ky++ {
			seg := row[ky*kw*ci : (ky+1)*kw*ci]
			iy := iy0 + ky*dh
			if iy < 0 || iy >= h || kx0 >= kx1 {
				clear(seg)
				continue
			}
			clear(seg[:kx0*ci])
			clear(seg[kx1*ci:])
			src := x[((b*h+iy)*w)*ci:]
			if dw == 1 {
				s := (ix0 + kx0) * ci
				copy(seg[kx0*ci:kx1*ci], src[s:s+(kx1-kx0)*ci])
			} else {
				for kx := kx0; kx < kx1; kx++ {
					s := (ix0 + kx*dw) * ci
					copy(seg[kx*ci:(kx+1)*ci], src[s:s+ci])
				}
			}
		}
	}
}

// depthwise computes an NHWC depthwise convolution (channel multiplier
// mult) with the epilogue, parallel over output rows.
func depthwise(out, x, f, blocks []float32, n, h, w, c, mult, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, oh, ow int, ep *Epilogue) {
	co := c * mult
	if mult == 1 && blocks != nil && haveAVX2() {
		depthwiseDirect(out, x, f, blocks, n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, ep)
		return
	}
	// Pad the input once so the inner loops never test bounds.
	hp, wp := h+pt+pb, w+pl+pr
	xp := x
	var scratch *[]float32
	if pt+pb+pl+pr > 0 {
		scratch = getScratch(n * hp * wp * c)
		defer putScratch(scratch)
		xp = *scratch
		padND(xp, x, []int{n, h, w, c}, []int{0, 0, pt, pb, pl, pr, 0, 0}, 0)
	}
	var tapOff []int
	if blocks != nil {
		for ky := 0; ky < kh; ky++ {
			for kx := 0; kx < kw; kx++ {
				tapOff = append(tapOff, 4*(ky*dh*wp+kx*dw)*c)
			}
		}
		_ = xp[n*hp*wp*c-1]
	}
	parallelFor(n*oh, grain(grainMACs, ow*co*kh*kw), func(lo, hi int) {
		var acc []float32
		if mult != 1 {
			acc = make([]float32, ow*co)
		}
		for row := lo; row < hi; row++ {
			b, oy := row/oh, row%oh
			o := out[row*ow*co : (row+1)*ow*co]
			if mult == 1 {
				c0 := 0
				if blocks != nil && dwRowsAVX2(o, xp[((b*hp+oy*sh)*wp)*c:], blocks, tapOff, c, ow, sw, ep.Bias) {
					c0 = c / 8 * 8
				}
				if c0 < c {
					dwRow(o, xp, f, b, oy, hp, wp, c, c0, kh, kw, sh, sw, dh, dw, ow, ep.Bias)
				}
			} else {
				clear(acc)
				for ky := 0; ky < kh; ky++ {
					iy := oy*sh + ky*dh
					for kx := 0; kx < kw; kx++ {
						wt := f[(ky*kw+kx)*co : (ky*kw+kx+1)*co]
						for ox := 0; ox < ow; ox++ {
							src := xp[((b*hp+iy)*wp+ox*sw+kx*dw)*c:][:c]
							dst := acc[ox*co : (ox+1)*co]
							for ch, v := range src {
								for m := 0; m < mult; m++ {
									dst[ch*mult+m] += v * wt[ch*mult+m]
								}
							}
						}
					}
				}
				copy(o, acc)
				if ep.Bias != nil {
					for ox := 0; ox < ow; ox++ {
						r := o[ox*co : (ox+1)*co]
						for j := range r {
							r[j] += ep.Bias[j]
						}
					}
				}
			}
			dwEpilogue(o, row, ow, co, ep)
		}
	})
}

// dwEpilogue applies the non-bias part of ep to output row row.
func dwEpilogue(o []float32, row, ow, co int, ep *Epilogue) {
	if ep.Residual == nil && ep.Act == ActNone {
		return
	}
	rest := *ep
	rest.Bias = nil
	if ep.Residual != nil {
		rest.Residual = ep.Residual[row*ow*co : (row+1)*ow*co]
	}
	applyEpilogue(o, ow, co, &rest)
}

// depthwiseDirect is the multiplier-1 depthwise convolution with the AVX2
// row kernel on the unpadded input: pixels whose window lies inside the
// image go through the kernel, border pixels through dwPixel.
func depthwiseDirect(out, x, f, blocks []float32, n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow int, ep *Epilogue) {
	var tapOff []int
	for ky := 0; ky < kh; ky++ {
		for kx := 0; kx < kw; kx++ {
			tapOff = append(tapOff, 4*(ky*dh*w+kx*dw)*c)
		}
	}
	// interior columns [oxa, oxb)
	oxa := (pl + sw - 1) / sw
	oxb := 0
	if lim := w - 1 - (kw-1)*dw + pl; lim >= 0 {
		oxb = min(lim/sw+1, ow)
	}
	c8 := c / 8 * 8
	parallelFor(n*oh, grain(grainMACs, ow*c*kh*kw), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			b, oy := row/oh, row%oh
			o := out[row*ow*c : (row+1)*ow*c]
			iy0 := oy*sh - pt
			if iy0 >= 0 && iy0+(kh-1)*dh < h && oxb > oxa {
				ix0 := oxa*sw - pl
				xrow := x[((b*h+iy0)*w+ix0)*c:]
				_ = xrow[tapOff[len(tapOff)-1]/4+((oxb-oxa-1)*sw)*c+c-1]
				dwRowsAVX2(o[oxa*c:], xrow, blocks, tapOff, c, oxb-oxa, sw, ep.Bias)
				for ox := 0; ox < ow; ox++ {
					if ox < oxa || ox >= oxb {
						dwPixel(o[ox*c:(ox+1)*c], x, f, b, iy0, ox*sw-pl, h, w, c, 0, kh, kw, dh, dw, ep.Bias)
					} else if c8 < c {
						dwPixel(o[ox*c+c8:(ox+1)*c], x, f, b, iy0, ox*sw-pl, h, w, c, c8, kh, kw, dh, dw, ep.Bias)
					}
				}
			} else {
				for ox := 0; ox < ow; ox++ {
					dwPixel(o[ox*c:(ox+1)*c], x, f, b, iy0, ox*sw-pl, h, w, c, 0, kh, kw, dh, dw, ep.Bias)
				}
			}
			dwEpilogue(o, row, ow, c, ep)
		}
	})
}

// dwPixel computes channels [c0, c) of one depthwise output pixel whose
// window starts at (iy0, ix0) (possibly outside the image), bias included.
func dwPixel(d, x, f []float32, b, iy0, ix0, h, w, c, c0, kh, kw, dh, dw int, bias []float32) {
	if bias != nil {
		copy(d, bias[c0:])
	} else {
		clear(d)
	}
	for ky := 0; ky < kh; ky++ {
		iy := iy0 + ky*dh
		if iy < 0 || iy >= h {
			continue
		}
		for kx := 0; kx < kw; kx++ {
			ix := ix0 + kx*dw
			if ix < 0 || ix >= w {
				continue
			}
			src := x[((b*h+iy)*w+ix)*c+c0:][:len(d)]
			wt := f[(ky*kw+kx)*c+c0:][:len(d)]
			for ch := range d {
				d[ch] += src[ch] * wt[ch]
			}
		}
	}
}

// packDepthwise reorders multiplier-1 depthwise weights [taps][c] into
// blocks of 8 channels [c/8][taps][8] for the assembly kernel.
func packDepthwise(f []float32, taps, c int) []float32 {
	nb := c / 8
	if nb == 0 {
		return nil
	}
	out := make([]float32, nb*taps*8)
	for b := 0; b < nb; b++ {
		for t := 0; t < taps; t++ {
			copy(out[(b*taps+t)*8:(b*taps+t+1)*8], f[t*c+b*8:t*c+b*8+8])
		}
	}
	return out
}

// dwRow computes channels [c0, c) of one output row of a multiplier-1
// depthwise convolution over the padded input xp (no bounds to test), bias
// included.
func dwRow(o, xp, f []float32, b, oy, hp, wp, c, c0, kh, kw, sh, sw, dh, dw, ow int, bias []float32) {
	for ox := 0; ox < ow; ox++ {
		d := o[ox*c+c0 : (ox+1)*c]
		if bias != nil {
			copy(d, bias[c0:])
		} else {
			clear(d)
		}
		for ky := 0; ky < kh; ky++ {
			base := ((b*hp+oy*sh+ky*dh)*wp+ox*sw)*c + c0
			for kx := 0; kx < kw; kx++ {
				src := xp[base+kx*dw*c : base+kx*dw*c+len(d)]
				wt := f[(ky*kw+kx)*c+c0 : (ky*kw+kx+1)*c]
				for ch := range d {
					d[ch] += src[ch] * wt[ch]
				}
			}
		}
	}
}

// ---------------------------------------------------------------- MatMul

type matMulOp struct {
	ta, tb     bool
	packed     []float32
	k, n       int
	gemm       Gemm
	bias       []float32
	act        Activation
	alpha      float32
	preluAlpha []float32
}

func compileMatMul(fused bool) compileFunc {
	return func(c *compileCtx) (opImpl, error) {
		if err := c.wantInputs(2, -1); err != nil {
			return nil, err
		}
		op := &matMulOp{gemm: c.m.gemm}
		var err error
		if op.ta, err = c.a.bool("transpose_a", false); err != nil {
			return nil, err
		}
		if op.tb, err = c.a.bool("transpose_b", false); err != nil {
			return nil, err
		}
		b := c.konst(1)
		if b == nil || b.rank() != 2 {
			return nil, fmt.Errorf("only a constant 2-D right operand is supported")
		}
		bd := b.canonicalData()
		op.k, op.n = b.shape[0], b.shape[1]
		if op.tb {
			op.k, op.n = op.n, op.k
			t := make([]float32, len(bd))
			transposeInto(t, bd, b.shape, []int{1, 0})
			bd = t
		}
		op.packed = op.gemm.Pack(bd, op.k, op.n)
		if fused {
			ops, err := c.a.strs("fused_ops")
			if err != nil {
				return nil, err
			}
			ai := 2
			for i, o := range ops {
				if i == 0 && o == "BiasAdd" {
					bv := c.konst(ai)
					if bv == nil || bv.size() != op.n {
						return nil, fmt.Errorf("bias must be a constant of %d values", op.n)
					}
					op.bias = bv.canonicalData()
					ai++
					continue
				}
				a, ok := activationByName(o)
				if !ok {
					return nil, fmt.Errorf("fused op %q not supported", o)
				}
				op.act = a
				if a == ActPrelu {
					p := c.konst(ai)
					if p == nil || p.size() != op.n {
						return nil, fmt.Errorf("prelu alpha must be a constant of %d values", op.n)
					}
					op.preluAlpha = p.canonicalData()
				}
			}
			la, _ := c.a.float("leakyrelu_alpha", 0.2)
			op.alpha = float32(la)
		} else if len(c.n.inputs) != 2 {
			return nil, fmt.Errorf("expects 2 inputs")
		}
		return op, nil
	}
}

func (op *matMulOp) run(e *exec, in []*value) ([]*value, error) {
	a := in[0]
	if a.rank() != 2 {
		return nil, fmt.Errorf("left operand must be 2-D, got %v", a.shape)
	}
	if op.ta {
		a = e.view(a, []int{a.shape[1], a.shape[0]}, composePerm(a.perm, []int{1, 0}))
		e.temps = append(e.temps, a)
	}
	a = e.contig(a)
	m, k := a.shape[0], a.shape[1]
	if k != op.k {
		return nil, fmt.Errorf("inner dimensions %d and %d differ", k, op.k)
	}
	out := e.alloc([]int{m, op.n}, a.dtype)
	ep := &Epilogue{Bias: op.bias, Act: op.act, Alpha: op.alpha, PreluAlpha: op.preluAlpha}
	od, ad := out.data(), a.data()
	parallelRows(m, gemmMR, max(gemmMR, grain(grainMACs, k*op.n)), func(lo, hi int) {
		op.gemm.MatMul(od[lo*op.n:hi*op.n], ad[lo*k:hi*k], op.packed, hi-lo, k, op.n, ep)
	})
	return []*value{out}, nil
}
