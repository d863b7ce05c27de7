package tfjs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// JSON structures of a TFJS graph model (model.json). modelTopology is a
// JSON rendering of a TensorFlow GraphDef; attr values are protobuf
// AttrValue messages in proto3 JSON form (int64 as strings, bytes as base64).

type jsonModel struct {
	Format              string            `json:"format"`
	GeneratedBy         string            `json:"generatedBy"`
	ConvertedBy         string            `json:"convertedBy"`
	ModelTopology       *jsonTopology     `json:"modelTopology"`
	WeightsManifest     []jsonWeightGroup `json:"weightsManifest"`
	Signature           json.RawMessage   `json:"signature"`
	UserDefinedMetadata struct {
		Signature json.RawMessage `json:"signature"`
	} `json:"userDefinedMetadata"`
}

type jsonTopology struct {
	Node    []jsonNode      `json:"node"`
	Library json.RawMessage `json:"library"`
}

type jsonNode struct {
	Name  string              `json:"name"`
	Op    string              `json:"op"`
	Input []string            `json:"input"`
	Attr  map[string]jsonAttr `json:"attr"`
}

type jsonAttr struct {
	S      *string     `json:"s"`
	I      *jsonInt    `json:"i"`
	F      *jsonFloat  `json:"f"`
	B      *bool       `json:"b"`
	Type   *string     `json:"type"`
	Shape  *jsonShape  `json:"shape"`
	List   *jsonList   `json:"list"`
	Tensor *jsonTensor `json:"tensor"`
}

type jsonList struct {
	S    []string    `json:"s"`
	I    []jsonInt   `json:"i"`
	F    []jsonFloat `json:"f"`
	B    []bool      `json:"b"`
	Type []string    `json:"type"`
}

type jsonShape struct {
	Dim []struct {
		Size jsonInt `json:"size"`
	} `json:"dim"`
	UnknownRank bool `json:"unknownRank"`
}

type jsonTensor struct {
	Dtype         string      `json:"dtype"`
	TensorShape   *jsonShape  `json:"tensorShape"`
	TensorContent string      `json:"tensorContent"`
	FloatVal      []jsonFloat `json:"floatVal"`
	IntVal        []jsonInt   `json:"intVal"`
	Int64Val      []jsonInt   `json:"int64Val"`
	BoolVal       []bool      `json:"boolVal"`
}

type jsonWeightGroup struct {
	Paths   []string         `json:"paths"`
	Weights []jsonWeightSpec `json:"weights"`
}

type jsonWeightSpec struct {
	Name         string    `json:"name"`
	Shape        []jsonInt `json:"shape"`
	Dtype        string    `json:"dtype"`
	Quantization *struct {
		Dtype         string   `json:"dtype"`
		Min           *float64 `json:"min"`
		Scale         *float64 `json:"scale"`
		OriginalDtype string   `json:"original_dtype"`
	} `json:"quantization"`
}

// jsonInt accepts a JSON number or a string holding an integer (proto3 JSON
// writes int64 as strings).
type jsonInt int64

func (j *jsonInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) {
			return fmt.Errorf("invalid integer %s", b)
		}
		v = int64(f)
	}
	*j = jsonInt(v)
	return nil
}

// jsonFloat accepts a JSON number or the strings "NaN", "Infinity",
// "-Infinity" (proto3 JSON) or a numeric string.
type jsonFloat float64

func (j *jsonFloat) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	switch s {
	case "null":
		return nil
	case "NaN":
		*j = jsonFloat(math.NaN())
		return nil
	case "Infinity":
		*j = jsonFloat(math.Inf(1))
		return nil
	case "-Infinity":
		*j = jsonFloat(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("invalid float %s", b)
	}
	*j = jsonFloat(v)
	return nil
}

// sigEntry is one input or output of a model signature, in JSON order.
type sigEntry struct {
	key   string
	Name  string     `json:"name"`
	Dtype string     `json:"dtype"`
	Shape *jsonShape `json:"tensorShape"`
}

