// Package tfjs is a pure-Go executor for TensorFlow.js graph models
// (model.json + binary weight shards, as written by tensorflowjs_converter).
//
// It loads the JSON topology and the (optionally float16/uint8/uint16
// quantized) weights, folds constant subgraphs, fuses bias/activation/
// residual epilogues into convolutions and evaluates the graph in
// topological order. Convolutions run as im2col + GEMM behind the Gemm
// interface (an AVX2/FMA micro-kernel on amd64, a portable pure-Go kernel
// elsewhere, vek32 as an alternative); depthwise convolutions, transposes and
// element-wise ops have dedicated kernels. Work inside an op is split over a
// worker pool sized to GOMAXPROCS.
//
// Tensors are float32 only; int32/int64/bool graph values (shapes, paddings,
// axes) are carried as float32, which is exact for the magnitudes such
// graphs use (|v| < 2^24).
//
// Supported ops: see Ops. The semantics follow tfjs-converter and
// tfjs-backend-cpu 4.22.0 (see vision.md §2).
package tfjs

import "fmt"

// Tensor is a dense float32 tensor (row-major).
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor returns a tensor with the given shape and data. When data is nil
// a zeroed buffer of the right size is allocated. It panics when len(data)
// does not match the shape (a programming error).
func NewTensor(shape []int, data []float32) *Tensor {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tfjs: negative dimension in shape %v", shape))
		}
		n *= d
	}
	if data == nil {
		data = make([]float32, n)
	}
	if len(data) != n {
		panic(fmt.Sprintf("tfjs: shape %v needs %d values, got %d", shape, n, len(data)))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// Size is the number of elements the shape describes.
func (t *Tensor) Size() int { return shapeSize(t.Shape) }

func shapeSize(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// IO describes a model input or output.
type IO struct {
	Name  string
	Shape []int // -1 for unknown dims; nil when unknown
	DType string
}
