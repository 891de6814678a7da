// Package reliability holds cairn's crash, restart, race, hostile-input and
// auth tests (GitHub issue 8). They run the real cairn binary, built once
// per test run, against real redis-server processes and speak HTTP to it,
// as a user would; docs/reliability.md says what each one shows.
//
// Sizes: `go test` runs a few hundred instances and a handful of kills;
// CAIRN_SOAK=1 runs the full 2,000 instances with many more kills and
// restarts (make soak).
package reliability
