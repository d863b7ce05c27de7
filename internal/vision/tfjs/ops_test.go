package tfjs

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Reference implementations (float64, straight from the op definitions in
// vision.md §2) and graph-level tests of every op.

func tfPad(mode string, in, k, s, d int, explicit [2]int) (out, before int) {
	ek := (k-1)*d + 1
	switch mode {
	case "SAME":
		out = (in + s - 1) / s
		total := max((out-1)*s+ek-in, 0)
		return out, total / 2
	case "VALID":
		return (in-ek)/s + 1, 0
	}
	return (in+explicit[0]+explicit[1]-ek)/s + 1, explicit[0]
}

// refConv computes an NHWC conv (or depthwise with multiplier mult).
func refConv(x []float32, n, h, w, ci int, f []float32, kh, kw, co int, sh, sw, dh, dw, pt, pl, oh, ow int, depthwise bool, mult int) []float32 {
	out := make([]float32, n*oh*ow*co)
	for b := 0; b < n; b++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for c := 0; c < co; c++ {
					var s float64
					for ky := 0; ky < kh; ky++ {
						iy := oy*sh - pt + ky*dh
						if iy < 0 || iy >= h {
							continue
						}
						for kx := 0; kx < kw; kx++ {
							ix := ox*sw - pl + kx*dw
							if ix < 0 || ix >= w {
								continue
							}
							if depthwise {
								ic, m := c/mult, c%mult
								s += float64(x[((b*h+iy)*w+ix)*ci+ic]) * float64(f[((ky*kw+kx)*ci+ic)*mult+m])
							} else {
								for ic := 0; ic < ci; ic++ {
									s += float64(x[((b*h+iy)*w+ix)*ci+ic]) * float64(f[((ky*kw+kx)*ci+ic)*co+c])
								}
							}
						}
					}
					out[((b*oh+oy)*ow+ox)*co+c] = float32(s)
				}
			}
		}
	}
	return out
}

func refAct(v float64, act string, alpha float64) float64 {
	switch act {
	case "Relu":
		return math.Max(v, 0)
	case "Relu6":
		return math.Min(math.Max(v, 0), 6)
	case "LeakyRelu":
		if v < 0 {
			return alpha * v
		}
	case "Sigmoid":
		return 1 / (1 + math.Exp(-v))
	case "Elu":
		if v < 0 {
			return math.Expm1(v)
		}
	}
	return v
}

type convCase struct {
	n, h, w, ci, co, kh, kw, sh, sw, dh, dw int
	pad                                     string
	explicit                                [4]int
	act                                     string
	depthwise                               bool
	mult                                    int
	bias                                    bool
}

func (c convCase) String() string {
	kind := "conv"
	if c.depthwise {
		kind = fmt.Sprintf("dw×%d", max(c.mult, 1))
	}
	return fmt.Sprintf("%s_%dx%dx%dx%d_k%dx%d_s%d%d_d%d%d_%s_%s_b%v", kind, c.n, c.h, c.w, c.ci, c.kh, c.kw, c.sh, c.sw, c.dh, c.dw, c.pad, c.act, c.bias)
}