// parseSignature decodes {"inputs": {...}, "outputs": {...}} keeping the
// key order of both objects (tfjs reports model.outputs in that order).
func parseSignature(raw json.RawMessage) (inputs, outputs []sigEntry, err error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, nil, fmt.Errorf("signature: %w", err)
	}
	if inputs, err = orderedEntries(top["inputs"]); err != nil {
		return nil, nil, fmt.Errorf("signature inputs: %w", err)
	}
	if outputs, err = orderedEntries(top["outputs"]); err != nil {
		return nil, nil, fmt.Errorf("signature outputs: %w", err)
	}
	return inputs, outputs, nil
}

func orderedEntries(raw json.RawMessage) ([]sigEntry, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("expected an object")
	}
	var out []sigEntry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var e sigEntry
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
		e.key = key
		if e.Name == "" {
			e.Name = key
		}
		out = append(out, e)
	}
	return out, nil
}

// Attribute accessors. They return errors rather than panicking on
// unexpected encodings.

type attrs struct {
	node string
	op   string
	m    map[string]jsonAttr
}

func (a attrs) errf(name, format string, args ...any) error {
	return fmt.Errorf("node %q (%s): attr %s: %s", a.node, a.op, name, fmt.Sprintf(format, args...))
}

func (a attrs) has(name string) bool { _, ok := a.m[name]; return ok }

func decodeAttrString(s string) string {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return string(b)
	}
	return s
}

func (a attrs) str(name, def string) (string, error) {
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	if v.S == nil {
		return "", a.errf(name, "not a string")
	}
	return decodeAttrString(*v.S), nil
}

func (a attrs) int(name string, def int) (int, error) {
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	if v.I == nil {
		return 0, a.errf(name, "not an int")
	}
	return int(*v.I), nil
}

func (a attrs) float(name string, def float64) (float64, error) {
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	if v.F == nil {
		if v.I != nil {
			return float64(*v.I), nil
		}
		return 0, a.errf(name, "not a float")
	}
	return float64(*v.F), nil
}

func (a attrs) bool(name string, def bool) (bool, error) {
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	if v.B == nil {
		return false, a.errf(name, "not a bool")
	}
	return *v.B, nil
}

func (a attrs) ints(name string, def []int) ([]int, error) {
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	if v.List == nil {
		return nil, a.errf(name, "not a list")
	}
	out := make([]int, len(v.List.I))
	for i, x := range v.List.I {
		out[i] = int(x)
	}
	return out, nil
}

func (a attrs) strs(name string) ([]string, error) {
	v, ok := a.m[name]
	if !ok {
		return nil, nil
	}
	if v.List == nil {
		return nil, a.errf(name, "not a list")
	}
	out := make([]string, len(v.List.S))
	for i, s := range v.List.S {
		out[i] = decodeAttrString(s)
	}
	return out, nil
}

func (a attrs) dtype(name string) (string, error) {
	v, ok := a.m[name]
	if !ok {
		return "", nil
	}
	if v.Type == nil {
		return "", a.errf(name, "not a type")
	}
	return *v.Type, nil
}

func shapeFromJSON(s *jsonShape) []int {
	if s == nil || s.UnknownRank {
		return nil
	}
	out := make([]int, len(s.Dim))
	for i, d := range s.Dim {
		out[i] = int(d.Size)
	}
	return out
}

// tfDtype maps a TensorFlow DataType enum name to the tfjs dtype name.
func tfDtype(t string) (string, error) {
	switch t {
	case "DT_FLOAT", "DT_HALF", "DT_DOUBLE", "DT_BFLOAT16", "":
		return "float32", nil
	case "DT_INT32", "DT_INT64", "DT_INT8", "DT_UINT8", "DT_INT16", "DT_UINT16", "DT_UINT32", "DT_UINT64":
		return "int32", nil
	case "DT_BOOL":
		return "bool", nil
	case "DT_STRING":
		return "", fmt.Errorf("string tensors are not supported")
	}
	return "", fmt.Errorf("unsupported dtype %s", t)
}
