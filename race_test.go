//go:build race

package main

// raceEnabled makes TestMain build the cairn binary with the race detector
// when the tests themselves run with it.
const raceEnabled = true
