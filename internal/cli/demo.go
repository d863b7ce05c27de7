package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/demo"
)

func init() {
	commands["demo"] = command{"run every example system on one server with simulated camera, buttons and LINE guests (demo)", runDemo}
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	set := map[string]string{}
	var file string
	var check bool
	fs := config.FlagSet("nagare demo", set, &file, &check)
	fs.SetOutput(stderr)
	period := fs.Duration("period", 30*time.Second, "timer period of every example (5m in the seeds) and of the simulated guests and buttons")
	photos := fs.String("photos", "../shared/testdata/vision", "directory of JPEGs the simulated LINE guests send (missing: camera stills)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: nagare demo [flags]

Starts nagare with every example system of examples/ loaded and running: a
simulated RTSP camera streaming real footage (Debian's vtest.avi, through
ffmpeg), simulated call buttons and LINE guests, timers every -period, and
an outbox standing in for Slack and LINE (console → Dashboards →
demo-outbox). Nothing leaves the machine. It prints the URLs and a login.
Without --data it uses a fresh temporary data directory; with the --data of
an earlier demo it carries on where that one stopped (nothing is set up
twice; the camera and the outbox are pointed at this run's ports).

Takes every nagare serve flag too.

Flags:`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *period < 5*time.Second {
		fmt.Fprintf(stderr, "nagare demo: -period %s: at least 5s\n", *period)
		return 2
	}
	if set["data"] == "" && os.Getenv("NAGARE_DATA") == "" {
		dir, err := os.MkdirTemp("", "nagare-demo-")
		if err != nil {
			fmt.Fprintf(stderr, "nagare demo: %v\n", err)
			return 1
		}
		set["data"] = dir
	}
	cfg, err := config.Load(file, set, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "nagare demo: %v\n", err)
		return 1
	}
	if set["log-level"] == "" && os.Getenv("NAGARE_LOG_LEVEL") == "" {
		cfg.LogLevel = "warn" // keep the welcome text readable
	}
	demo.Prepare(cfg)
	if check {
		fmt.Fprintln(stdout, "nagare demo: configuration OK")
		return 0
	}
	setupLogging(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, cfg, demo.Options{Period: *period, Photos: *photos, Out: stdout}); err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("demo stopped with an error", "err", err)
		return 1
	}
	return 0
}
