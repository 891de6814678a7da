package redistest_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redistest"
)

// do sends one inline command and returns the first reply line.
func do(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "$") && line != "$-1" {
		v, _ := r.ReadString('\n')
		return strings.TrimSpace(v)
	}
	return line
}

func TestStartStop(t *testing.T) {
	s := redistest.Start(t)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Fatalf("URL = %q", s.URL())
	}
	if got := do(t, s.Addr(), "SET k v"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	// Without AOF a restart starts empty, on the same address.
	s.Restart(t)
	if got := do(t, s.Addr(), "GET k"); got != "$-1" {
		t.Fatalf("GET after restart without AOF: %q", got)
	}
	s.Stop()
	if _, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond); err == nil {
		t.Fatal("server still listening after Stop")
	}
	s.Stop() // no-op
}

func TestAOFSurvivesKill(t *testing.T) {
	s := redistest.StartWith(t, redistest.StartOpts{AOF: true})
	if got := do(t, s.Addr(), "SET k v"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	s.Kill()
	s.Restart(t)
	if got := do(t, s.Addr(), "GET k"); got != "v" {
		t.Fatalf("GET after kill+restart with AOF: %q", got)
	}
}
