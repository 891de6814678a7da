package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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
	addr   string
	dir    string
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	unlock func()
}

// startPrivateRedis starts redis-server with its data in dir and waits until
// it answers PING. Only one cairn may use a directory at a time.
func startPrivateRedis(ctx context.Context, dir string) (*privateRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedisServer
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("private redis: %w", err)
	}
	unlock, err := lockDir(filepath.Join(dir, "cairn.lock"))
	if err != nil {
		return nil, fmt.Errorf("private redis: %s is in use by another cairn serve (%v); stop it, or pass --redis to share a Redis", dir, err)
	}
	// A free port may be taken between probe and bind: try a few.
	for attempt := 0; ; attempt++ {
		var r *privateRedis
		r, err = launchRedis(ctx, bin, dir)
		if err == nil {
			r.unlock = unlock
			return r, nil
		}
		if attempt == 4 || ctx.Err() != nil {
			unlock()
			return nil, err
		}
	}
}

func launchRedis(ctx context.Context, bin, dir string) (*privateRedis, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("private redis: finding a free port: %w", err)
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--dir", dir,
		"--appendonly", "yes",
		"--appendfsync", "everysec",
		"--save", "",
		"--daemonize", "no",
		"--logfile", "redis.log",
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// Own process group: a Ctrl-C in the terminal must reach cairn only,
	// which stops redis last, after the engine has finished.
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("private redis: starting %s: %w", bin, err)
	}
	r := &privateRedis{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()

	deadline := time.Now().Add(redisStartTimeout)
	for {
		err := pingRedis(r.addr)
		if err == nil {
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("private redis: redis-server exited: %s", r.logTail())
		case <-ctx.Done():
			r.kill()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			r.kill()
			return nil, fmt.Errorf("private redis: no answer on %s after %s (%v): %s", r.addr, redisStartTimeout, err, r.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the redis:// URL of the private server.
func (r *privateRedis) URL() string { return "redis://" + r.addr + "/0" }

// Done is closed when the process has exited.
func (r *privateRedis) Done() <-chan struct{} { return r.done }

// Stop shuts redis down gracefully (SIGTERM: it flushes the append-only
// file), killing it if it does not exit in time, and releases the directory.
func (r *privateRedis) Stop() error {
	defer r.unlock()
	select {
	case <-r.done:
		return fmt.Errorf("private redis had already exited: %s", r.logTail())
	default:
	}
	_ = r.cmd.Process.Signal(stopSignal)
	select {
	case <-r.done:
		return nil
	case <-time.After(redisStopTimeout):
		r.kill()
		return fmt.Errorf("private redis did not stop within %s and was killed", redisStopTimeout)
	}
}

func (r *privateRedis) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// logTail is the end of redis.log, for error messages.
func (r *privateRedis) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// pingRedis sends an inline PING and expects +PONG; a server still loading
// its data answers -LOADING and is not ready.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return errors.New(line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
