package tfjs

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// A process-wide pool of worker goroutines executes the chunks of
// parallelFor loops. The calling goroutine always takes part, so a loop
// finishes even when every worker is busy with other runs; idle workers
// join in. The pool grows up to GOMAXPROCS-1 workers.

type pjob struct {
	fn     func(lo, hi int)
	n      int
	chunk  int
	chunks int64
	next   atomic.Int64
	wg     sync.WaitGroup
	panicV atomic.Pointer[panicBox]
}

type panicBox struct{ v any }

func (j *pjob) work() {
	for {
		c := j.next.Add(1) - 1
		if c >= j.chunks {
			return
		}
		lo := int(c) * j.chunk
		hi := min(lo+j.chunk, j.n)
		j.runChunk(lo, hi)
	}
}

func (j *pjob) runChunk(lo, hi int) {
	defer j.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			j.panicV.CompareAndSwap(nil, &panicBox{r})
		}
	}()
	j.fn(lo, hi)
}

var workers struct {
	mu   sync.Mutex
	n    int
	jobs chan *pjob
}

func ensureWorkers(want int) {
	workers.mu.Lock()
	defer workers.mu.Unlock()
	if workers.jobs == nil {
		workers.jobs = make(chan *pjob)
	}
	for workers.n < want {
		workers.n++
		go func() {
			for j := range workers.jobs {
				j.work()
			}
		}()
	}
}

// Minimum work per parallel chunk: handing a chunk to another goroutine
// costs a few microseconds, so chunks must be worth much more than that.
const (
	grainMACs  = 1 << 20 // multiply-adds (convolutions, GEMM)
	grainElems = 1 << 16 // elements moved (copies, element-wise ops)
)

// grain returns how many units of the given cost make up one chunk.
func grain(target, unitCost int) int { return max(1, target/max(1, unitCost)) }

// threads is the parallelism used by kernels (GOMAXPROCS).
func threads() int { return runtime.GOMAXPROCS(0) }

// parallelFor calls fn on disjoint chunks covering [0, n), each at least
// grain long (except the last), spread over the worker pool.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	t := threads()
	if t <= 1 || n <= grain {
		fn(0, n)
		return
	}
	// Aim for ~4 chunks per thread for load balance, but never below grain.
	chunk := max(grain, (n+4*t-1)/(4*t))
	chunks := (n + chunk - 1) / chunk
	if chunks <= 1 {
		fn(0, n)
		return
	}
	j := &pjob{fn: fn, n: n, chunk: chunk, chunks: int64(chunks)}
	j.wg.Add(chunks)
	helpers := min(t-1, chunks-1)
	ensureWorkers(helpers)
	for i := 0; i < helpers; i++ {
		select {
		case workers.jobs <- j:
		default:
			i = helpers // everyone busy: do the rest ourselves
		}
	}
	j.work()
	j.wg.Wait()
	if p := j.panicV.Load(); p != nil {
		panic(fmt.Sprintf("tfjs: kernel panic: %v", p.v))
	}
}

// parallelRows is parallelFor with chunk boundaries aligned to a multiple of
// align (e.g. a GEMM micro-tile height).
func parallelRows(n, align, grain int, fn func(lo, hi int)) {
	align = max(align, 1)
	blocks := (n + align - 1) / align
	parallelFor(blocks, max(1, grain/align), func(lo, hi int) {
		fn(lo*align, min(hi*align, n))
	})
}
