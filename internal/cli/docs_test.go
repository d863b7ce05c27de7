package cli

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/api.md and docs/configuration.md")

// TestGeneratedDocs keeps docs/ true to the code.
func TestGeneratedDocs(t *testing.T) {
	for file, gen := range map[string]func() string{
		"../../docs/api.md":             APIDoc,
		"../../docs/configuration.md":   ConfigDoc,
		"../../docs/flow-components.md": FlowDoc,
	} {
		got := gen()
		if *update {
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil || string(want) != got {
			t.Errorf("%s is out of date: run go test ./internal/cli -update", file)
		}
	}
}
