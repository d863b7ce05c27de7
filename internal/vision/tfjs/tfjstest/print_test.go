package tfjstest

import "testing"

// TestPrintModelsDir prints where the test models are (scripts/bench.sh
// hands that directory to the tfjs-wasm side of the vision benchmark).
func TestPrintModelsDir(t *testing.T) {
	if !testing.Verbose() {
		t.Skip("prints the models directory with -v")
	}
	Models(t)
	t.Logf("models: %s", Path(t))
}