func runConvCase(t *testing.T, r *rand.Rand, c convCase) {
	if c.mult == 0 {
		c.mult = 1
	}
	co := c.co
	fshape := []int{c.kh, c.kw, c.ci, c.co}
	if c.depthwise {
		co = c.ci * c.mult
		fshape = []int{c.kh, c.kw, c.ci, c.mult}
	}
	x := randData(r, c.n*c.h*c.w*c.ci)
	f := randData(r, shapeSize(fshape))
	bias := randData(r, co)
	g := &graphBuilder{}
	g.placeholder("x", -1, c.h, c.w, c.ci)
	g.konst("f", fshape, f)
	attr := map[string]any{
		"strides":   aInts(1, c.sh, c.sw, 1),
		"dilations": aInts(1, c.dh, c.dw, 1),
		"padding":   aStr(c.pad),
	}
	if c.pad == "EXPLICIT" {
		e := c.explicit
		attr["explicit_paddings"] = aInts(0, 0, e[0], e[1], e[2], e[3], 0, 0)
	}
	inputs := []string{"x", "f"}
	op := "Conv2D"
	if c.depthwise {
		op = "DepthwiseConv2dNative"
	}
	if c.bias || (c.act != "" && !c.depthwise) {
		if c.depthwise {
			op = "FusedDepthwiseConv2dNative"
		} else {
			op = "_FusedConv2D"
		}
		ops := []string{}
		if c.bias {
			g.konst("b", []int{co}, bias)
			inputs = append(inputs, "b")
			ops = append(ops, "BiasAdd")
		}
		if c.act != "" {
			ops = append(ops, c.act)
		}
		attr["fused_ops"] = aStrs(ops...)
		attr["num_args"] = aInt(len(inputs) - 2)
		attr["leakyrelu_alpha"] = aFloat(0.1)
	}
	g.op("y", op, inputs, attr)
	oh, pt := tfPad(c.pad, c.h, c.kh, c.sh, c.dh, [2]int{c.explicit[0], c.explicit[1]})
	ow, pl := tfPad(c.pad, c.w, c.kw, c.sw, c.dw, [2]int{c.explicit[2], c.explicit[3]})
	want := refConv(x, c.n, c.h, c.w, c.ci, f, c.kh, c.kw, co, c.sh, c.sw, c.dh, c.dw, pt, pl, oh, ow, c.depthwise, c.mult)
	for i := range want {
		v := float64(want[i])
		if c.bias {
			v += float64(bias[i%co])
		}
		want[i] = float32(refAct(v, c.act, 0.1))
	}
	for _, gm := range Gemms() {
		prev := SetGemm(gm)
		m := g.load(t)
		SetGemm(prev)
		res, err := m.Run(context.Background(), map[string]*Tensor{"x": NewTensor([]int{c.n, c.h, c.w, c.ci}, x)})
		if err != nil {
			t.Fatalf("%s: %v", gm.Name(), err)
		}
		y := res["y"]
		if !sameShape(y.Shape, []int{c.n, oh, ow, co}) {
			t.Fatalf("%s: shape %v, want %v", gm.Name(), y.Shape, []int{c.n, oh, ow, co})
		}
		assertClose(t, gm.Name(), y.Data, want, 1e-4)
	}
}

func TestConv(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []convCase{
		{n: 1, h: 9, w: 11, ci: 3, co: 24, kh: 5, kw: 5, sh: 2, sw: 2, dh: 1, dw: 1, pad: "SAME", act: "Relu", bias: true},
		{n: 2, h: 8, w: 8, ci: 24, co: 24, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, pad: "VALID", bias: true},
		{n: 1, h: 7, w: 5, ci: 13, co: 37, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pad: "VALID", act: "LeakyRelu", bias: true},
		{n: 1, h: 10, w: 9, ci: 8, co: 7, kh: 3, kw: 3, sh: 2, sw: 1, dh: 2, dw: 2, pad: "SAME", act: "Relu6", bias: true},
		{n: 1, h: 6, w: 6, ci: 4, co: 17, kh: 3, kw: 2, sh: 1, sw: 2, dh: 1, dw: 1, pad: "EXPLICIT", explicit: [4]int{1, 2, 0, 3}, act: "Sigmoid"},
		{n: 3, h: 5, w: 5, ci: 5, co: 16, kh: 2, kw: 2, sh: 1, sw: 1, dh: 1, dw: 1, pad: "SAME", act: "Elu", bias: true},
		{n: 1, h: 4, w: 4, ci: 300, co: 9, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pad: "SAME", bias: true}, // K > gemmKC
		{n: 1, h: 13, w: 13, ci: 8, co: 128, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, pad: "VALID", act: "Relu"},
		// depthwise
		{n: 1, h: 9, w: 9, ci: 24, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pad: "SAME", depthwise: true},
		{n: 2, h: 8, w: 7, ci: 13, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pad: "SAME", depthwise: true, bias: true, act: "Relu"},
		{n: 1, h: 9, w: 9, ci: 16, kh: 5, kw: 5, sh: 1, sw: 2, dh: 1, dw: 1, pad: "VALID", depthwise: true},
		{n: 1, h: 10, w: 10, ci: 8, kh: 3, kw: 3, sh: 1, sw: 1, dh: 2, dw: 2, pad: "SAME", depthwise: true},
		{n: 1, h: 6, w: 6, ci: 3, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pad: "SAME", depthwise: true, mult: 2},
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) { runConvCase(t, r, c) })
	}
}

