package tfjs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nagare-iot/nagare/internal/vision/tfjs/tfjstest"
)

// Golden tests compare the executor with TensorFlow.js 4.22.0 (wasm
// backend) on the same inputs. Tolerance: |go − tfjs| ≤ 1e-4·max(1, |tfjs|),
// i.e. absolute 1e-4 for values up to 1 and relative 1e-4 above.
const goldenTol = 1e-4

// goldenModel mirrors MODELS in testdata/golden/common.js.
type goldenModel struct {
	name       string
	noiseShape []int
	seed       uint32
	scale      float32
}

var goldenModels = []goldenModel{
	{"emotion", []int{2, 64, 64, 1}, 1, 1},
	{"blazeface", []int{1, 256, 256, 3}, 2, 1},
	{"nanodet", []int{1, 3, 416, 416}, 3, 2},
}

// lcgInput reproduces common.js lcg() exactly.
func lcgInput(shape []int, seed uint32, scale float32) *Tensor {
	t := NewTensor(shape, nil)
	s := seed
	for i := range t.Data {
		s = s*1664525 + 1013904223
		t.Data[i] = float32((float64(s>>8)/16777216*2 - 1) * float64(scale))
	}
	return t
}

var modelCache sync.Map // name -> *Model (default Gemm)

func loadTestModel(t testing.TB, name string) *Model {
	t.Helper()
	if m, ok := modelCache.Load(name); ok {
		return m.(*Model)
	}
	m, err := Load(tfjstest.Models(t), name+".json")
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	modelCache.Store(name, m)
	return m
}

type diffStat struct {
	maxAbs, maxRel float64
	worst          int
	bad            int
}

func compare(got, want []float32) diffStat {
	var d diffStat
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		a := math.Abs(g - w)
		if math.IsNaN(g) != math.IsNaN(w) {
			a = math.Inf(1)
		}
		r := a / math.Max(1, math.Abs(w))
		if a > d.maxAbs {
			d.maxAbs = a
		}
		if r > d.maxRel {
			d.maxRel, d.worst = r, i
		}
		if r > goldenTol {
			d.bad++
		}
	}
	return d
}

