package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// storeCall is one exported Store method called with arguments that reach
// Redis; its errors, one per item for the methods that answer per item.
type storeCall struct {
	name string
	call func(ctx context.Context, s *S) []error
}

// S abbreviates the Store in everyCall's table.
type S = redisstore.Store

// storeOpts are the options of the stores everyCall calls: with retention,
// so that ExpireFinished reaches Redis.
var storeOpts = redisstore.Options{Partitions: 4, Retention: redisstore.Retention{MaxCount: 10}}

// one, errOf and errOf2 keep the error of a call that returns none, one
// or two values besides it.
func one(err error) []error                        { return []error{err} }
func errOf[T any](_ T, err error) []error          { return []error{err} }
func errOf2[A, B any](_ A, _ B, err error) []error { return []error{err} }

// everyCall calls each exported method of the Store that talks to Redis.
// tr is a transition of an existing instance "a".
func everyCall(tr *interpreter.Transition) []storeCall {
	const hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ref := redisstore.TaskRef{Partition: redisstore.PartitionOf("a", 4), Queue: interpreter.LocalQueue, EntryID: "1-1", Instance: "a", TaskID: "t"}
	return []storeCall{
		{"Init", func(ctx context.Context, s *S) []error { return one(s.Init(ctx)) }},
		{"Ping", func(ctx context.Context, s *S) []error { return one(s.Ping(ctx)) }},
		{"PutDefinition", func(ctx context.Context, s *S) []error {
			return errOf(s.PutDefinition(ctx, "Wf", hash, []byte("name: Wf"), t0))
		}},
		{"LatestDefinition", func(ctx context.Context, s *S) []error { return errOf(s.LatestDefinition(ctx, "Wf")) }},
		{"DescribeDefinition", func(ctx context.Context, s *S) []error { return errOf(s.DescribeDefinition(ctx, "Wf")) }},
		{"ListDefinitions", func(ctx context.Context, s *S) []error { return errOf(s.ListDefinitions(ctx)) }},
		{"LoadDefinition", func(ctx context.Context, s *S) []error { return errOf(s.LoadDefinition(ctx, "Wf", hash)) }},
		{"ReadWork", func(ctx context.Context, s *S) []error { return errOf(s.ReadWork(ctx, "c", []int{0, 1}, 10, 0)) }},
		{"ReclaimWork", func(ctx context.Context, s *S) []error { return errOf(s.ReclaimWork(ctx, "c", 0, time.Second, 10)) }},
		{"LoadStates", func(ctx context.Context, s *S) []error {
			return errOf(s.LoadStates(ctx, []interpreter.InstanceID{"a"}))
		}},
		{"Commit", func(ctx context.Context, s *S) []error { return errOf(s.Commit(ctx, []*interpreter.Transition{tr})) }},
		{"AckWork", func(ctx context.Context, s *S) []error {
			return one(s.AckWork(ctx, []interpreter.WorkItem{{ID: "1-1", Partition: 0, Instance: "a"}}))
		}},
		{"TrimWork", func(ctx context.Context, s *S) []error { return errOf(s.TrimWork(ctx, 0)) }},
		{"FireDueTimers", func(ctx context.Context, s *S) []error { return errOf2(s.FireDueTimers(ctx, 0, t0, 10)) }},
		{"ExpireFinished", func(ctx context.Context, s *S) []error { return errOf(s.ExpireFinished(ctx, 0, t0)) }},
		{"CreateInstance", func(ctx context.Context, s *S) []error { return one(s.CreateInstance(ctx, newInstance("b", t0, ""))) }},
		{"RaiseEvent", func(ctx context.Context, s *S) []error { return one(s.RaiseEvent(ctx, "a", "Go", nil, t0)) }},
		{"SendControl", func(ctx context.Context, s *S) []error {
			return one(s.SendControl(ctx, "a", interpreter.Event{Kind: interpreter.EvSuspend, Time: t0}))
		}},
		{"FetchStatus", func(ctx context.Context, s *S) []error { return errOf(s.FetchStatus(ctx, "a")) }},
		{"FetchStatusBatched", func(ctx context.Context, s *S) []error { return errOf(s.FetchStatusBatched(ctx, "a")) }},
		{"FetchHistory", func(ctx context.Context, s *S) []error { return errOf(s.FetchHistory(ctx, "a")) }},
		{"Purge", func(ctx context.Context, s *S) []error { return one(s.Purge(ctx, "a")) }},
		{"WatchStatus", func(ctx context.Context, s *S) []error {
			_, stop, err := s.WatchStatus(ctx, "a")
			if stop != nil {
				stop()
			}
			return one(err)
		}},
		{"ListInstances", func(ctx context.Context, s *S) []error {
			return errOf2(s.ListInstances(ctx, interpreter.ListQuery{Top: 10}))
		}},
		{"PurgeMany", func(ctx context.Context, s *S) []error { return errOf(s.PurgeMany(ctx, t0, t0.Add(time.Hour), nil)) }},
		{"ReadTasks", func(ctx context.Context, s *S) []error { return errOf(s.ReadTasks(ctx, "c", "", 1, 0)) }},
		{"ReadTaskBatch", func(ctx context.Context, s *S) []error { return errOf(s.ReadTaskBatch(ctx, "c", "", 1, 0)) }},
		{"ReclaimTasks", func(ctx context.Context, s *S) []error { return errOf(s.ReclaimTasks(ctx, "c", "", time.Second, 1)) }},
		{"ReclaimTaskBatch", func(ctx context.Context, s *S) []error {
			return errOf2(s.ReclaimTaskBatch(ctx, "c", "", time.Second, 1))
		}},
		{"CompleteTask", func(ctx context.Context, s *S) []error { return one(s.CompleteTask(ctx, ref, []byte("1"), t0)) }},
		{"FailTask", func(ctx context.Context, s *S) []error {
			return one(s.FailTask(ctx, ref, interpreter.ErrorInfo{Type: "X", Message: "y"}, t0))
		}},
		{"ExtendTask", func(ctx context.Context, s *S) []error { return one(s.ExtendTask(ctx, "c", ref)) }},
		{"ExtendTasks", func(ctx context.Context, s *S) []error {
			return s.ExtendTasks(ctx, "c", []redisstore.TaskRef{ref, ref})
		}},
		{"ReleaseTasks", func(ctx context.Context, s *S) []error { return s.ReleaseTasks(ctx, "c", []redisstore.TaskRef{ref}) }},
	}
}

