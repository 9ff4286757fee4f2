//go:build !race

package jid

const raceEnabled = false
