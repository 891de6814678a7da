// Package redistest starts throwaway redis-server processes and clusters
// for tests.
//
// Each Server listens on a free loopback port, keeps its files in the test's
// temporary directory and is stopped by t.Cleanup; so is each Cluster. Their
// API deals in address strings only, so any package's tests can use them
// with any client. The launching itself is internal/redisproc's.
package redistest

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redisproc"
)

// install says what to install when a binary is missing.
const install = "install with 'apt-get install -y redis-server redis-tools' (Debian, Ubuntu) or 'brew install redis' (macOS)"

// stopTimeout bounds a graceful stop before the server is killed.
const stopTimeout = 10 * time.Second

// StartOpts configures a Server.
type StartOpts struct {
	// AOF turns the append-only file on (fsync always), so data survives
	// Stop, Kill and Restart. Without it a restarted server starts empty.
	AOF bool
	// Args are extra redis-server arguments, e.g. {"--maxmemory", "64mb"}.
	Args []string
}

// Server is one running (or stopped) redis-server child process.
type Server struct {
	opts redisproc.Options

	mu   sync.Mutex
	proc *redisproc.Process // nil while stopped
}

// Start launches a redis-server with default options. See StartWith.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, StartOpts{})
}

// StartWith launches a redis-server on a free loopback port, waits until it
// answers PING and stops it when the test ends. When redis-server is not on
// PATH the test is skipped, or fails when the environment sets CI=true.
func StartWith(t testing.TB, opts StartOpts) *Server {
	t.Helper()
	args := []string{"--appendonly", "no"}
	if opts.AOF {
		args = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	s := &Server{opts: redisproc.Options{Dir: t.TempDir(), Args: append(args, opts.Args...)}}
	p, err := redisproc.Start(context.Background(), s.opts)
	if err != nil {
		fatal(t, err)
	}
	s.proc = p
	// Restart must come back on the same port.
	s.opts.Port = p.Port()
	t.Cleanup(s.Kill)
	return s
}

// fatal ends the test on a launch error: a skip when a binary is missing,
// unless the environment sets CI=true, where nothing may be skipped.
func fatal(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, redisproc.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skipf("redistest: %v: %s", err, install)
	}
	if errors.Is(err, redisproc.ErrNotInstalled) {
		t.Fatalf("redistest: %v: %s", err, install)
	}
	t.Fatalf("redistest: %v", err)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.opts.Port) }

// URL is the server's redis:// URL (database 0).
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's working directory (AOF files, log).
func (s *Server) Dir() string { return s.opts.Dir }

// Stop shuts the server down gracefully (SIGTERM) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if p := s.take(); p != nil {
		_ = p.Stop(stopTimeout)
	}
}

// Kill stops the server abruptly (SIGKILL), as a crash would, and waits for
// it to exit. Killing a stopped server does nothing.
func (s *Server) Kill() {
	if p := s.take(); p != nil {
		p.Kill()
	}
}

func (s *Server) take() *redisproc.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	return p
}

// Restart stops the server if it runs and starts it again on the same port
// and directory; with StartOpts.AOF its data is kept.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var p *redisproc.Process
	var err error
	// The port may linger briefly after the old process exits.
	deadline := time.Now().Add(redisproc.DefaultStartTimeout)
	for {
		if p, err = redisproc.Start(context.Background(), s.opts); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
}
