//go:build race

package c2s_test

// raceEnabled: the race detector makes the embedded SQLite (pure Go) about
// twenty times slower; long stories shrink so that CI stays quick.
const raceEnabled = true
