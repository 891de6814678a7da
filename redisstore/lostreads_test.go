package redisstore_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestLostReadReplyIsTakenBack: a read of the work streams fails (here:
// its context had ended; in production a connection cut or a master
// killed mid-call) while the entries were delivered to the consumer all
// the same. The consumer's next read takes them back at once, rather than
// after the lease; a read after that, and a store whose reads never
// failed, read nothing more.
func TestLostReadReplyIsTakenBack(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	opts := redisstore.Options{}
	if e.cl != nil {
		opts.Durability = redisstore.DurabilityReplica
	}
	reader := redisstore.New(e.newClient(redis.Options{ContextTimeoutEnabled: true}), opts)
	if items, err := reader.ReadWork(e.ctx, "eng", e.parts(), 10, 0); err != nil || len(items) != 0 {
		t.Fatalf("first read: %v, %v", items, err) // creates the groups
	}
	e.create("a", t0)
	e.create("b", t0)

	// The failed read, then what it delivered in the real case: the same
	// consumer's entries, taken by a read whose reply never reached it.
	gone, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := reader.ReadWork(gone, "eng", e.parts(), 10, 0); err == nil {
		t.Fatal("a read with an ended context succeeded")
	}
	if lost := e.readAll("eng"); len(lost) != 2 {
		t.Fatalf("delivered %d items, want 2", len(lost))
	}

	got, err := reader.ReadWork(e.ctx, "eng", e.parts(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, it := range got {
		ids[string(it.Instance)] = true
	}
	if len(got) != 2 || !ids["a"] || !ids["b"] {
		t.Fatalf("the read after the failure got %+v, want the items of a and b back", got)
	}
	if again, err := reader.ReadWork(e.ctx, "eng", e.parts(), 10, 0); err != nil || len(again) != 0 {
		t.Fatalf("a later read got %d items (%v), want none", len(again), err)
	}
	// A store whose reads did not fail never rereads its pending entries.
	if again := e.readAll("eng"); len(again) != 0 {
		t.Fatalf("a store without failed reads got %d pending items back", len(again))
	}
}

// TestLostTaskReadReply: the same for the in-process runtime's task
// queue; a worker queue is never read back (its worker may be running
// what it holds).
func TestLostTaskReadReply(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	opts := redisstore.Options{}
	if e.cl != nil {
		opts.Durability = redisstore.DurabilityReplica
	}
	reader := redisstore.New(e.newClient(redis.Options{ContextTimeoutEnabled: true}), opts)
	e.create("a", t0)
	e.readAll("engine")
	for _, q := range []string{interpreter.LocalQueue, "Charge"} {
		if got, err := reader.ReadTasks(e.ctx, "rt", q, 10, 0); err != nil || len(got) != 0 {
			t.Fatalf("%s: first read %v, %v", q, got, err) // creates the groups
		}
	}
	e.schedule("a", "t1", "")
	e.schedule("a", "t2", "Charge")
	gone, cancel := context.WithCancel(e.ctx)
	cancel()
	for _, q := range []string{interpreter.LocalQueue, "Charge"} {
		if _, err := reader.ReadTasks(gone, "rt", q, 10, 0); err == nil {
			t.Fatalf("%s: a read with an ended context succeeded", q)
		}
		if got, err := e.s.ReadTasks(e.ctx, "rt", q, 10, 0); err != nil || len(got) != 1 {
			t.Fatalf("%s: delivered %v, %v; want 1 task", q, got, err)
		}
	}
	if got, err := reader.ReadTasks(e.ctx, "rt", interpreter.LocalQueue, 10, 0); err != nil || len(got) != 1 || got[0].Ref.TaskID != "t1" {
		t.Fatalf("the local queue's read after the failure got %+v (%v), want t1 back", got, err)
	}
	if got, err := reader.ReadTasks(e.ctx, "rt", "Charge", 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("a worker queue's read after the failure got %+v (%v), want nothing", got, err)
	}
}
