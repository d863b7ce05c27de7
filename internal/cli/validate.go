package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nagare-iot/nagare/internal/client"
	"github.com/nagare-iot/nagare/internal/server"
)

func init() {
	commands["validate"] = command{"check app and dashboard YAML files and report every problem (validate -f app.yaml)", runValidate}
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
	fs.Var(&files, "f", "app or dashboard YAML file (repeatable; - reads standard input)")
	remote := fs.Bool("remote", false, "also run the server's checks (credentials exist, API operations exist there) via POST /v1/flux/validate")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nagare validate [-remote] -f app.yaml [-f other.yaml]\n\nChecks app files offline: structure, field types, expressions and templates,\nchannel references; and dashboard files (those with panels). Every problem is reported with its line and column.\nCredential references are checked by the server: with -remote (which reads\nNAGARE_ENDPOINT, NAGARE_AUTH_KEY_ID and NAGARE_AUTH_KEY), or when the app is\napplied.\n\nFlags:")
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
	apps, errs := readAppFiles(files)
	for _, err := range errs {
		fmt.Fprintf(stderr, "nagare validate: %v\n", err)
		code = 1
	}
	var c *client.Client
	if *remote && len(apps) > 0 {
		var err error
		if c, err = client.FromEnv(context.Background(), os.Getenv); err != nil {
			fmt.Fprintf(stderr, "nagare validate: -remote: %v\n", err)
			return 1
		}
	}
	for _, f := range apps {
		if d, derr, ok := f.parseDashboard(); ok {
			if derr != nil {
				fmt.Fprintln(stderr, derr)
				code = 1
			} else {
				fmt.Fprintf(stdout, "%s: OK (dashboard %s: %d panel(s))\n", f.name, d.Name, len(d.Panels))
			}
			continue
		}
		app, err := f.parseLocal()
		if c != nil {
			ps, rerr := validateRemote(context.Background(), c, f.src)
			if rerr != nil {
				fmt.Fprintf(stderr, "nagare validate: %s: server checks: %v\n", f.name, rerr)
				code = 1
				if err == nil {
					continue
				}
			}
			err = mergeProblems(f.name, err, ps)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			code = 1
			continue
		}
		actions := 0
		for _, c := range app.Channels {
			actions += len(c.Actions)
		}
		fmt.Fprintf(stdout, "%s: OK (app %s: %d channel(s), %d action(s))\n", f.name, app.Name, len(app.Channels), actions)
	}
	return code
}
