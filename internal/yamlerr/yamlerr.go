// Package yamlerr owns how problems in user-written YAML files (flow apps,
// dashboards) are reported: each with its line and column, all of a file
// at once, in messages and in API answers.
package yamlerr

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Problem is one thing wrong with a file.
type Problem struct {
	Line, Col int
	Msg       string
}

// ParseError lists every problem found in a file.
type ParseError struct {
	File     string
	Problems []Problem
}

func (e *ParseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s:%d:%d: %s", e.File, p.Line, p.Col, p.Msg)
	}
	return b.String()
}

// ProblemView is one problem in an API answer.
type ProblemView struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

// Views turns an error into API problems: a *ParseError's own, or the
// error itself at 1:1.
func Views(err error) []ProblemView {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return []ProblemView{{Line: 1, Column: 1, Message: err.Error()}}
	}
	out := make([]ProblemView, 0, len(pe.Problems))
	for _, p := range pe.Problems {
		out = append(out, ProblemView{Line: p.Line, Column: p.Col, Message: p.Msg})
	}
	return out
}

// Duration writes d as a user would in a file ("5m", "1h30m"), not as
// time.Duration.String does ("5m0s", "1h30m0s"), so API answers about
// files show their durations the way they were written.
func Duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