func readF32(t testing.TB, file string) []float32 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%4 != 0 {
		t.Fatalf("%s: size %d not a multiple of 4", file, len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// ---------------------------------------------------------------- committed fixtures

type fixtureIndex struct {
	TFJS    string `json:"tfjs"`
	Outputs []struct {
		Model  string `json:"model"`
		Name   string `json:"name"`
		Shape  []int  `json:"shape"`
		Stride int    `json:"stride"`
		File   string `json:"file"`
	} `json:"outputs"`
}

// TestGoldenFixtures checks the LCG-noise case against the small committed
// fixtures (testdata/golden/fixtures, made by `node golden.js --fixtures`);
// it needs only the models, not node.
func TestGoldenFixtures(t *testing.T) {
	dir := filepath.Join("testdata", "golden", "fixtures")
	b, err := os.ReadFile(filepath.Join(dir, "fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx fixtureIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, gm := range goldenModels {
		t.Run(gm.name, func(t *testing.T) {
			m := loadTestModel(t, gm.name)
			in := lcgInput(gm.noiseShape, gm.seed, gm.scale)
			res, err := m.Run(context.Background(), map[string]*Tensor{m.Inputs()[0].Name: in})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, o := range idx.Outputs {
				if o.Model != gm.name {
					continue
				}
				n++
				got := res[o.Name]
				if got == nil || !sameShape(got.Shape, o.Shape) {
					t.Fatalf("%s: got %v, want shape %v", o.Name, got, o.Shape)
				}
				want := readF32(t, filepath.Join(dir, o.File))
				var sampled []float32
				for i := 0; i < len(got.Data); i += o.Stride {
					sampled = append(sampled, got.Data[i])
				}
				if len(sampled) != len(want) {
					t.Fatalf("%s: %d samples, fixture has %d", o.Name, len(sampled), len(want))
				}
				d := compare(sampled, want)
				t.Logf("%s %v: max abs diff %.3g, max rel diff %.3g (%d values)", o.Name, o.Shape, d.maxAbs, d.maxRel, len(want))
				if d.bad > 0 {
					t.Errorf("%s: %d values off by more than %g (worst index %d: got %g want %g)", o.Name, d.bad, goldenTol, d.worst*o.Stride, sampled[d.worst], want[d.worst])
				}
			}
			if n == 0 {
				t.Fatalf("no fixtures for %s", gm.name)
			}
		})
	}
}

// ---------------------------------------------------------------- full golden run

type goldenIndex struct {
	TFJS    string `json:"tfjs"`
	Backend string `json:"backend"`
	Cases   []struct {
		Model string `json:"model"`
		Case  string `json:"case"`
		Input struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
			File  string `json:"file"`
		} `json:"input"`
		Outputs []struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
			File  string `json:"file"`
		} `json:"outputs"`
	} `json:"cases"`
}

// photosDir is the shared sample photos directory (repo-relative).
func photosDir() string {
	d := filepath.Join("..", "..", "..", "..", "shared", "testdata", "vision")
	if _, err := os.Stat(filepath.Join(d, "group-1.jpg")); err == nil {
		return d
	}
	return ""
}

// goldenDir returns a directory produced by `node golden.js` for the current
// script, lock file and models, generating it once (cached in the temp dir)
// when node and npm are available.
func goldenDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("NAGARE_TFJS_GOLDEN"); d != "" {
		return d
	}
	node, err1 := osexec.LookPath("node")
	npm, err2 := osexec.LookPath("npm")
	if err1 != nil || err2 != nil {
		t.Skip("node/npm not available: full golden comparison skipped (fixtures still checked)")
	}
	src := filepath.Join("testdata", "golden")
	files := []string{"package.json", "package-lock.json", "common.js", "golden.js"}
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	photos := photosDir()
	fmt.Fprintf(h, "models %s %s photos %v\n", tfjstest.Version, tfjstest.TarballSHA256, photos != "")
	key := hex.EncodeToString(h.Sum(nil))[:16]
	root := filepath.Join(os.TempDir(), "nagare-tfjs-golden")
	out := filepath.Join(root, "out-"+key)
	if _, err := os.Stat(filepath.Join(out, "index.json")); err == nil {
		return out
	}
	models := tfjstest.Path(t)
	// npm ci into a work dir keyed by the lock file.
	lock, _ := os.ReadFile(filepath.Join(src, "package-lock.json"))
	lh := sha256.Sum256(lock)
	work := filepath.Join(root, "node-"+hex.EncodeToString(lh[:])[:16])
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(src, f))
		if err := os.WriteFile(filepath.Join(work, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "node_modules", "@tensorflow", "tfjs-backend-wasm")); err != nil {
		t.Logf("installing tfjs for golden generation in %s", work)
		cmd := osexec.Command(npm, "ci", "--no-audit", "--no-fund", "--silent")
		cmd.Dir = work
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("npm ci failed, full golden comparison skipped: %v\n%s", err, b)
		}
	}
	tmp, err := os.MkdirTemp(root, "gen-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"golden.js", models, tmp}
	if photos != "" {
		abs, _ := filepath.Abs(photos)
		args = append(args, abs)
	}
	cmd := osexec.Command(node, args...)
	cmd.Dir = work
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node golden.js: %v\n%s", err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		if _, err2 := os.Stat(filepath.Join(out, "index.json")); err2 != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestGolden runs every golden case (LCG noise and one real photo per model)
// and compares every element of every output.
func TestGolden(t *testing.T) {
	dir := goldenDir(t)
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx goldenIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, g := range Gemms() {
		t.Run(g.Name(), func(t *testing.T) {
			if testing.Short() && g != defaultGemm() {
				t.Skip("short mode: default Gemm only")
			}
			prev := SetGemm(g)
			models := map[string]*Model{}
			for _, c := range idx.Cases {
				if raceEnabled && g == GoGemm && c.Model == "nanodet" {
					continue // too slow under the race detector; TestGemms covers the kernel
				}
				m := models[c.Model]
				if m == nil {
					if m, err = Load(tfjstest.Models(t), c.Model+".json"); err != nil {
						SetGemm(prev)
						t.Fatal(err)
					}
					models[c.Model] = m
				}
				in := NewTensor(c.Input.Shape, readF32(t, filepath.Join(dir, c.Input.File)))
				res, err := m.Run(context.Background(), map[string]*Tensor{c.Input.Name: in})
				if err != nil {
					t.Errorf("%s/%s: %v", c.Model, c.Case, err)
					continue
				}
				for _, o := range c.Outputs {
					got := res[o.Name]
					want := readF32(t, filepath.Join(dir, o.File))
					if got == nil || !sameShape(got.Shape, o.Shape) || len(got.Data) != len(want) {
						t.Errorf("%s/%s %s: got %v, want shape %v", c.Model, c.Case, o.Name, got, o.Shape)
						continue
					}
					d := compare(got.Data, want)
					t.Logf("%s/%s %s %v: max abs diff %.3g, max rel diff %.3g", c.Model, c.Case, o.Name, o.Shape, d.maxAbs, d.maxRel)
					if d.bad > 0 {
						t.Errorf("%s/%s %s: %d values off by more than %g (worst index %d: got %g want %g)", c.Model, c.Case, o.Name, d.bad, goldenTol, d.worst, got.Data[d.worst], want[d.worst])
					}
				}
			}
			SetGemm(prev)
		})
	}
}
