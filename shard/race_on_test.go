//go:build race

package shard

// raceEnabled is true under -race, where the big tests use smaller sizes:
// the race detector makes every memory access about ten times slower.
const raceEnabled = true
