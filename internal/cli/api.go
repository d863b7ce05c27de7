package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/nagare-iot/nagare/internal/client"
)

func init() {
	commands["api"] = command{"call any /v1 API operation on a running server", runAPI}
}

func runAPI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nagare api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	body := fs.String("d", "", "request body; @FILE reads a file, @- standard input")
	ctype := fs.String("H", "application/json", "Content-Type of the body")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nagare api [-d BODY] [-H TYPE] METHOD PATH\n\nExample: nagare api GET /v1/devices\n         nagare api -d '{\"tags\":{\"name\":\"lab\"}}' POST /v1/groups\n\nReads NAGARE_ENDPOINT, NAGARE_AUTH_KEY_ID, NAGARE_AUTH_KEY.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	method, path := strings.ToUpper(fs.Arg(0)), fs.Arg(1)
	if !strings.HasPrefix(path, "/") {
		fmt.Fprintf(stderr, "nagare api: PATH must start with /, e.g. /v1/devices\n")
		return 2
	}
	ctx := context.Background()
	c, err := client.FromEnv(ctx, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "nagare api: %v\n", err)
		return 1
	}
	var rd io.Reader
	h := http.Header{}
	if *body != "" {
		b, err := readArg(*body)
		if err != nil {
			fmt.Fprintf(stderr, "nagare api: -d: %v\n", err)
			return 2
		}
		rd = bytes.NewReader(b)
		h.Set("Content-Type", *ctype)
	}
	// Redirects (file downloads) are followed, as soracom-cli does.
	_, out, err := c.Do(ctx, method, path, rd, h)
	if len(out) > 0 {
		stdout.Write(out)
		if out[len(out)-1] != '\n' {
			fmt.Fprintln(stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "nagare api: %v\n", err)
		return 1
	}
	return 0
}

func readArg(s string) ([]byte, error) {
	switch {
	case s == "@-":
		return io.ReadAll(os.Stdin)
	case strings.HasPrefix(s, "@"):
		return os.ReadFile(s[1:])
	}
	return []byte(s), nil
}
