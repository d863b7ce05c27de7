package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
)

func init() {
	commands["camera"] = command{"camera tools: serve a simulated RTSP camera (camera simulate)", cameraCmd}
}

func cameraUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: nagare camera simulate [flags]")
	fmt.Fprintln(w, "\nServes a looping RTSP H.264 stream from a video file, so the camera features can be tried without hardware.")
	fmt.Fprintln(w, "Run 'nagare camera simulate -h' for its flags.")
}

// cameraCmd implements "nagare camera <subcommand>".
func cameraCmd(args []string, stdout, stderr io.Writer) int {
	return dispatch("camera", args, stdout, stderr, cameraUsage, map[string]subcommand{"simulate": cameraSimulate})
}

// cameraSimulate serves the camera until ctx is done.
func cameraSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nagare camera simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "video file (any format ffmpeg reads; transcoded once to H.264). Default: OpenCV's vtest.avi footage if obtainable, else ffmpeg's testsrc2")
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP listen address")
	path := fs.String("path", "/cam", "stream path")
	user := fs.String("user", "", "require this user name (with -pass)")
	pass := fs.String("pass", "", "password for -user")
	methods := fs.String("auth", "basic,digest", "accepted auth methods with -user: basic, digest, digest-sha256 (comma-separated)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nagare camera simulate [flags]\n\nServes a looping RTSP H.264 stream (TCP) until interrupted.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if (*user == "") != (*pass == "") {
		fmt.Fprintln(stderr, "nagare camera simulate: -user and -pass go together")
		return 2
	}

	video := ""
	if *file != "" {
		if _, err := os.Stat(*file); err != nil {
			fmt.Fprintf(stderr, "nagare camera simulate: %v\n", err)
			return 1
		}
		dir, err := os.MkdirTemp("", "nagare-camsim-")
		if err != nil {
			fmt.Fprintf(stderr, "nagare camera simulate: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		video = filepath.Join(dir, "video.ts")
		fmt.Fprintf(stderr, "transcoding %s to H.264 …\n", *file)
		if err := camsim.Transcode(ctx, *file, video, 0); err != nil {
			fmt.Fprintf(stderr, "nagare camera simulate: %v\n", err)
			return 1
		}
	} else {
		var err error
		video, err = camsim.Fixture(ctx, camsim.KindVtest)
		if err != nil {
			fmt.Fprintf(stderr, "real footage unavailable (%v); using testsrc2\n", err)
			if video, err = camsim.Fixture(ctx, camsim.KindTestsrc); err != nil {
				fmt.Fprintf(stderr, "nagare camera simulate: %v\n", err)
				return 1
			}
		}
	}

	cfg := camsim.Config{Addr: *listen, Path: *path, File: video, User: *user, Pass: *pass}
	if *user != "" {
		for _, m := range strings.Split(*methods, ",") {
			if m = strings.TrimSpace(m); m != "" {
				cfg.Methods = append(cfg.Methods, m)
			}
		}
	}
	srv, err := camsim.Start(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "nagare camera simulate: %v\n", err)
		return 1
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "serving %s\n", srv.URL())
	if *user != "" {
		fmt.Fprintf(stdout, "auth: %s, user %q (password as given with -pass)\n", strings.Join(cfg.Methods, "+"), *user)
	}
	fmt.Fprintf(stdout, "try: ffmpeg -rtsp_transport tcp -i %s -frames:v 1 snapshot.jpg\n", srv.URL())
	<-ctx.Done()
	fmt.Fprintln(stderr, "stopping")
	return 0
}
