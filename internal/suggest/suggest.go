// Package suggest finds the known word a user probably meant, for
// "unknown field" messages in configuration and app files.
package suggest

import "fmt"

// DidYouMean returns ` (did you mean "x"?)` for the known word closest to
// word (at most two edits away), or "" when none is close.
func DidYouMean(word string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(word, k); d < bestD && d < len(k) {
			best, bestD = k, d
		}
	}
	if best == "" || best == word {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
