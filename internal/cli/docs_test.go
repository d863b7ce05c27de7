package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
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

// TestConceptPages keeps the generated parts of the concept pages true.
func TestConceptPages(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	blocks := 0
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		blocks += strings.Count(string(src), "<!-- generated: ")
		got, err := ConceptBlocks(string(src))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if got == string(src) {
			continue
		}
		if *update {
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s: a generated part is out of date: run go test ./internal/cli -update", file)
	}
	if blocks == 0 {
		t.Error("no concept page embeds a generated part")
	}
	if _, err := ConceptBlocks("<!-- generated: action nope -->\n<!-- end generated -->"); err == nil {
		t.Error("an unknown kind was accepted")
	}
}
