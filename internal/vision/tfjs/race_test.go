//go:build race

package tfjs

const raceEnabled = true
