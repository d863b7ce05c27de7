package tfjs

import (
	"sync"

	"github.com/viterin/vek/vek32"
)

// Epilogue is applied to the product: C = act(A·B + Bias + Residual).
type Epilogue struct {
	Bias       []float32 // length N, or nil
	Residual   []float32 // M×N (same layout as C), or nil
	Act        Activation
	Alpha      float32   // LeakyRelu slope
	PreluAlpha []float32 // length N, for ActPrelu
}

// Gemm is the matrix-multiply kernel behind convolutions and MatMul:
// C[M×N] = A[M×K]·B[K×N] (+ epilogue), all row-major and contiguous.
// Implementations are single-threaded; the executor splits M over workers.
type Gemm interface {
	Name() string
	// Pack converts B [K×N] into the layout MatMul expects. It is called
	// once per constant weight at Load.
	Pack(b []float32, k, n int) []float32
	// MatMul sets c[:m*n] = a[:m*k]·B + epilogue, with packedB from Pack.
	MatMul(c, a, packedB []float32, m, k, n int, ep *Epilogue)
}

var gemmState struct {
	sync.Mutex
	def Gemm
}

// SetGemm selects the Gemm used by models loaded afterwards and returns the
// previous one. nil restores the default.
func SetGemm(g Gemm) Gemm {
	gemmState.Lock()
	defer gemmState.Unlock()
	prev := gemmState.def
	if prev == nil {
		prev = bestGemm()
	}
	gemmState.def = g
	return prev
}

func defaultGemm() Gemm {
	gemmState.Lock()
	defer gemmState.Unlock()
	if gemmState.def != nil {
		return gemmState.def
	}
	return bestGemm()
}

// bestGemm is the AVX2/FMA kernel when the CPU has it, else the portable
// packed pure-Go kernel.
func bestGemm() Gemm {
	if g := asmGemm(); g != nil {
		return g
	}
	return GoGemm
}

// Gemms lists the implementations usable on this machine (for tests and
// benchmarks): the AVX2/FMA kernel (amd64 only), vek32 and pure Go.
func Gemms() []Gemm {
	var out []Gemm
	if g := asmGemm(); g != nil {
		out = append(out, g)
	}
	return append(out, VekGemm, GoGemm)
}

// applyEpilogue applies ep to rows of c (m×n) in place; row0 is the index of
// c's first row within the residual.
func applyEpilogue(c []float32, m, n int, ep *Epilogue) {
	if ep == nil {
		return
	}
	c = c[:m*n]
	for r := 0; r < m; r++ {
		row := c[r*n : (r+1)*n]
		if ep.Bias != nil {
			b := ep.Bias[:n]
			for j := range row {
				row[j] += b[j]
			}
		}
		if ep.Residual != nil {
			res := ep.Residual[r*n : (r+1)*n]
			for j := range row {
				row[j] += res[j]
			}
		}
		if ep.Act == ActPrelu {
			a := ep.PreluAlpha[:n]
			for j, v := range row {
				if v < 0 {
					row[j] = a[j] * v
				}
			}
		} else if ep.Act != ActNone {
			applyAct(row, ep.Act, ep.Alpha)
		}
	}
}

// ---------------------------------------------------------------- vek32

// VekGemm uses github.com/viterin/vek's vek32.MatMul_Into (AVX2 assembly
// with a pure-Go fallback) on unpacked B, plus a Go epilogue.
var VekGemm Gemm = vekGemm{}

type vekGemm struct{}

func (vekGemm) Name() string { return "vek32" }

func (vekGemm) Pack(b []float32, k, n int) []float32 { return append([]float32(nil), b[:k*n]...) }

func (vekGemm) MatMul(c, a, b []float32, m, k, n int, ep *Epilogue) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
	} else {
		vek32.MatMul_Into(c[:m*n], a[:m*k], b[:k*n], k)
	}
	applyEpilogue(c, m, n, ep)
}

// ---------------------------------------------------------------- packed layout

// The packed layout shared by the Go and AVX2 kernels: B is cut into panels
// of nr=16 columns (the last one 8 wide when at most 8 columns remain), each
// stored as K rows of the panel width, zero padded.
const (
	gemmMR = 6
	gemmNR = 16
	gemmKC = 384 // K block
)

func panelLayout(n int) (full, lastW int) {
	full = n / gemmNR
	switch r := n % gemmNR; {
	case r == 0:
		lastW = 0
	case r <= 8:
		lastW = 8
	default:
		lastW = 16
	}
	return
}

func packPanels(b []float32, k, n int) []float32 {
	full, lastW := panelLayout(n)
	out := make([]float32, (full*gemmNR+lastW)*k)
	for j := 0; j < full; j++ {
		p := out[j*gemmNR*k:]
		for kk := 0; kk < k; kk++ {
			copy(p[kk*gemmNR:kk*gemmNR+gemmNR], b[kk*n+j*gemmNR:])
		}
	}
	if lastW > 0 {
		p := out[full*gemmNR*k:]
		c0 := full * gemmNR
		for kk := 0; kk < k; kk++ {
			copy(p[kk*lastW:kk*lastW+(n-c0)], b[kk*n+c0:kk*n+n])
		}
	}
	return out
}

// ---------------------------------------------------------------- pure Go

// GoGemm is a portable packed GEMM in pure Go (6×16 register-style tiles).
var GoGemm Gemm = goGemm{}

type goGemm struct{}

func (goGemm) Name() string { return "go" }

func (goGemm) Pack(b []float32, k, n int) []float32 { return packPanels(b, k, n) }

func (goGemm) MatMul(c, a, bp []float32, m, k, n int, ep *Epilogue) {
	if m == 0 || n == 0 {
		return
	}
	full, lastW := panelLayout(n)
	npan := full
	if lastW > 0 {
		npan++
	}
	for j := 0; j < npan; j++ {
		w := gemmNR
		if j == full {
			w = lastW
		}
		c0 := j * gemmNR
		nb := min(w, n-c0)
		panel := bp[j*gemmNR*k:]
		for i := 0; i < m; i++ {
			arow := a[i*k : i*k+k]
			crow := c[i*n+c0 : i*n+c0+nb]
			if w == 16 {
				goRow16(crow, arow, panel)
			} else {
				goRow8(crow, arow, panel)
			}
		}
	}
	applyEpilogue(c, m, n, ep)
}

func goRow16(c, a, p []float32) {
	var s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15 float32
	p = p[:len(a)*16]
	for kk, av := range a {
		b := p[kk*16 : kk*16+16 : kk*16+16]
		s0 += av * b[0]
		s1 += av * b[1]
		s2 += av * b[2]
		s3 += av * b[3]
		s4 += av * b[4]
		s5 += av * b[5]
		s6 += av * b[6]
		s7 += av * b[7]
		s8 += av * b[8]
		s9 += av * b[9]
		s10 += av * b[10]
		s11 += av * b[11]
		s12 += av * b[12]
		s13 += av * b[13]
		s14 += av * b[14]
		s15 += av * b[15]
	}
	t := [16]float32{s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15}
	copy(c, t[:])
}

func goRow8(c, a, p []float32) {
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	p = p[:len(a)*8]
	for kk, av := range a {
		b := p[kk*8 : kk*8+8 : kk*8+8]
		s0 += av * b[0]
		s1 += av * b[1]
		s2 += av * b[2]
		s3 += av * b[3]
		s4 += av * b[4]
		s5 += av * b[5]
		s6 += av * b[6]
		s7 += av * b[7]
	}
	t := [8]float32{s0, s1, s2, s3, s4, s5, s6, s7}
	copy(c, t[:])
}
