package redisstore_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

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
