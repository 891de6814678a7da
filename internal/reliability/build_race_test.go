//go:build race

package reliability

// raceEnabled builds the cairn binary with the race detector when the tests
// run with it, so races inside the server are reported too.
const raceEnabled = true
