// Package examples holds the seed systems as app and dashboard files, one
// folder each with a README. `nagare demo` loads them from here (they are
// embedded in the binary), and the tests in this directory run each one
// end to end.
package examples

import "embed"

// Files are the example app and dashboard files, by path (crowding/app.yaml).
//
//go:embed */*.yaml
var Files embed.FS
