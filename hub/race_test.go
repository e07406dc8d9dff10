//go:build race

package hub_test

// raceEnabled scales load tests down: the race detector slows the server
// and the clients sharing these two cores by an order of magnitude.
const raceEnabled = true