// TestStoppedRedisIsUnavailable: with Redis gone, every call answers
// ErrUnavailable, the refused connection still in the chain and the
// message.
func TestStoppedRedisIsUnavailable(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4})
	e.create("a", t0)
	tr := e.transition("a", "", nil)
	e.single("it stops its redis-server; a shared cluster must stay up")
	e.srv.Stop()
	// No retries: each call meets the refused dial once.
	c := redis.NewClient(&redis.Options{Addr: e.srv.Addr(), MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	s := redisstore.New(c, storeOpts)
	for _, sc := range everyCall(tr) {
		for i, err := range sc.call(e.ctx, s) {
			if !errors.Is(err, interpreter.ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "refused") {
				t.Errorf("%s [%d] with Redis stopped: %v; want ErrUnavailable over the refused connection", sc.name, i, err)
			}
		}
	}
}

// TestClosedClientIsUnavailable: a closed client is a Redis out of reach
// too (a process shutting down while requests finish).
func TestClosedClientIsUnavailable(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4})
	e.create("a", t0)
	tr := e.transition("a", "", nil)
	c := e.newClient(redis.Options{})
	s := redisstore.New(c, storeOpts)
	_ = c.Close()
	for _, sc := range everyCall(tr) {
		for i, err := range sc.call(e.ctx, s) {
			if !errors.Is(err, interpreter.ErrUnavailable) || !errors.Is(err, redis.ErrClosed) {
				t.Errorf("%s [%d] on a closed client: %v; want ErrUnavailable over redis.ErrClosed", sc.name, i, err)
			}
		}
	}
}

// TestUnavailableReplies: a Redis that answers but cannot serve now (busy
// with a script, a replica refusing writes, out of memory) is unavailable;
// a wrong request is not.
func TestUnavailableReplies(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4})
	e.single("it turns its one redis-server into a replica, out of memory and busy (CONFIG SET, REPLICAOF)")
	e.create("a", t0)
	admin := redis.NewClient(&redis.Options{Addr: e.srv.Addr()})
	defer admin.Close()
	unavailable := func(what, reply string, err error) {
		t.Helper()
		if !errors.Is(err, interpreter.ErrUnavailable) || !strings.Contains(err.Error(), reply) {
			t.Errorf("%s: %v; want ErrUnavailable over %s", what, err, reply)
		}
	}

	// OOM: writes refused, reads still served.
	admin.ConfigSet(e.ctx, "maxmemory-policy", "noeviction")
	if err := admin.ConfigSet(e.ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	unavailable("out of memory", "OOM", e.s.CreateInstance(e.ctx, newInstance("b", t0, "")))
	if _, err := e.s.FetchStatus(e.ctx, "a"); err != nil {
		t.Errorf("a read with maxmemory reached: %v", err)
	}
	admin.ConfigSet(e.ctx, "maxmemory", "0")

	// READONLY: a replica (of a master that is not there) refuses writes.
	if err := admin.Do(e.ctx, "REPLICAOF", "127.0.0.1", "1").Err(); err != nil {
		t.Fatal(err)
	}
	unavailable("replica", "READONLY", e.s.RaiseEvent(e.ctx, "a", "Go", nil, t0))
	if err := admin.Do(e.ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}

	// BUSY: a script runs past busy-reply-threshold.
	if err := admin.ConfigSet(e.ctx, "busy-reply-threshold", "10").Err(); err != nil {
		t.Fatal(err)
	}
	busy := redis.NewClient(&redis.Options{Addr: e.srv.Addr(), ReadTimeout: -1})
	defer busy.Close()
	running := make(chan error, 1)
	go func() { running <- busy.Eval(context.Background(), "while true do end", nil).Err() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.s.FetchStatus(e.ctx, "a")
		if err != nil && strings.Contains(err.Error(), "BUSY") {
			unavailable("busy", "BUSY", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no BUSY reply while a script runs: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for admin.Do(e.ctx, "SCRIPT", "KILL").Err() != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	<-running

	// A wrong request: the instance's key holds a string.
	admin.Set(e.ctx, fmt.Sprintf("cairn:{%d}:inst:a", redisstore.PartitionOf("a", 4)), "not a hash", 0)
	if _, err := e.s.FetchStatus(e.ctx, "a"); err == nil || errors.Is(err, interpreter.ErrUnavailable) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("WRONGTYPE: %v; want an error that is not ErrUnavailable", err)
	}
}
