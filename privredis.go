package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairnhq/cairn/internal/redisproc"
)

// errNoRedisServer is the one line shown when the embedded default cannot run.
var errNoRedisServer = errors.New("redis-server is not installed: install it (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis) or pass --redis redis://HOST:6379 to use a running Redis")

// Bounds of the private redis-server's life.
const (
	redisStartTimeout = 60 * time.Second // it may be loading a large AOF
	redisStopTimeout  = 30 * time.Second
)

// privateRedis is a redis-server child process that listens on a free
// loopback port and keeps its data (append-only file on) in its directory.
type privateRedis struct {
	proc   *redisproc.Process
	unlock func()
}

// startPrivateRedis starts redis-server with its data in dir and waits until
// it answers PING. Only one cairn may use a directory at a time.
func startPrivateRedis(ctx context.Context, dir string, fsyncAlways bool) (*privateRedis, error) {
	fsync := "everysec"
	if fsyncAlways {
		fsync = "always" // --durability fsync: every write on disk before its answer
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("private redis: %w", err)
	}
	unlock, err := lockDir(filepath.Join(dir, "cairn.lock"))
	if err != nil {
		return nil, fmt.Errorf("private redis: %s is in use by another cairn serve (%v); stop it, or pass --redis to share a Redis", dir, err)
	}
	proc, err := redisproc.Start(ctx, redisproc.Options{
		Dir: dir,
		Args: []string{
			"--protected-mode", "yes",
			"--appendonly", "yes",
			"--appendfsync", fsync,
		},
		StartTimeout: redisStartTimeout,
		// A Ctrl-C in the terminal must reach cairn only, which stops
		// redis last, after the engine has finished.
		Detached: true,
	})
	if err != nil {
		unlock()
		if errors.Is(err, redisproc.ErrNotInstalled) {
			return nil, errNoRedisServer
		}
		return nil, fmt.Errorf("private redis: %w", err)
	}
	return &privateRedis{proc: proc, unlock: unlock}, nil
}

// URL is the redis:// URL of the private server.
func (r *privateRedis) URL() string { return "redis://" + r.proc.Addr() + "/0" }

// Done is closed when the process has exited.
func (r *privateRedis) Done() <-chan struct{} { return r.proc.Done() }

// Stop shuts redis down gracefully (SIGTERM: it flushes the append-only
// file), killing it if it does not exit in time, and releases the directory.
func (r *privateRedis) Stop() error {
	defer r.unlock()
	if err := r.proc.Stop(redisStopTimeout); err != nil {
		return fmt.Errorf("private redis: %w", err)
	}
	return nil
}

// logTail is the end of redis.log, for error messages.
func (r *privateRedis) logTail() string { return r.proc.LogTail() }
