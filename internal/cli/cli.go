// Package cli implements the nagare command line: serve, version and the
// client commands that talk to a running server.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/server"
)

// Version is set at build time with -ldflags "-X …/cli.Version=v1.2.3".
var Version = "dev"

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func init() {
	commands["serve"] = command{"run the nagare server", runServe}
	commands["version"] = command{"print the version", runVersion}
}

// Main runs the CLI and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nagare: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "nagare — self-hosted IoT application platform")
	fmt.Fprintln(w, "\nUsage: nagare <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'nagare <command> -h' for a command's flags.")
	fmt.Fprintln(w, "Client commands read NAGARE_ENDPOINT (default http://127.0.0.1:8080), NAGARE_AUTH_KEY_ID and NAGARE_AUTH_KEY.")
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
		fmt.Fprintf(stdout, "nagare %s (%s)\n", v, bi.GoVersion)
		return 0
	}
	fmt.Fprintf(stdout, "nagare %s\n", v)
	return 0
}

func runServe(args []string, stdout, stderr io.Writer) int {
	set := map[string]string{}
	var file string
	var check bool
	fs := config.FlagSet("nagare serve", set, &file, &check)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nagare serve [flags]\n\nSettings come from defaults, then the YAML file (-c), then NAGARE_* env, then flags.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, err := config.Load(file, set, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "nagare serve: %v\n", err)
		return 1
	}
	if check {
		fmt.Fprintln(stdout, "nagare serve: configuration OK")
		return 0
	}
	setupLogging(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, server.Options{Stdout: stdout})
	if err != nil {
		slog.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Serve(ctx); err != nil {
		slog.Error("server stopped with an error", "err", err)
		return 1
	}
	return 0
}

// parseFlags parses a command's flags, which take no arguments besides;
// done is true when the command should exit with code (help, or a flag
// error, already reported).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, true
	}
	return 0, false
}

func setupLogging(cfg *config.Config, w io.Writer) {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	if cfg.NodeName != "" {
		h = h.WithAttrs([]slog.Attr{slog.String("node", cfg.NodeName)})
	}
	slog.SetDefault(slog.New(h))
}

// subcommand is one "nagare <command> <sub>" handler; ctx ends on SIGINT
// or SIGTERM.
type subcommand func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// dispatch runs the subcommand args[0] of command name, printing usage for
// help, none or an unknown one.
func dispatch(name string, args []string, stdout, stderr io.Writer, usage func(io.Writer), subs map[string]subcommand) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	run, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nagare %s: unknown subcommand %q\n\n", name, args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args[1:], stdout, stderr)
}
