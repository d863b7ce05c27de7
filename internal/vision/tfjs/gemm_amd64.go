package tfjs

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate sh -c "python3 gen_gemm.py > gemm_amd64.s"

// kargs is the argument block of the assembly micro-kernels; the field
// offsets are hard-coded in gen_gemm.py.
type kargs struct {
	a      unsafe.Pointer // A tile, row 0
	lda    int            // bytes
	b      unsafe.Pointer // packed B panel (k rows of the panel width)
	k      int
	c      unsafe.Pointer
	ldc    int // bytes; also the residual's row stride
	bias   unsafe.Pointer
	res    unsafe.Pointer
	flags  int // bit 0: accumulate into C; bits 8..15: activation code
	alpha  float32
	_      float32
	ntiles int
}

//go:noescape
func kern6x16(p *kargs)

//go:noescape
func kern6x8(p *kargs)

const (
	kActNone  = 0
	kActRelu  = 1
	kActRelu6 = 2
	kActLeaky = 3
)

var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

func haveAVX2() bool { return hasAVX2FMA }

func asmGemm() Gemm {
	if hasAVX2FMA {
		return avx2GemmImpl
	}
	return nil
}

// avx2GemmImpl is a packed SGEMM with hand-written AVX2/FMA 6×16 and 6×8
// micro-kernels and a fused epilogue. Use it only when the CPU supports
// AVX2 and FMA (Gemms and the default selection check that).
var avx2GemmImpl Gemm = avx2Gemm{}

type avx2Gemm struct{}

func (avx2Gemm) Name() string { return "avx2" }

func (avx2Gemm) Pack(b []float32, k, n int) []float32 { return packPanels(b, k, n) }

func (avx2Gemm) MatMul(c, a, bp []float32, m, k, n int, ep *Epilogue) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
		applyEpilogue(c, m, n, ep)
		return
	}
	if ep == nil {
		ep = &Epilogue{}
	}
	kact, goAct := kActNone, false
	switch ep.Act {
	case ActNone:
	case ActRelu:
		kact = kActRelu
	case ActRelu6:
		kact = kActRelu6
	case ActLeakyRelu:
		if ep.Alpha >= 0 && ep.Alpha <= 1 {
			kact = kActLeaky
		} else {
			goAct = true
		}
	default:
		goAct = true
	}
	_ = c[m*n-1]
	_ = a[m*k-1]
	full, lastW := panelLayout(n)
	npan := full
	if lastW > 0 {
		npan++
	}
	mFull := m / gemmMR * gemmMR
	var tile [gemmMR * gemmNR]float32
	var btile [gemmNR]float32
	var atile []float32
	if mFull < m {
		atile = make([]float32, gemmMR*min(k, gemmKC))
	}
	var p kargs
	for k0 := 0; k0 < k; k0 += gemmKC {
		kb := min(gemmKC, k-k0)
		first, last := k0 == 0, k0+kb == k
		if mFull < m {
			// tail rows of A, padded by repeating the last row
			for r := 0; r < gemmMR; r++ {
				src := min(mFull+r, m-1)
				copy(atile[r*kb:(r+1)*kb], a[src*k+k0:src*k+k0+kb])
			}
		}
		for j := 0; j < npan; j++ {
			w := gemmNR
			if j == full {
				w = lastW
			}
			c0 := j * gemmNR
			nb := min(w, n-c0)
			panel := bp[j*gemmNR*k+k0*w:]
			p.b = unsafe.Pointer(&panel[0])
			p.k = kb
			p.bias = nil
			if first && ep.Bias != nil {
				if nb == w {
					p.bias = unsafe.Pointer(&ep.Bias[c0])
				} else {
					btile = [gemmNR]float32{}
					copy(btile[:], ep.Bias[c0:c0+nb])
					p.bias = unsafe.Pointer(&btile[0])
				}
			}
			p.flags = 0
			if !first {
				p.flags = 1
			}
			kern := kern6x16
			if w == 8 {
				kern = kern6x8
			}
			// Full tiles straight into C.
			if mFull > 0 && nb == w {
				p.a = unsafe.Pointer(&a[k0])
				p.lda = 4 * k
				p.c = unsafe.Pointer(&c[c0])
				p.ldc = 4 * n
				p.res = nil
				if last {
					if ep.Residual != nil {
						p.res = unsafe.Pointer(&ep.Residual[c0])
					}
					p.flags |= kact << 8
					p.alpha = ep.Alpha
				}
				p.ntiles = mFull / gemmMR
				kern(&p)
			}
			// Edge tiles through a scratch C tile.
			for i := 0; i < m; i += gemmMR {
				mb := min(gemmMR, m-i)
				if mb == gemmMR && nb == w {
					continue
				}
				if mb == gemmMR {
					p.a = unsafe.Pointer(&a[i*k+k0])
					p.lda = 4 * k
				} else {
					p.a = unsafe.Pointer(&atile[0])
					p.lda = 4 * kb
				}
				if !first {
					for r := 0; r < mb; r++ {
						copy(tile[r*w:r*w+nb], c[(i+r)*n+c0:(i+r)*n+c0+nb])
					}
				}
				p.c = unsafe.Pointer(&tile[0])
				p.ldc = 4 * w
				p.res = nil
				p.flags &^= 0xff00
				p.ntiles = 1
				kern(&p)
				for r := 0; r < mb; r++ {
					dst := c[(i+r)*n+c0 : (i+r)*n+c0+nb]
					copy(dst, tile[r*w:r*w+nb])
					if last {
						if ep.Residual != nil {
							res := ep.Residual[(i+r)*n+c0 : (i+r)*n+c0+nb]
							for q := range dst {
								dst[q] += res[q]
							}
						}
						if kact != kActNone {
							applyAct(dst, ep.Act, ep.Alpha)
						}
					}
				}
			}
		}
	}
	if goAct {
		applyEpilogue(c, m, n, &Epilogue{Act: ep.Act, Alpha: ep.Alpha, PreluAlpha: ep.PreluAlpha})
	}
}

