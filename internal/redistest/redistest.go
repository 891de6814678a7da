// Package redistest starts throwaway redis-server processes for tests.
//
// Each Server listens on a free loopback port, keeps its files in the test's
// temporary directory and is stopped by t.Cleanup. Its API deals in address
// strings only, so any package's tests can use it with any client.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// missing is the message when redis-server is not installed.
const missing = "redis-server not found: install it with 'apt-get install -y redis-server'"

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

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
	bin  string
	dir  string
	port int
	opts StartOpts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(missing)
		}
		t.Skip(missing)
	}
	s := &Server{bin: bin, dir: t.TempDir(), opts: opts}
	// A free port can be taken by someone else between probe and bind:
	// try a few.
	for attempt := 0; ; attempt++ {
		s.port, err = freePort()
		if err == nil {
			err = s.launch()
		}
		if err == nil {
			break
		}
		if attempt == 4 {
			t.Fatalf("redistest: %v", err)
		}
	}
	t.Cleanup(s.Kill)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the server's redis:// URL (database 0).
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's working directory (AOF files, log).
func (s *Server) Dir() string { return s.dir }

// Stop shuts the server down gracefully (SIGTERM) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop() { s.signal(syscallTERM) }

// Kill stops the server abruptly (SIGKILL), as a crash would, and waits for
// it to exit. Killing a stopped server does nothing.
func (s *Server) Kill() { s.signal(os.Kill) }

// Restart stops the server if it runs and starts it again on the same port
// and directory; with StartOpts.AOF its data is kept.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var err error
	// The port may linger briefly after the old process exits.
	deadline := time.Now().Add(startTimeout)
	for {
		if err = s.launch(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) signal(sig os.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (s *Server) launch() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "redis.log",
	}
	if s.opts.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	deadline := time.Now().Add(startTimeout)
	for {
		err := ping(s.Addr())
		if err == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on port %d did not answer PING: %v: %s", s.port, err, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// ping sends an inline PING and expects +PONG (a loading server answers
// -LOADING, which is not ready yet).
func ping(addr string) error {
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
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New(strings.TrimSpace(line))
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