func TestGemms(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][3]int{{1, 1, 1}, {5, 3, 7}, {6, 24, 24}, {13, 27, 32}, {37, 400, 20}, {64, 64, 124}, {7, 800, 9}, {12, 16, 8}} {
		m, k, n := sz[0], sz[1], sz[2]
		a, b := randData(r, m*k), randData(r, k*n)
		bias, res, pa := randData(r, n), randData(r, m*n), randData(r, n)
		for _, act := range []Activation{ActNone, ActRelu, ActRelu6, ActLeakyRelu, ActSigmoid, ActPrelu} {
			ep := &Epilogue{Bias: bias, Residual: res, Act: act, Alpha: 0.3, PreluAlpha: pa}
			want := make([]float32, m*n)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					s := float64(bias[j]) + float64(res[i*n+j])
					for q := 0; q < k; q++ {
						s += float64(a[i*k+q]) * float64(b[q*n+j])
					}
					switch act {
					case ActRelu:
						s = math.Max(s, 0)
					case ActRelu6:
						s = math.Min(math.Max(s, 0), 6)
					case ActLeakyRelu:
						if s < 0 {
							s *= 0.3
						}
					case ActSigmoid:
						s = 1 / (1 + math.Exp(-s))
					case ActPrelu:
						if s < 0 {
							s *= float64(pa[j])
						}
					}
					want[i*n+j] = float32(s)
				}
			}
			for _, g := range Gemms() {
				c := make([]float32, m*n)
				g.MatMul(c, a, g.Pack(b, k, n), m, k, n, ep)
				assertClose(t, fmt.Sprintf("%s %v act %d", g.Name(), sz, act), c, want, 1e-4)
			}
		}
	}
}

