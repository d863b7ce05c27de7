package tfjs

import (
	"fmt"
	"sync"
)

type dtype uint8

const (
	dtFloat dtype = iota
	dtInt
	dtBool
)

func (d dtype) String() string {
	switch d {
	case dtInt:
		return "int32"
	case dtBool:
		return "bool"
	}
	return "float32"
}

// buffer is storage shared by the values that view it.
type buffer struct {
	data   []float32
	refs   int32 // live values referencing it (run-local buffers only)
	pinned bool  // constants and caller inputs: never recycled nor written
}

// value is a tensor during evaluation. Its logical shape is shape; the data
// may be stored with a permuted axis order (a lazily applied transpose):
// physical axis k holds logical axis perm[k]. perm == nil is the canonical
// row-major layout.
type value struct {
	shape []int
	perm  []int
	buf   *buffer
	dtype dtype
	mat   *value // cached canonical copy of a permuted value
}

func newConst(shape []int, data []float32, dt dtype) *value {
	return &value{shape: shape, buf: &buffer{data: data, pinned: true}, dtype: dt}
}

func (v *value) size() int        { return shapeSize(v.shape) }
func (v *value) data() []float32  { return v.buf.data[:v.size()] }
func (v *value) rank() int        { return len(v.shape) }
func (v *value) String() string   { return fmt.Sprintf("%v%v(perm %v)", v.dtype, v.shape, v.perm) }
func (v *value) physShape() []int { return permShape(v.shape, v.perm) }

func permShape(shape, perm []int) []int {
	if perm == nil {
		return shape
	}
	out := make([]int, len(perm))
	for k, p := range perm {
		out[k] = shape[p]
	}
	return out
}

func isIdentity(p []int) bool {
	for i, v := range p {
		if v != i {
			return false
		}
	}
	return true
}

func invertPerm(p []int) []int {
	q := make([]int, len(p))
	for i, v := range p {
		q[v] = i
	}
	return q
}

// ints returns the values of a small integer tensor (shape vectors, axes,
// paddings) in logical order.
func (v *value) ints() []int {
	d := v.canonicalData()
	out := make([]int, len(d))
	for i, x := range d {
		out[i] = int(x)
	}
	return out
}

// canonicalData returns the logical row-major data, transposing a permuted
// value into a fresh (non-pooled) slice. For small tensors only.
func (v *value) canonicalData() []float32 {
	if v.perm == nil {
		return v.data()
	}
	out := make([]float32, v.size())
	transposeInto(out, v.data(), v.physShape(), invertPerm(v.perm))
	return out
}

// arena recycles run-local buffers by exact size.
type arena struct {
	free map[int][][]float32
}

func (a *arena) get(n int) []float32 {
	if l := a.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		a.free[n] = l[:len(l)-1]
		return b
	}
	return make([]float32, n)
}

func (a *arena) put(b []float32) {
	if cap(b) == 0 {
		return
	}
	b = b[:cap(b)]
	a.free[len(b)] = append(a.free[len(b)], b)
}

var arenaPool = sync.Pool{New: func() any { return &arena{free: map[int][][]float32{}} }}

// scratch buffers for kernels (im2col panels, padded copies), shared by all
// runs and workers.
var scratchPool sync.Pool

func getScratch(n int) *[]float32 {
	if p, ok := scratchPool.Get().(*[]float32); ok {
		if cap(*p) >= n {
			*p = (*p)[:n]
			return p
		}
	}
	s := make([]float32, n, n+n/4)
	return &s
}

func putScratch(p *[]float32) { scratchPool.Put(p) }
