package redisproc_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redisproc"
)

// start launches a server in the test's directory; a missing redis-server
// skips, or fails under CI=true (redistest cannot be used here: it imports
// this package).
func start(t *testing.T, o redisproc.Options) *redisproc.Process {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	p, err := redisproc.Start(context.Background(), o)
	if errors.Is(err, redisproc.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func TestStartStop(t *testing.T) {
	p := start(t, redisproc.Options{Args: []string{"--maxmemory", "64mb"}})
	if v, err := redisproc.Do(p.Addr(), "CONFIG", "GET", "maxmemory"); err != nil || len(v.([]any)) != 2 || v.([]any)[1] != "67108864" {
		t.Fatalf("CONFIG GET maxmemory: %v %v (Args not passed?)", v, err)
	}
	if v, err := redisproc.Do(p.Addr(), "CONFIG", "GET", "save"); err != nil || v.([]any)[1] != "" {
		t.Fatalf("CONFIG GET save: %v %v, want snapshots off", v, err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if redisproc.Ping(p.Addr()) == nil {
		t.Fatal("still answering after Stop")
	}
	if err := p.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "already exited") {
		t.Fatalf("second Stop: %v, want already exited", err)
	}
}

func TestSamePortAfterKill(t *testing.T) {
	p := start(t, redisproc.Options{})
	p.Kill()
	q := start(t, redisproc.Options{Port: p.Port()})
	if q.Addr() != p.Addr() {
		t.Fatalf("restart on %s, want %s", q.Addr(), p.Addr())
	}
	if err := redisproc.Ping(q.Addr()); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailureSaysWhy(t *testing.T) {
	p := start(t, redisproc.Options{})
	// A second server on a taken port exits; the error carries its log.
	_, err := redisproc.Start(context.Background(), redisproc.Options{Dir: t.TempDir(), Port: p.Port()})
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

func TestDoReplies(t *testing.T) {
	p := start(t, redisproc.Options{})
	for _, c := range []struct {
		args []string
		want any
	}{
		{[]string{"SET", "k", "a\r\nb"}, "OK"},
		{[]string{"GET", "k"}, "a\r\nb"},
		{[]string{"GET", "missing"}, nil},
		{[]string{"INCR", "n"}, int64(1)},
	} {
		if got, err := redisproc.Do(p.Addr(), c.args...); err != nil || got != c.want {
			t.Errorf("%v: %#v %v, want %#v", c.args, got, err, c.want)
		}
	}
	var re redisproc.ReplyError
	if _, err := redisproc.Do(p.Addr(), "INCR", "k"); !errors.As(err, &re) || !strings.HasPrefix(string(re), "ERR") {
		t.Errorf("INCR on a string: %v, want an ERR reply", err)
	}
}

func TestKeySlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]int{
		"123456789":    12739,
		"foo":          12182,
		"{user1000}.a": redisproc.KeySlot("user1000"),
		"cairn:{7}:x":  redisproc.KeySlot("7"),
		"{}x":          redisproc.KeySlot("{}x"),
		"a{}{b}":       redisproc.KeySlot("a{}{b}"),
	} {
		if got := redisproc.KeySlot(key); got != want {
			t.Errorf("KeySlot(%q) = %d, want %d", key, got, want)
		}
	}
}