// runGraph loads g, feeds x and returns the named outputs.
func runGraph(t *testing.T, g *graphBuilder, inputs map[string]*Tensor, outs ...string) map[string]*Tensor {
	t.Helper()
	m := g.load(t)
	res, err := m.Run(context.Background(), inputs, outs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// refTranspose is a naive numpy.transpose.
func refTranspose(x []float32, shape, perm []int) ([]float32, []int) {
	r := len(shape)
	os := make([]int, r)
	for i, p := range perm {
		os[i] = shape[p]
	}
	out := make([]float32, len(x))
	idx := make([]int, r)
	for o := range out {
		rem := o
		for i := r - 1; i >= 0; i-- {
			idx[i] = rem % os[i]
			rem /= os[i]
		}
		s := 0
		for a := 0; a < r; a++ {
			// src index along axis a is idx[i] with perm[i] == a
			for i, p := range perm {
				if p == a {
					s = s*shape[a] + idx[i]
				}
			}
		}
		out[o] = x[s]
	}
	return out, os
}

func TestTransposeKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	shapes := [][]int{{2, 3, 4, 5}, {1, 32, 33, 7}, {3, 1, 5, 2}, {4, 6}, {2, 3, 4, 5, 2}}
	for _, s := range shapes {
		x := randData(r, shapeSize(s))
		perms := permutations(len(s))
		for _, p := range perms {
			want, _ := refTranspose(x, s, p)
			got := make([]float32, len(x))
			transposeInto(got, x, s, p)
			if !slices.Equal(got, want) {
				t.Fatalf("transpose %v by %v wrong", s, p)
			}
		}
	}
}

func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// TestLazyLayouts runs chains of ops on lazily transposed values and checks
// them against the same chain computed with explicit transposes.
func TestLazyLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := randData(r, 1*4*5*6) // NCHW [1,4,5,6]
	g := &graphBuilder{}
	g.placeholder("x", 1, 4, 5, 6)
	g.ints("toNHWC", []int{4}, 0, 2, 3, 1)
	g.ints("toNCHW", []int{4}, 0, 3, 1, 2)
	g.ints("pads", []int{4, 2}, 0, 0, 0, 0, 1, 2, 2, 1)
	g.ints("axis1", []int{}, 1)
	g.ints("sizes", []int{2}, 3, -1)
	g.ints("shape3", []int{3}, 1, 13, -1)
	g.ints("p021", []int{3}, 0, 2, 1)
	g.konst("cb", []int{8, 1, 1}, randData(r, 8))
	g.konst("f", []int{1, 1, 4, 8}, randData(r, 32))
	// NCHW -> NHWC (lazy) -> conv 1x1 -> back to NCHW (lazy)
	g.op("t1", "Transpose", []string{"x", "toNHWC"}, nil)
	g.op("conv", "Conv2D", []string{"t1", "f"}, map[string]any{"strides": aInts(1, 1, 1, 1), "padding": aStr("VALID")})
	g.op("t2", "Transpose", []string{"conv", "toNCHW"}, nil)
	g.op("biased", "Add", []string{"t2", "cb"}, nil) // [8,1,1] bias on NCHW
	g.op("act", "LeakyRelu", []string{"biased"}, map[string]any{"alpha": aFloat(0.1)})
	g.op("pad", "Pad", []string{"act", "pads"}, nil)
	g.op("cat", "ConcatV2", []string{"pad", "pad", "axis1"}, map[string]any{"N": aInt(2)})
	g.op("split", "SplitV", []string{"cat", "sizes", "axis1"}, map[string]any{"num_split": aInt(2)})
	g.op("sig", "Sigmoid", []string{"split:1"}, nil)
	g.op("rs", "Reshape", []string{"sig", "shape3"}, nil)
	g.op("out", "Transpose", []string{"rs", "p021"}, nil)
	g.op("out0", "Identity", []string{"split"}, nil)

	res := runGraph(t, g, map[string]*Tensor{"x": NewTensor([]int{1, 4, 5, 6}, x)}, "out", "out0", "act", "conv")

	// Reference, all canonical.
	ws := g.specs // weights in order: toNHWC,toNCHW,pads,axis1,sizes,shape3,p021,cb,f
	_ = ws
	m := g.load(t)
	cb := m.nodes[m.byName["cb"]].konst[0].data()
	f := m.nodes[m.byName["f"]].konst[0].data()
	xt, _ := refTranspose(x, []int{1, 4, 5, 6}, []int{0, 2, 3, 1})
	conv := refConv(xt, 1, 5, 6, 4, f, 1, 1, 8, 1, 1, 1, 1, 0, 0, 5, 6, false, 1)
	assertClose(t, "conv", res["conv"].Data, conv, 1e-5)
	ct, _ := refTranspose(conv, []int{1, 5, 6, 8}, []int{0, 3, 1, 2}) // [1,8,5,6]
	act := make([]float32, len(ct))
	for i, v := range ct {
		v += cb[i/30]
		if v < 0 {
			v *= 0.1
		}
		act[i] = v
	}
	assertClose(t, "act", res["act"].Data, act, 1e-5)
	// pad H by (1,2), W by (2,1): [1,8,8,9]
	pad := make([]float32, 8*8*9)
	for c := 0; c < 8; c++ {
		for y := 0; y < 5; y++ {
			for xx := 0; xx < 6; xx++ {
				pad[(c*8+y+1)*9+xx+2] = act[(c*5+y)*6+xx]
			}
		}
	}
	cat := append(slices.Clone(pad), pad...) // [1,16,8,9]
	s0 := cat[:3*72]
	s1 := cat[3*72:]
	assertClose(t, "split0", res["out0"].Data, s0, 1e-5)
	if !sameShape(res["out0"].Shape, []int{1, 3, 8, 9}) {
		t.Fatalf("split0 shape %v", res["out0"].Shape)
	}
	sig := make([]float32, len(s1))
	for i, v := range s1 {
		sig[i] = sigmoid32(v)
	}
	want, _ := refTranspose(sig, []int{1, 13, 72}, []int{0, 2, 1})
	if !sameShape(res["out"].Shape, []int{1, 72, 13}) {
		t.Fatalf("out shape %v", res["out"].Shape)
	}
	assertClose(t, "out", res["out"].Data, want, 1e-6)
}

