package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/nagare-iot/nagare/internal/client"
	"github.com/nagare-iot/nagare/internal/dashboard"
	"github.com/nagare-iot/nagare/internal/flow"
)

func init() {
	commands["apply"] = command{"create or update apps and dashboards on a server from their YAML files (apply -f app.yaml)", runApply}
}

// stdin is what "-f -" reads.
var stdin io.Reader = os.Stdin

// appFile is an app definition as read from -f.
type appFile struct {
	name string // as shown in messages: the path, or <stdin>
	src  []byte
}

// readAppFiles reads the -f arguments; "-" is standard input.
func readAppFiles(files []string) ([]appFile, []error) {
	var out []appFile
	var errs []error
	seenStdin := false
	for _, f := range files {
		if f == "-" {
			if seenStdin {
				errs = append(errs, errors.New("-f - (standard input) can be given once"))
				continue
			}
			seenStdin = true
			b, err := io.ReadAll(io.LimitReader(stdin, flow.MaxAppBytes+1))
			if err != nil {
				errs = append(errs, fmt.Errorf("reading standard input: %w", err))
				continue
			}
			out = append(out, appFile{"<stdin>", b})
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, appFile{f, b})
	}
	return out, errs
}

// parseLocal validates a file offline, with this build's API operations.
func (f appFile) parseLocal() (*flow.App, error) {
	if len(f.src) > flow.MaxAppBytes {
		return nil, &flow.ParseError{File: f.name, Problems: []flow.Problem{{Line: 1, Col: 1, Msg: fmt.Sprintf("an app definition is at most %d bytes", flow.MaxAppBytes)}}}
	}
	return flow.Parse(f.name, f.src, flow.Lookup{Operation: isOperation})
}

// problemsError lists server-reported problems under a file's name, in the
// format of local validation.
func problemsError(file string, ps []flow.ProblemView) *flow.ParseError {
	pe := &flow.ParseError{File: file}
	for _, p := range ps {
		pe.Problems = append(pe.Problems, flow.Problem{Line: p.Line, Col: p.Column, Msg: p.Message})
	}
	return pe
}

// serverInvalid is an app the server refused, with its problems (the
// server names the file app.yaml; the caller knows the real name).
type serverInvalid struct {
	problems []flow.ProblemView
	err      error
}

func (e *serverInvalid) Error() string { return e.err.Error() }
func (e *serverInvalid) Unwrap() error { return e.err }

// putDefinition creates or replaces an app (under /v1/flux/apps) or a
// dashboard (under /v1/dashboards) from its YAML; it returns the version.
func putDefinition(ctx context.Context, c *client.Client, collection, name string, src []byte) (version int64, created bool, err error) {
	h := http.Header{"Content-Type": {"application/yaml"}}
	res, body, err := c.Do(ctx, "PUT", collection+"/"+url.PathEscape(name), bytes.NewReader(src), h)
	if err != nil {
		var ans struct{ Problems []flow.ProblemView }
		if json.Unmarshal(body, &ans) == nil && len(ans.Problems) > 0 {
			return 0, false, &serverInvalid{ans.Problems, err}
		}
		return 0, false, err
	}
	var v struct{ Version int64 }
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, false, fmt.Errorf("reading the answer: %w", err)
	}
	return v.Version, res.StatusCode == http.StatusCreated, nil
}

// definition is what a file defines: an app or a dashboard (a file with
// top-level panels).
type definition struct {
	kind, id, collection string // id: the app's or dashboard's name
}

func (f appFile) parseAny() (*definition, error) {
	if d, err, ok := f.parseDashboard(); ok {
		if err != nil {
			return nil, err
		}
		return &definition{"dashboard", d.Name, "/v1/dashboards"}, nil
	}
	app, err := f.parseLocal()
	if err != nil {
		return nil, err
	}
	return &definition{"app", app.Name, "/v1/flux/apps"}, nil
}

