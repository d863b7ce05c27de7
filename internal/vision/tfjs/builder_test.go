package tfjs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"testing/fstest"
)

// graphBuilder writes small TFJS graph models (model.json + one shard) for
// unit tests.
type graphBuilder struct {
	nodes []map[string]any
	specs []map[string]any
	bin   []byte
}

func aInts(v ...int) map[string]any {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return map[string]any{"list": map[string]any{"i": s}}
}
func aStr(s string) map[string]any {
	return map[string]any{"s": base64.StdEncoding.EncodeToString([]byte(s))}
}
func aStrs(v ...string) map[string]any {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = base64.StdEncoding.EncodeToString([]byte(x))
	}
	return map[string]any{"list": map[string]any{"s": s}}
}
func aInt(i int) map[string]any       { return map[string]any{"i": strconv.Itoa(i)} }
func aFloat(f float64) map[string]any { return map[string]any{"f": f} }
func aBool(b bool) map[string]any     { return map[string]any{"b": b} }

func (g *graphBuilder) placeholder(name string, shape ...int) {
	dims := []map[string]any{}
	for _, d := range shape {
		dims = append(dims, map[string]any{"size": strconv.Itoa(d)})
	}
	g.nodes = append(g.nodes, map[string]any{"name": name, "op": "Placeholder", "attr": map[string]any{
		"dtype": map[string]any{"type": "DT_FLOAT"},
		"shape": map[string]any{"shape": map[string]any{"dim": dims}},
	}})
}

func (g *graphBuilder) konst(name string, shape []int, data []float32) {
	g.nodes = append(g.nodes, map[string]any{"name": name, "op": "Const", "attr": map[string]any{"dtype": map[string]any{"type": "DT_FLOAT"}}})
	g.specs = append(g.specs, map[string]any{"name": name, "shape": shape, "dtype": "float32"})
	for _, v := range data {
		g.bin = binary.LittleEndian.AppendUint32(g.bin, math.Float32bits(v))
	}
}

func (g *graphBuilder) ints(name string, shape []int, data ...int) {
	g.nodes = append(g.nodes, map[string]any{"name": name, "op": "Const", "attr": map[string]any{"dtype": map[string]any{"type": "DT_INT32"}}})
	g.specs = append(g.specs, map[string]any{"name": name, "shape": shape, "dtype": "int32"})
	for _, v := range data {
		g.bin = binary.LittleEndian.AppendUint32(g.bin, uint32(int32(v)))
	}
}

func (g *graphBuilder) op(name, op string, inputs []string, attr map[string]any) {
	if attr == nil {
		attr = map[string]any{}
	}
	g.nodes = append(g.nodes, map[string]any{"name": name, "op": op, "input": inputs, "attr": attr})
}

func (g *graphBuilder) json() []byte {
	m := map[string]any{
		"format":        "graph-model",
		"modelTopology": map[string]any{"node": g.nodes, "library": map[string]any{}, "versions": map[string]any{}},
		"weightsManifest": []any{map[string]any{
			"paths":   []string{"w.bin"},
			"weights": g.specs,
		}},
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func (g *graphBuilder) fs() fstest.MapFS {
	return fstest.MapFS{
		"m/model.json": {Data: g.json()},
		"m/w.bin":      {Data: append([]byte(nil), g.bin...)},
	}
}

func (g *graphBuilder) load(t testing.TB) *Model {
	t.Helper()
	m, err := Load(g.fs(), "m/model.json")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return m
}

func randData(r *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(r.Float64()*2 - 1)
	}
	return d
}

func assertClose(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > tol*math.Max(1, math.Abs(float64(want[i]))) || math.IsNaN(float64(got[i])) != math.IsNaN(float64(want[i])) {
			t.Fatalf("%s: index %d: got %g, want %g", what, i, got[i], want[i])
		}
	}
}

func fsReadFile(fsys fs.FS, name string) ([]byte, error) { return fs.ReadFile(fsys, name) }
