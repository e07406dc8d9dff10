//go:build race

package wire

// raceEnabled is true under -race, which adds allocations of its own.
const raceEnabled = true