func TestReshapePerm(t *testing.T) {
	// [1,80,52,52] stored NHWC -> [1,80,2704] must stay copy-free.
	q, ok := reshapePerm([]int{1, 80, 52, 52}, []int{0, 2, 3, 1}, []int{1, 80, 2704})
	if !ok || len(q) != 3 {
		t.Fatalf("reshapePerm: %v %v", q, ok)
	}
	ps := permShape([]int{1, 80, 2704}, q)
	if ps[len(ps)-1] != 80 || shapeSize(ps) != 80*2704 {
		t.Fatalf("physical shape %v", ps)
	}
	// merging axes that are not adjacent physically must fail
	if _, ok := reshapePerm([]int{2, 3, 4}, []int{1, 0, 2}, []int{6, 4}); ok {
		t.Fatal("expected failure")
	}
}

func TestElementwiseAndBroadcast(t *testing.T) {
	g := &graphBuilder{}
	g.placeholder("a", 2, 3)
	g.placeholder("b", 3)
	g.placeholder("c", 2, 1)
	g.konst("s", []int{}, []float32{2})
	g.op("add", "AddV2", []string{"a", "b"}, nil)
	g.op("sub", "Sub", []string{"b", "a"}, nil)
	g.op("mul", "Mul", []string{"a", "c"}, nil)
	g.op("div", "RealDiv", []string{"a", "s"}, nil)
	g.op("max", "Maximum", []string{"c", "b"}, nil)
	g.op("relu6", "Relu6", []string{"mul"}, nil)
	g.op("sm", "Softmax", []string{"a"}, nil)
	g.ints("ax", []int{1}, 1)
	g.op("mean", "Mean", []string{"a", "ax"}, map[string]any{"keep_dims": aBool(true)})
	g.op("sum", "Sum", []string{"a", "ax"}, nil)
	a := []float32{1, -2, 3, 4, 5, -6}
	b := []float32{10, 20, 30}
	c := []float32{3, -1}
	res := runGraph(t, g, map[string]*Tensor{
		"a": NewTensor([]int{2, 3}, a), "b": NewTensor([]int{3}, b), "c": NewTensor([]int{2, 1}, c),
	}, "add", "sub", "mul", "div", "max", "relu6", "sm", "mean", "sum")
	check := func(name string, shape []int, want ...float32) {
		t.Helper()
		got := res[name]
		if !sameShape(got.Shape, shape) {
			t.Fatalf("%s: shape %v, want %v", name, got.Shape, shape)
		}
		assertClose(t, name, got.Data, want, 1e-6)
	}
	check("add", []int{2, 3}, 11, 18, 33, 14, 25, 24)
	check("sub", []int{2, 3}, 9, 22, 27, 6, 15, 36)
	check("mul", []int{2, 3}, 3, -6, 9, -4, -5, 6)
	check("div", []int{2, 3}, 0.5, -1, 1.5, 2, 2.5, -3)
	check("max", []int{2, 3}, 10, 20, 30, 10, 20, 30)
	check("relu6", []int{2, 3}, 3, 0, 6, 0, 0, 6)
	e := func(v ...float64) []float32 {
		s := 0.0
		for _, x := range v {
			s += math.Exp(x)
		}
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(math.Exp(x) / s)
		}
		return out
	}
	check("sm", []int{2, 3}, append(e(1, -2, 3), e(4, 5, -6)...)...)
	check("mean", []int{2, 1}, 2.0/3, 1)
	check("sum", []int{2}, 2, 3)
}