// dwargs is the argument block of dwKernel8 (offsets in gen_gemm.py).
type dwargs struct {
	out     unsafe.Pointer
	outStep int // bytes between output pixels
	in      unsafe.Pointer
	inStep  int // bytes between the input windows of consecutive pixels
	ow      int
	taps    int
	tapOff  unsafe.Pointer // taps byte offsets (int)
	w       unsafe.Pointer // taps × 8 weights
	bias    unsafe.Pointer // 8 values or nil
}

//go:noescape
func dwKernel8(p *dwargs)

// dwRowsAVX2 computes channels [0, c/8·8) of one depthwise output row with
// the assembly kernel; blocks holds the weights as [c/8][taps][8]. It
// reports false when the kernel is unavailable.
func dwRowsAVX2(o, xrow []float32, blocks []float32, tapOff []int, c, ow, sw int, bias []float32) bool {
	if !hasAVX2FMA || c < 8 || len(tapOff) == 0 {
		return false
	}
	taps := len(tapOff)
	var p dwargs
	p.outStep = 4 * c
	p.inStep = 4 * sw * c
	p.ow = ow
	p.taps = taps
	p.tapOff = unsafe.Pointer(&tapOff[0])
	_ = o[(ow-1)*c+c-1]
	for cb := 0; cb+8 <= c; cb += 8 {
		p.out = unsafe.Pointer(&o[cb])
		p.in = unsafe.Pointer(&xrow[cb])
		p.w = unsafe.Pointer(&blocks[(cb/8)*taps*8])
		p.bias = nil
		if bias != nil {
			p.bias = unsafe.Pointer(&bias[cb])
		}
		p.ow = ow
		dwKernel8(&p)
	}
	return true
}

//go:noescape
func maxPoolKernel8(p *dwargs)

// maxPoolRowAVX2 computes channels [0, c/8·8) of one max-pool output row
// over an unpadded input row (xrow points at the window of pixel 0).
func maxPoolRowAVX2(o, xrow []float32, tapOff []int, c, ow, sw int) bool {
	if !hasAVX2FMA || c < 8 || len(tapOff) == 0 {
		return false
	}
	var p dwargs
	p.outStep = 4 * c
	p.inStep = 4 * sw * c
	p.taps = len(tapOff)
	p.tapOff = unsafe.Pointer(&tapOff[0])
	_ = o[(ow-1)*c+c-1]
	for cb := 0; cb+8 <= c; cb += 8 {
		p.out = unsafe.Pointer(&o[cb])
		p.in = unsafe.Pointer(&xrow[cb])
		p.ow = ow
		maxPoolKernel8(&p)
	}
	return true
}
