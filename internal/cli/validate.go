package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/server"
)

func init() {
	commands["validate"] = command{"check app YAML files and report every problem (validate -f app.yaml)", runValidate}
}

// isOperation reports whether name is an API operation of this build.
func isOperation(name string) bool {
	for _, op := range server.Operations() {
		if op.Name == name {
			return true
		}
	}
	return false
}

type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nagare validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files fileList
	fs.Var(&files, "f", "app YAML file (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nagare validate -f app.yaml [-f other.yaml]\n\nChecks app files offline: structure, field types, expressions and templates,\nchannel references. Every problem is reported with its line and column.\nCredential references are checked when the app is applied to a server.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(files) == 0 || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	code := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "nagare validate: %v\n", err)
			code = 1
			continue
		}
		app, err := flow.Parse(f, src, flow.Lookup{Operation: isOperation})
		if err != nil {
			fmt.Fprintln(stderr, err)
			code = 1
			continue
		}
		actions := 0
		for _, c := range app.Channels {
			actions += len(c.Actions)
		}
		fmt.Fprintf(stdout, "%s: OK (app %s: %d channel(s), %d action(s))\n", f, app.Name, len(app.Channels), actions)
	}
	return code
}
