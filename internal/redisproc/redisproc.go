// Package redisproc launches redis-server child processes on loopback: the
// private Redis of cairn serve, the test helpers' servers and clusters.
package redisproc

import (
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

// ErrNotInstalled is returned when the redis-server (or, for a cluster,
// redis-cli) binary is not on PATH.
var ErrNotInstalled = errors.New("not installed")

// DefaultStartTimeout bounds how long a server may take to answer PING when
// Options.StartTimeout is zero.
const DefaultStartTimeout = 10 * time.Second

// logFile is redis-server's log, in its directory.
const logFile = "redis.log"

// Options configures one redis-server.
type Options struct {
	// Dir is the server's working directory (data files, redis.log); it
	// must exist.
	Dir string
	// Port is the port to listen on; 0 picks a free one, and tries another
	// if it is taken between the probe and redis-server's bind.
	Port int
	// Args are further redis-server arguments (persistence, cluster mode,
	// limits). They come after the defaults (loopback bind, log file,
	// snapshots off), so they may override them.
	Args []string
	// StartTimeout bounds the wait for the first PONG (a server loading a
	// large append-only file answers LOADING for a while); 0 means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// Detached gives redis-server its own process group, so that a
	// terminal's Ctrl-C reaches only the parent, which stops it last, and
	// has Linux send it SIGTERM rather than SIGKILL should the parent die
	// without stopping it. Without it the server is throwaway (tests).
	Detached bool
	// Bin is the redis-server binary to run; "" looks redis-server up on
	// PATH.
	Bin string
}

// Process is one running redis-server child.
type Process struct {
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Start launches redis-server and waits until it answers PING. The error
// wraps ErrNotInstalled when redis-server is not on PATH.
func Start(ctx context.Context, o Options) (*Process, error) {
	name := o.Bin
	if name == "" {
		name = "redis-server"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%s %w", name, ErrNotInstalled)
	}
	if o.Port != 0 {
		return launch(ctx, bin, o.Port, o)
	}
	for attempt := 0; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		p, err := launch(ctx, bin, port, o)
		if err == nil || attempt == 4 || ctx.Err() != nil {
			return p, err
		}
	}
}

func launch(ctx context.Context, bin string, port int, o Options) (*Process, error) {
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", o.Dir,
		"--daemonize", "no",
		"--logfile", logFile,
		// Persistence, when wanted, is the append-only file.
		"--save", "",
	}, o.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = o.Dir
	cmd.SysProcAttr = procAttr(o.Detached)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &Process{port: port, dir: o.Dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()

	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	deadline := time.Now().Add(timeout)
	for {
		err := p.ready()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("redis-server on port %d exited: %s", port, p.LogTail())
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("redis-server: no answer on %s after %s (%v): %s", p.Addr(), timeout, err, p.LogTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ready says whether the server answers PING, and is this process: a port
// taken between probe and bind has another server answering there, while
// this one exits.
func (p *Process) ready() error {
	if err := Ping(p.Addr()); err != nil {
		return err
	}
	info, err := DoString(p.Addr(), "INFO", "server")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "\r\nprocess_id:"+strconv.Itoa(p.cmd.Process.Pid)+"\r\n") {
		return fmt.Errorf("another server answers on %s", p.Addr())
	}
	return nil
}

// Addr is the server's host:port.
func (p *Process) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// Port is the port the server listens on.
func (p *Process) Port() int { return p.port }

// Pid is the server's process id (for reading its CPU time).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop shuts redis-server down gracefully (SIGTERM: it flushes its
// append-only file) and waits for it to exit, killing it after timeout. It
// reports a server that had already exited, or had to be killed.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return fmt.Errorf("redis-server had already exited: %s", p.LogTail())
	default:
	}
	_ = p.cmd.Process.Signal(stopSignal)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("redis-server did not stop within %s and was killed", timeout)
	}
}

// Kill stops redis-server abruptly (SIGKILL), as a crash would, and waits
// for it to exit. Killing an exited server does nothing.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// LogTail is the end of redis.log, for error messages.
func (p *Process) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, logFile))
	return lastLines(string(b), 5)
}

// Ping sends PING and expects PONG; a server still loading its data
// answers LOADING and is not ready.
func Ping(addr string) error {
	v, err := Do(addr, "PING")
	if err != nil {
		return err
	}
	if v != "PONG" {
		return fmt.Errorf("PING answered %v", v)
	}
	return nil
}

// FreePort is a loopback port no one listens on at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
