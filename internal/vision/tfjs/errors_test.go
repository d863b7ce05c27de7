package tfjs

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/nagare-iot/nagare/internal/vision/tfjs/tfjstest"
)

func smallGraph() *graphBuilder {
	g := &graphBuilder{}
	g.placeholder("x", -1, 4, 4, 2)
	g.konst("f", []int{3, 3, 2, 3}, make([]float32, 54))
	g.konst("b", []int{3}, []float32{1, 2, 3})
	g.op("conv", "_FusedConv2D", []string{"x", "f", "b"}, map[string]any{
		"strides": aInts(1, 1, 1, 1), "padding": aStr("SAME"), "fused_ops": aStrs("BiasAdd", "Relu"), "num_args": aInt(1),
	})
	g.op("Identity", "Identity", []string{"conv"}, nil)
	return g
}

func wantLoadError(t *testing.T, fsys fstest.MapFS, substr string) {
	t.Helper()
	m, err := Load(fsys, "m/model.json")
	if err == nil {
		t.Fatalf("Load succeeded (%v), want error containing %q", m, substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not mention %q", err, substr)
	}
	if strings.Contains(err.Error(), "internal error") {
		t.Fatalf("load panicked: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	g := smallGraph()
	if _, err := Load(g.fs(), "m/model.json"); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	t.Run("missing model.json", func(t *testing.T) {
		wantLoadError(t, fstest.MapFS{}, "model.json")
	})
	t.Run("malformed JSON", func(t *testing.T) {
		f := g.fs()
		f["m/model.json"].Data = f["m/model.json"].Data[:100]
		wantLoadError(t, f, "malformed model.json")
	})
	t.Run("not a graph model", func(t *testing.T) {
		f := g.fs()
		f["m/model.json"].Data = []byte(`{"format":"layers-model","modelTopology":{}}`)
		wantLoadError(t, f, "not a graph model")
	})
	t.Run("no nodes", func(t *testing.T) {
		f := g.fs()
		f["m/model.json"].Data = []byte(`{"format":"graph-model","modelTopology":{"node":[]},"weightsManifest":[]}`)
		wantLoadError(t, f, "no modelTopology.node")
	})
	t.Run("truncated shard", func(t *testing.T) {
		f := g.fs()
		f["m/w.bin"].Data = f["m/w.bin"].Data[:100]
		wantLoadError(t, f, "truncated")
	})
	t.Run("missing shard", func(t *testing.T) {
		f := g.fs()
		delete(f, "m/w.bin")
		wantLoadError(t, f, "shard")
	})
	t.Run("shard path escapes", func(t *testing.T) {
		f := g.fs()
		f["m/model.json"].Data = []byte(strings.Replace(string(f["m/model.json"].Data), `"w.bin"`, `"../../etc/passwd"`, 1))
		wantLoadError(t, f, "escapes")
	})
	t.Run("unknown op", func(t *testing.T) {
		g := smallGraph()
		g.op("weird", "FancyOp", []string{"conv"}, nil)
		g.op("weird2", "TensorArrayV3", []string{"conv"}, nil)
		wantLoadError(t, g.fs(), "unsupported ops: FancyOp (node \"weird\"), TensorArrayV3")
	})
	t.Run("bad dtype", func(t *testing.T) {
		f := g.fs()
		f["m/model.json"].Data = []byte(strings.Replace(string(f["m/model.json"].Data), `"dtype":"float32"`, `"dtype":"complex64"`, 1))
		wantLoadError(t, f, `unsupported dtype "complex64"`)
	})
	t.Run("bad quantization", func(t *testing.T) {
		f := g.fs()
		f["m/model.json"].Data = []byte(strings.Replace(string(f["m/model.json"].Data), `"dtype":"float32"`, `"dtype":"float32","quantization":{"dtype":"int4"}`, 1))
		wantLoadError(t, f, "quantization")
	})
	t.Run("bad placeholder dtype", func(t *testing.T) {
		f := g.fs()
		f["m/model.json"].Data = []byte(strings.Replace(string(f["m/model.json"].Data), `"DT_FLOAT"`, `"DT_STRING"`, 1))
		wantLoadError(t, f, "string tensors")
	})
	t.Run("unknown input", func(t *testing.T) {
		g := smallGraph()
		g.op("y", "Relu", []string{"nope"}, nil)
		wantLoadError(t, g.fs(), `unknown input "nope"`)
	})
	t.Run("bad output index", func(t *testing.T) {
		g := smallGraph()
		g.op("y", "Relu", []string{"conv:3"}, nil)
		wantLoadError(t, g.fs(), "has only 1 outputs")
	})
	t.Run("cycle", func(t *testing.T) {
		g := smallGraph()
		g.op("ca", "Relu", []string{"cb"}, nil)
		g.op("cb", "Relu", []string{"ca"}, nil)
		wantLoadError(t, g.fs(), "cycle")
	})
	t.Run("duplicate node", func(t *testing.T) {
		g := smallGraph()
		g.op("conv", "Relu", []string{"x"}, nil)
		wantLoadError(t, g.fs(), "duplicate node")
	})
	t.Run("bad attr type", func(t *testing.T) {
		g := smallGraph()
		g.op("mp", "MaxPool", []string{"x"}, map[string]any{"ksize": aStr("3"), "strides": aInts(1, 1, 1, 1)})
		wantLoadError(t, g.fs(), "attr ksize: not a list")
	})
	t.Run("const without weights", func(t *testing.T) {
		g := smallGraph()
		g.nodes = append(g.nodes, map[string]any{"name": "c", "op": "Const", "attr": map[string]any{}})
		wantLoadError(t, g.fs(), `Const "c" has no weights entry`)
	})
	t.Run("bad bias size", func(t *testing.T) {
		g := &graphBuilder{}
		g.placeholder("x", 1, 4, 4, 2)
		g.konst("f", []int{1, 1, 2, 3}, make([]float32, 6))
		g.konst("b", []int{2}, []float32{1, 2})
		g.op("conv", "_FusedConv2D", []string{"x", "f", "b"}, map[string]any{"strides": aInts(1, 1, 1, 1), "padding": aStr("SAME"), "fused_ops": aStrs("BiasAdd"), "num_args": aInt(1)})
		wantLoadError(t, g.fs(), "bias has 2 values")
	})
	t.Run("unsupported fused op", func(t *testing.T) {
		g := &graphBuilder{}
		g.placeholder("x", 1, 4, 4, 2)
		g.konst("f", []int{1, 1, 2, 3}, make([]float32, 6))
		g.op("conv", "_FusedConv2D", []string{"x", "f"}, map[string]any{"strides": aInts(1, 1, 1, 1), "padding": aStr("SAME"), "fused_ops": aStrs("FusedBatchNorm"), "num_args": aInt(0)})
		wantLoadError(t, g.fs(), "FusedBatchNorm")
	})
	t.Run("folding error", func(t *testing.T) {
		g := &graphBuilder{}
		g.placeholder("x", 1)
		g.ints("a", []int{2}, 1, 2)
		g.ints("bad", []int{2}, 5, 5)
		g.op("r", "Reshape", []string{"a", "bad"}, nil)
		g.op("y", "Reshape", []string{"x", "r"}, nil)
		wantLoadError(t, g.fs(), "constant folding")
	})
}

func TestRunErrors(t *testing.T) {
	m := smallGraph().load(t)
	ctx := context.Background()
	ok := NewTensor([]int{1, 4, 4, 2}, nil)
	if _, err := m.Run(ctx, map[string]*Tensor{"x": ok}); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	if _, err := m.Run(ctx, map[string]*Tensor{"x:0": NewTensor([]int{3, 4, 4, 2}, nil)}); err != nil {
		t.Fatalf("batch 3 with :0 suffix: %v", err)
	}
	for name, c := range map[string]struct {
		in   map[string]*Tensor
		outs []string
		want string
	}{
		"missing input":   {map[string]*Tensor{}, nil, `input "x" not provided`},
		"unknown input":   {map[string]*Tensor{"x": ok, "z": ok}, nil, `unknown input "z"`},
		"nil input":       {map[string]*Tensor{"x": nil}, nil, "is nil"},
		"wrong shape":     {map[string]*Tensor{"x": NewTensor([]int{1, 4, 5, 2}, nil)}, nil, "does not match"},
		"short data":      {map[string]*Tensor{"x": {Shape: []int{1, 4, 4, 2}, Data: make([]float32, 3)}}, nil, "needs 32 values"},
		"unknown output":  {map[string]*Tensor{"x": ok}, []string{"nope"}, `unknown output "nope"`},
		"bad output slot": {map[string]*Tensor{"x": ok}, []string{"conv:2"}, "has 1 outputs"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := m.Run(ctx, c.in, c.outs...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
	t.Run("runtime shape error", func(t *testing.T) {
		g := &graphBuilder{}
		g.placeholder("x", -1, -1, -1, -1)
		g.konst("f", []int{3, 3, 2, 3}, make([]float32, 54))
		g.op("y", "Conv2D", []string{"x", "f"}, map[string]any{"strides": aInts(1, 1, 1, 1), "padding": aStr("VALID")})
		m := g.load(t)
		_, err := m.Run(ctx, map[string]*Tensor{"x": NewTensor([]int{1, 4, 4, 5}, nil)})
		if err == nil || !strings.Contains(err.Error(), "channels") {
			t.Fatalf("got %v", err)
		}
		_, err = m.Run(ctx, map[string]*Tensor{"x": NewTensor([]int{1, 2, 2, 2}, nil)})
		if err == nil || !strings.Contains(err.Error(), "smaller than the kernel") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := m.Run(cctx, map[string]*Tensor{"x": ok}); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestLoadCorrupted mutates the real emotion model.json and shard at random:
// Load must return (or succeed) without panicking.
func TestLoadCorrupted(t *testing.T) {
	models := tfjstest.Models(t)
	mj, err := fsReadFile(models, "emotion.json")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := fsReadFile(models, "emotion.bin")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(11, 12))
	n := 150
	if testing.Short() {
		n = 30
	}
	for i := 0; i < n; i++ {
		j := append([]byte(nil), mj...)
		b := bin
		switch i % 3 {
		case 0: // flip bytes
			for k := 0; k < 1+r.IntN(4); k++ {
				j[r.IntN(len(j))] = byte(r.IntN(256))
			}
		case 1: // cut the JSON
			j = j[:r.IntN(len(j))]
		case 2: // cut the shard
			b = bin[:r.IntN(len(bin))]
		}
		f := fstest.MapFS{"m/model.json": {Data: j}, "m/emotion.bin": {Data: b}}
		m, err := Load(f, "m/model.json")
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("case %d: Load panicked: %v", i, err)
			}
			continue
		}
		// A model that still loads must run or fail cleanly.
		in := map[string]*Tensor{}
		for _, io := range m.Inputs() {
			in[io.Name] = NewTensor([]int{1, 64, 64, 1}, nil)
		}
		if _, err := m.Run(context.Background(), in); err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("case %d: Run panicked: %v", i, err)
		}
	}
}

// TestConcurrentRuns shares one Model between goroutines; every result must
// be bit-identical to a sequential run (run with -race).
func TestConcurrentRuns(t *testing.T) {
	names := []string{"emotion", "blazeface"}
	if !testing.Short() && !raceEnabled {
		names = append(names, "nanodet")
	}
	for _, name := range names {
		var gm goldenModel
		for _, g := range goldenModels {
			if g.name == name {
				gm = g
			}
		}
		m := loadTestModel(t, name)
		in := map[string]*Tensor{m.Inputs()[0].Name: lcgInput(gm.noiseShape, gm.seed, gm.scale)}
		want, err := m.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for it := 0; it < 2; it++ {
					got, err := m.Run(context.Background(), in)
					if err != nil {
						errs <- err
						return
					}
					for k, w := range want {
						gt := got[k]
						if gt == nil || !sameShape(gt.Shape, w.Shape) {
							errs <- errors.New(name + " " + k + ": shape differs")
							return
						}
						for i := range w.Data {
							if gt.Data[i] != w.Data[i] {
								errs <- errors.New(name + " " + k + ": values differ between concurrent runs")
								return
							}
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(smallGraph().json(), smallGraph().bin)
	f.Add([]byte(`{"modelTopology":{"node":[{"name":"a","op":"Relu","input":["a"]}]}}`), []byte{})
	f.Add([]byte(`{"modelTopology":{"node":[{"name":"x","op":"Placeholder"},{"name":"y","op":"Transpose","input":["x","x"]}]}}`), []byte{})
	f.Fuzz(func(t *testing.T, js, bin []byte) {
		fsys := fstest.MapFS{"m/model.json": {Data: js}, "m/w.bin": {Data: bin}}
		_, err := Load(fsys, "m/model.json")
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("Load panicked: %v", err)
		}
	})
}
