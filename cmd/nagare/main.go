// Command nagare is the nagare IoT application platform: one binary that
// serves the API, stores data and files, and (in later releases) runs flows.
package main

import (
	"os"

	"github.com/nagare-iot/nagare/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
