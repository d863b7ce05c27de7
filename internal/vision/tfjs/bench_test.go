package tfjs

import (
	"context"
	"testing"
)

// Benchmarks: one inference per op on the LCG inputs (emotion with a batch
// of 1). Compare with `node testdata/golden/bench.js <models>`; run with
// -cpu 1,2 for the single-thread and default figures.

func benchModel(b *testing.B, name string, shape []int, seed uint32, scale float32) {
	m := loadTestModel(b, name)
	in := map[string]*Tensor{m.Inputs()[0].Name: lcgInput(shape, seed, scale)}
	ctx := context.Background()
	if _, err := m.Run(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEmotion(b *testing.B)   { benchModel(b, "emotion", []int{1, 64, 64, 1}, 1, 1) }
func BenchmarkBlazeFace(b *testing.B) { benchModel(b, "blazeface", []int{1, 256, 256, 3}, 2, 1) }
func BenchmarkNanoDet(b *testing.B)   { benchModel(b, "nanodet", []int{1, 3, 416, 416}, 3, 2) }
