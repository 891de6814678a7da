package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
)

// replyErr is a Redis error reply as go-redis returns it.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

func TestTopologyError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("reading: %w", io.EOF), true},
		{replyErr("CLUSTERDOWN The cluster is down"), true},
		{replyErr("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{replyErr("MOVED 3999 127.0.0.1:6381"), true},
		{replyErr("ERR wrong number of arguments"), false},
		{replyErr("NOSCRIPT No matching script"), false},
		{errors.New("redisstore: bad entry"), false},
	} {
		if got := topologyError(c.err); got != c.want {
			t.Errorf("topologyError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestFailoverNote: a failure a failover explains asks for a reload; a
// missing key, a command's own error and a failure after the caller's
// deadline do not.
func TestFailoverNote(t *testing.T) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cc.Close()
	f := followFailovers(cc)
	if f == nil {
		t.Fatal("no failover hook on a cluster client")
	}
	if followFailovers(redis.NewClient(&redis.Options{})) != nil {
		t.Fatal("a failover hook on a single-node client")
	}
	ctx := context.Background()
	ended, cancel := context.WithCancel(ctx)
	cancel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	f.note(ctx, redis.Nil)
	f.note(ctx, replyErr("ERR unknown command"))
	f.note(ended, refused)
	if n := f.reloads.Load(); n != 0 {
		t.Fatalf("%d reloads asked for errors no failover explains", n)
	}
	f.note(ctx, refused)
	if n := f.reloads.Load(); n != 1 {
		t.Fatalf("%d reloads asked after a refused connection, want 1", n)
	}
}