// parseDashboard parses the file as a dashboard when it is one (ok: it has
// top-level panels).
func (f appFile) parseDashboard() (d *dashboard.Dashboard, err error, ok bool) {
	var top map[string]any
	if yaml.Unmarshal(f.src, &top) != nil {
		return nil, nil, false
	}
	if _, ok := top["panels"]; !ok {
		return nil, nil, false
	}
	d, err = dashboard.Parse(f.name, f.src)
	return d, err, true
}

// validateRemote runs the server's checks (credentials, operations) on a
// file and returns its problems.
func validateRemote(ctx context.Context, c *client.Client, src []byte) ([]flow.ProblemView, error) {
	h := http.Header{"Content-Type": {"application/yaml"}}
	_, body, err := c.Do(ctx, "POST", "/v1/flux/validate", bytes.NewReader(src), h)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Valid    bool
		Problems []flow.ProblemView
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if !ans.Valid && len(ans.Problems) == 0 {
		return nil, errors.New("the server found the app invalid but listed no problem")
	}
	return ans.Problems, nil
}

// mergeProblems adds the server's problems to the local ones (which the
// server finds again), in file order.
func mergeProblems(file string, local error, remote []flow.ProblemView) error {
	pe := &flow.ParseError{File: file}
	var lp *flow.ParseError
	if errors.As(local, &lp) {
		pe.Problems = append(pe.Problems, lp.Problems...)
	} else if local != nil {
		return local
	}
	seen := map[flow.Problem]bool{}
	for _, p := range pe.Problems {
		seen[p] = true
	}
	for _, p := range problemsError(file, remote).Problems {
		if !seen[p] {
			seen[p] = true
			pe.Problems = append(pe.Problems, p)
		}
	}
	if len(pe.Problems) == 0 {
		return nil
	}
	sort.SliceStable(pe.Problems, func(i, j int) bool {
		a, b := pe.Problems[i], pe.Problems[j]
		return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
	})
	return pe
}

func runApply(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nagare apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files fileList
	fs.Var(&files, "f", "app YAML file (repeatable; - reads standard input)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: nagare apply -f app.yaml [-f other.yaml]

Creates or replaces each app (PUT /v1/flux/apps/{name}) or dashboard (a file
with panels: PUT /v1/dashboards/{name}), the name taken from the file, on
the server named by NAGARE_ENDPOINT, logging in with NAGARE_AUTH_KEY_ID and
NAGARE_AUTH_KEY. Every file is validated locally first; if any has a problem,
all problems are reported with file:line:column and nothing is sent. Problems
only the server can find (a missing credential) are reported the same way.

Flags:`)
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
	apps, errs := readAppFiles(files)
	for _, err := range errs {
		fmt.Fprintf(stderr, "nagare apply: %v\n", err)
	}
	type checked struct {
		appFile
		*definition
	}
	var todo []checked
	bad := len(errs) > 0
	defined := map[string]string{} // kind/name → file
	for _, f := range apps {
		def, err := f.parseAny()
		if err != nil {
			fmt.Fprintln(stderr, err)
			bad = true
			continue
		}
		if other, dup := defined[def.kind+"/"+def.id]; dup {
			fmt.Fprintf(stderr, "nagare apply: %s and %s both define %s %s\n", other, f.name, def.kind, def.id)
			bad = true
			continue
		}
		defined[def.kind+"/"+def.id] = f.name
		todo = append(todo, checked{f, def})
	}
	if bad {
		fmt.Fprintln(stderr, "nagare apply: nothing was applied")
		return 1
	}
	ctx := context.Background()
	c, err := client.FromEnv(ctx, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "nagare apply: %v\n", err)
		return 1
	}
	code := 0
	for _, f := range todo {
		version, created, err := putDefinition(ctx, c, f.collection, f.id, f.src)
		var inv *serverInvalid
		switch {
		case errors.As(err, &inv):
			fmt.Fprintln(stderr, problemsError(f.name, inv.problems))
			code = 1
		case err != nil:
			fmt.Fprintf(stderr, "nagare apply: %s: %v\n", f.name, err)
			code = 1
		default:
			what := "updated"
			if created {
				what = "created"
			}
			fmt.Fprintf(stdout, "%s %s %s (version %d)\n", f.kind, f.id, what, version)
		}
	}
	return code
}
