// Package reliability holds cairn's crash, restart, takeover, Redis
// Cluster, race, hostile-input and auth tests. They run the real cairn
// binary, built once per test run, against real redis-server processes
// (one server, or a 3+3 cluster) and speak HTTP to it, as a user would;
// docs/reliability.md says what each one shows.
//
// Sizes: `go test` runs a few hundred instances and a handful of kills
// and failovers; CAIRN_SOAK=1 runs the full 2,000 instances with many more
// kills, restarts and failovers (make soak).
package reliability