func TestPoolResize(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := randData(r, 1*5*7*3)
	g := &graphBuilder{}
	g.placeholder("x", 1, 5, 7, 3)
	g.op("mp", "MaxPool", []string{"x"}, map[string]any{"ksize": aInts(1, 3, 3, 1), "strides": aInts(1, 2, 2, 1), "padding": aStr("SAME")})
	g.op("ap", "AvgPool", []string{"x"}, map[string]any{"ksize": aInts(1, 2, 2, 1), "strides": aInts(1, 2, 2, 1), "padding": aStr("SAME")})
	g.ints("size", []int{2}, 9, 4)
	g.op("rb", "ResizeBilinear", []string{"x", "size"}, map[string]any{"half_pixel_centers": aBool(true)})
	g.op("rba", "ResizeBilinear", []string{"x", "size"}, map[string]any{"align_corners": aBool(true)})
	res := runGraph(t, g, map[string]*Tensor{"x": NewTensor([]int{1, 5, 7, 3}, x)}, "mp", "ap", "rb", "rba")
	at := func(y, xx, c int) float32 { return x[(y*7+xx)*3+c] }
	// MaxPool 3x3/2 SAME on 5x7: out 3x4, pad top (3-1)*2+3-5=2 → 1, left (4-1)*2+3-7=2 → 1
	mp := make([]float32, 0, 3*4*3)
	for oy := 0; oy < 3; oy++ {
		for ox := 0; ox < 4; ox++ {
			for c := 0; c < 3; c++ {
				m := float32(math.Inf(-1))
				for ky := 0; ky < 3; ky++ {
					for kx := 0; kx < 3; kx++ {
						y, xx := oy*2-1+ky, ox*2-1+kx
						if y >= 0 && y < 5 && xx >= 0 && xx < 7 {
							m = max(m, at(y, xx, c))
						}
					}
				}
				mp = append(mp, m)
			}
		}
	}
	assertClose(t, "maxpool", res["mp"].Data, mp, 0)
	// AvgPool 2x2/2 SAME: out 3x4, pad 0 before; count only valid cells
	var ap []float32
	for oy := 0; oy < 3; oy++ {
		for ox := 0; ox < 4; ox++ {
			for c := 0; c < 3; c++ {
				s, n := float32(0), 0
				for ky := 0; ky < 2; ky++ {
					for kx := 0; kx < 2; kx++ {
						y, xx := oy*2+ky, ox*2+kx
						if y < 5 && xx < 7 {
							s += at(y, xx, c)
							n++
						}
					}
				}
				ap = append(ap, s/float32(n))
			}
		}
	}
	assertClose(t, "avgpool", res["ap"].Data, ap, 1e-6)
	// ResizeBilinear reference straight from tfjs-backend-cpu.
	ref := func(align, half bool) []float32 {
		var out []float32
		rh := 5.0 / 9
		rw := 7.0 / 4
		if align {
			rh, rw = 4.0/8, 6.0/3
		}
		for y := 0; y < 9; y++ {
			sy := rh * float64(y)
			if half {
				sy = rh*(float64(y)+0.5) - 0.5
			}
			y0, y1, fy := max(0, int(math.Floor(sy))), min(4, int(math.Ceil(sy))), sy-math.Floor(sy)
			for xx := 0; xx < 4; xx++ {
				sx := rw * float64(xx)
				if half {
					sx = rw*(float64(xx)+0.5) - 0.5
				}
				x0, x1, fx := max(0, int(math.Floor(sx))), min(6, int(math.Ceil(sx))), sx-math.Floor(sx)
				for c := 0; c < 3; c++ {
					top := float64(at(y0, x0, c)) + (float64(at(y0, x1, c))-float64(at(y0, x0, c)))*fx
					bot := float64(at(y1, x0, c)) + (float64(at(y1, x1, c))-float64(at(y1, x0, c)))*fx
					out = append(out, float32(top+(bot-top)*fy))
				}
			}
		}
		return out
	}
	assertClose(t, "resize half", res["rb"].Data, ref(false, true), 1e-5)
	assertClose(t, "resize align", res["rba"].Data, ref(true, false), 1e-5)
}

