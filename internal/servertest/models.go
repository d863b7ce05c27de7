package servertest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/vision/models"
	"github.com/nagare-iot/nagare/internal/vision/tfjs/tfjstest"
)

// WithVisionModels returns a Start option that puts the offline vision
// models into the data directory (as `nagare models fetch` leaves them),
// so a test server analyses images without downloading the package.
func WithVisionModels(t testing.TB) func(*config.Config) {
	t.Helper()
	src := tfjstest.Models(t)
	return func(c *config.Config) {
		dir := models.Dir(c.DataDir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name := range models.Files {
			b, err := fs.ReadFile(src, name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
