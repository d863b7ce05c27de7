//go:build !amd64

package tfjs

func asmGemm() Gemm { return nil }

func haveAVX2() bool { return false }

func dwRowsAVX2(o, xrow []float32, blocks []float32, tapOff []int, c, ow, sw int, bias []float32) bool {
	return false
}

func maxPoolRowAVX2(o, xrow []float32, tapOff []int, c, ow, sw int) bool { return false }