func TestConstantFoldingAndSparseToDense(t *testing.T) {
	g := &graphBuilder{}
	g.placeholder("x", 2, 6)
	g.ints("idx", []int{0, 1})
	g.ints("oshape", []int{1}, 3)
	g.ints("vals", []int{0})
	g.ints("def", []int{}, 0)
	g.op("std", "SparseToDense", []string{"idx", "oshape", "vals", "def"}, nil)
	g.ints("base", []int{3}, 2, 3, -1)
	g.op("shape", "AddV2", []string{"base", "std"}, nil)
	g.op("y", "Reshape", []string{"x", "shape"}, nil)
	m := g.load(t)
	if m.nodes[m.byName["shape"]].konst == nil {
		t.Fatal("shape math was not folded at load")
	}
	for _, i := range m.order {
		if op := m.nodes[i].op; op != "Reshape" && op != "Placeholder" {
			t.Fatalf("runtime op %s left after folding", op)
		}
	}
	x := NewTensor([]int{2, 6}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	res, err := m.Run(context.Background(), map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	if !sameShape(res["y"].Shape, []int{2, 3, 2}) || !slices.Equal(res["y"].Data, x.Data) {
		t.Fatalf("got %v", res["y"])
	}
	if &res["y"].Data[0] == &x.Data[0] {
		t.Fatal("output aliases the caller's input")
	}
}

func TestHalfAndQuantization(t *testing.T) {
	for _, c := range []struct {
		h uint16
		f float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.960464477539063e-08}, {0xfc00, float32(math.Inf(-1))}, {0x7c00, float32(math.Inf(1))}, {0x8000, float32(math.Copysign(0, -1))}, {0x3555, 0.33325195}} {
		if got := halfToFloat(c.h); got != c.f || math.Signbit(float64(got)) != math.Signbit(float64(c.f)) {
			t.Errorf("half %#04x = %g, want %g", c.h, got, c.f)
		}
	}
	if !math.IsNaN(float64(halfToFloat(0x7e00))) {
		t.Error("half NaN")
	}
	// uint8 float weight and uint16 int weight with Math.round.
	mn, sc := -1.0, 0.5
	v, n, err := decodeWeight(jsonWeightSpec{Name: "w", Shape: []jsonInt{3}, Dtype: "float32", Quantization: &struct {
		Dtype         string   `json:"dtype"`
		Min           *float64 `json:"min"`
		Scale         *float64 `json:"scale"`
		OriginalDtype string   `json:"original_dtype"`
	}{Dtype: "uint8", Min: &mn, Scale: &sc}}, []byte{0, 1, 4})
	if err != nil || n != 3 || !slices.Equal(v.data(), []float32{-1, -0.5, 1}) {
		t.Fatalf("uint8: %v %d %v", v, n, err)
	}
	mn2, sc2 := 0.25, 0.5
	v, n, err = decodeWeight(jsonWeightSpec{Name: "w", Shape: []jsonInt{3}, Dtype: "int32", Quantization: &struct {
		Dtype         string   `json:"dtype"`
		Min           *float64 `json:"min"`
		Scale         *float64 `json:"scale"`
		OriginalDtype string   `json:"original_dtype"`
	}{Dtype: "uint16", Min: &mn2, Scale: &sc2}}, []byte{0, 0, 1, 0, 2, 0})
	if err != nil || n != 6 || !slices.Equal(v.data(), []float32{0, 1, 1}) { // 0.25→0, 0.75→1, 1.25→1
		t.Fatalf("uint16: %v %d %v", v.data(), n, err)
	}
}

func TestMaxPoolFastPath(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, pad := range []string{"VALID", "SAME"} {
		for _, c := range []int{8, 13, 24} {
			h, w := 9, 12
			x := randData(r, 2*h*w*c)
			g := &graphBuilder{}
			g.placeholder("x", 2, h, w, c)
			g.op("mp", "MaxPool", []string{"x"}, map[string]any{"ksize": aInts(1, 3, 3, 1), "strides": aInts(1, 2, 2, 1), "padding": aStr(pad)})
			res := runGraph(t, g, map[string]*Tensor{"x": NewTensor([]int{2, h, w, c}, x)}, "mp")
			oh, pt := tfPad(pad, h, 3, 2, 1, [2]int{})
			ow, pl := tfPad(pad, w, 3, 2, 1, [2]int{})
			var want []float32
			for b := 0; b < 2; b++ {
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						for ch := 0; ch < c; ch++ {
							m := float32(math.Inf(-1))
							for ky := 0; ky < 3; ky++ {
								for kx := 0; kx < 3; kx++ {
									y, xx := oy*2-pt+ky, ox*2-pl+kx
									if y >= 0 && y < h && xx >= 0 && xx < w {
										m = max(m, x[((b*h+y)*w+xx)*c+ch])
									}
								}
							}
							want = append(want, m)
						}
					}
				}
			}
			assertClose(t, fmt.Sprintf("maxpool %s c=%d", pad, c), res["mp"].Data, want, 0)
		}
	}
}
