package tfjs

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"path"
	"strings"
)

// loadWeights reads every weight group's shards (concatenated in path
// order) and decodes the weights in manifest order, as tfjs-core
// io_utils.decodeWeights does.
func loadWeights(fsys fs.FS, dir string, groups []jsonWeightGroup) (map[string]*value, error) {
	out := map[string]*value{}
	for gi, g := range groups {
		var buf []byte
		for _, p := range g.Paths {
			name, err := shardPath(dir, p)
			if err != nil {
				return nil, fmt.Errorf("weights group %d: %w", gi, err)
			}
			b, err := fs.ReadFile(fsys, name)
			if err != nil {
				return nil, fmt.Errorf("weights group %d: reading shard: %w", gi, err)
			}
			buf = append(buf, b...)
		}
		off := 0
		for _, w := range g.Weights {
			v, n, err := decodeWeight(w, buf[off:])
			if err != nil {
				return nil, fmt.Errorf("weight %q (group %d, paths %v): %w", w.Name, gi, g.Paths, err)
			}
			off += n
			if _, dup := out[w.Name]; dup {
				return nil, fmt.Errorf("weight %q listed twice", w.Name)
			}
			out[w.Name] = v
		}
	}
	return out, nil
}

func shardPath(dir, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty shard path")
	}
	if strings.Contains(p, "://") {
		return "", fmt.Errorf("shard path %q is a URL; only relative paths are supported", p)
	}
	name := path.Clean(path.Join(dir, p))
	if !fs.ValidPath(name) {
		return "", fmt.Errorf("shard path %q escapes the model directory", p)
	}
	return name, nil
}

const (
	maxWeightElems = 1 << 30
	maxInlineElems = 1 << 24
)

// decodeWeight decodes one weight from b and returns it with the number of
// bytes consumed.
func decodeWeight(w jsonWeightSpec, b []byte) (*value, int, error) {
	shape := make([]int, len(w.Shape))
	n := 1
	for i, d := range w.Shape {
		if d < 0 {
			return nil, 0, fmt.Errorf("negative dimension in shape %v", w.Shape)
		}
		shape[i] = int(d)
		n *= int(d)
		if n > maxWeightElems {
			return nil, 0, fmt.Errorf("shape %v too large", w.Shape)
		}
	}
	var dt dtype
	switch w.Dtype {
	case "float32":
		dt = dtFloat
	case "int32":
		dt = dtInt
	case "bool":
		dt = dtBool
	default:
		return nil, 0, fmt.Errorf("unsupported dtype %q", w.Dtype)
	}
	q := w.Quantization
	esize := 4
	switch {
	case q != nil && q.Dtype == "uint8":
		esize = 1
	case q != nil && (q.Dtype == "uint16" || q.Dtype == "float16"):
		esize = 2
	case q == nil && dt == dtBool:
		esize = 1
	}
	if len(b) < n*esize {
		return nil, 0, fmt.Errorf("weight data truncated: need %d bytes, have %d", n*esize, len(b))
	}
	data := make([]float32, n)
	if q == nil {
		size := esize
		switch dt {
		case dtFloat:
			for i := range data {
				data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		case dtInt:
			for i := range data {
				data[i] = float32(int32(binary.LittleEndian.Uint32(b[4*i:])))
			}
		case dtBool:
			for i := range data {
				if b[i] != 0 {
					data[i] = 1
				}
			}
		}
		return newConst(shape, data, dt), n * size, nil
	}
	switch q.Dtype {
	case "float16":
		if dt != dtFloat {
			return nil, 0, fmt.Errorf("float16 quantization of a %s weight", w.Dtype)
		}
		if len(b) < 2*n {
			return nil, 0, fmt.Errorf("weight data truncated: need %d bytes, have %d", 2*n, len(b))
		}
		for i := range data {
			data[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return newConst(shape, data, dt), 2 * n, nil
	case "uint8", "uint16":
		if q.Min == nil || q.Scale == nil {
			return nil, 0, fmt.Errorf("%s quantization without min/scale", q.Dtype)
		}
		if dt == dtBool {
			return nil, 0, fmt.Errorf("quantized bool weight")
		}
		size := 1
		if q.Dtype == "uint16" {
			size = 2
		}
		if len(b) < size*n {
			return nil, 0, fmt.Errorf("weight data truncated: need %d bytes, have %d", size*n, len(b))
		}
		mn, sc := float32(*q.Min), float32(*q.Scale)
		for i := range data {
			var u float32
			if size == 1 {
				u = float32(b[i])
			} else {
				u = float32(binary.LittleEndian.Uint16(b[2*i:]))
			}
			v := u*sc + mn
			if dt == dtInt {
				v = float32(math.Floor(float64(v) + 0.5)) // JS Math.round
			}
			data[i] = v
		}
		return newConst(shape, data, dt), size * n, nil
	}
	return nil, 0, fmt.Errorf("unsupported quantization dtype %q", q.Dtype)
}

// halfToFloat converts an IEEE-754 binary16 value to float32, including
// subnormals, infinities and NaN.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: value = mant * 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// inlineTensor decodes a Const node's inline "value" tensor (used when the
// model was converted without a weights entry for it).
func inlineTensor(t *jsonTensor) (*value, error) {
	dts, err := tfDtype(t.Dtype)
	if err != nil {
		return nil, err
	}
	dt := dtFloat
	switch dts {
	case "int32":
		dt = dtInt
	case "bool":
		dt = dtBool
	}
	shape := shapeFromJSON(t.TensorShape)
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("inline tensor with unknown dimension")
		}
	}
	n := shapeSize(shape)
	if n > maxInlineElems {
		return nil, fmt.Errorf("inline tensor too large")
	}
	data := make([]float32, n)
	var vals []float64
	switch {
	case t.TensorContent != "":
		raw, err := base64.StdEncoding.DecodeString(t.TensorContent)
		if err != nil {
			return nil, fmt.Errorf("tensorContent: %w", err)
		}
		size := 4
		switch t.Dtype {
		case "DT_INT64", "DT_DOUBLE", "DT_UINT64":
			size = 8
		case "DT_BOOL", "DT_INT8", "DT_UINT8":
			size = 1
		case "DT_HALF", "DT_INT16", "DT_UINT16", "DT_BFLOAT16":
			size = 2
		}
		if len(raw) < n*size {
			return nil, fmt.Errorf("tensorContent truncated")
		}
		for i := range data {
			p := raw[i*size:]
			switch t.Dtype {
			case "DT_FLOAT":
				data[i] = math.Float32frombits(binary.LittleEndian.Uint32(p))
			case "DT_DOUBLE":
				data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(p)))
			case "DT_INT32":
				data[i] = float32(int32(binary.LittleEndian.Uint32(p)))
			case "DT_UINT32":
				data[i] = float32(binary.LittleEndian.Uint32(p))
			case "DT_INT64":
				data[i] = float32(int64(binary.LittleEndian.Uint64(p)))
			case "DT_UINT64":
				data[i] = float32(binary.LittleEndian.Uint64(p))
			case "DT_BOOL", "DT_UINT8":
				data[i] = float32(p[0])
			case "DT_INT8":
				data[i] = float32(int8(p[0]))
			case "DT_HALF":
				data[i] = halfToFloat(binary.LittleEndian.Uint16(p))
			case "DT_INT16":
				data[i] = float32(int16(binary.LittleEndian.Uint16(p)))
			case "DT_UINT16":
				data[i] = float32(binary.LittleEndian.Uint16(p))
			case "DT_BFLOAT16":
				data[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(p)) << 16)
			default:
				return nil, fmt.Errorf("unsupported tensorContent dtype %s", t.Dtype)
			}
		}
		return newConst(shape, data, dt), nil
	case len(t.FloatVal) > 0:
		for _, f := range t.FloatVal {
			vals = append(vals, float64(f))
		}
	case len(t.IntVal) > 0:
		for _, f := range t.IntVal {
			vals = append(vals, float64(f))
		}
	case len(t.Int64Val) > 0:
		for _, f := range t.Int64Val {
			vals = append(vals, float64(f))
		}
	case len(t.BoolVal) > 0:
		for _, b := range t.BoolVal {
			if b {
				vals = append(vals, 1)
			} else {
				vals = append(vals, 0)
			}
		}
	}
	// Proto semantics: a shorter value list repeats its last element.
	for i := range data {
		switch {
		case i < len(vals):
			data[i] = float32(vals[i])
		case len(vals) > 0:
			data[i] = float32(vals[len(vals)-1])
		}
	}
	return newConst(shape, data, dt), nil
}
