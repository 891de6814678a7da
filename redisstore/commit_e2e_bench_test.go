package redisstore_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// BenchmarkCommit commits ReserveTicket's two transitions (start, then
// the activity's outcome) against a real redis-server, one Commit each,
// as the engine does for an instance alone: the Go side of the commit
// path with its round trips. The transitions consume no work item, so
// the same instance takes them over and over, its revision counting up.
func BenchmarkCommit(b *testing.B) {
	srv := redistest.Start(b)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	ctx := context.Background()
	s := redisstore.New(client, redisstore.Options{})
	if err := s.Init(ctx); err != nil {
		b.Fatal(err)
	}
	in := newInstance("bench-1", t0, `"user-42"`)
	in.State.Name = "ReserveTicket"
	if err := s.CreateInstance(ctx, in); err != nil {
		b.Fatal(err)
	}
	st, err := s.LoadStates(ctx, []interpreter.InstanceID{"bench-1"})
	if err != nil {
		b.Fatal(err)
	}
	rev := st[0].Revision
	start, offer := redisstore.ReserveTicketTransitions("bench-1", rev, t0)
	start.WorkID, offer.WorkID = "", ""
	b.ReportAllocs()
	for b.Loop() {
		for i, tr := range []*interpreter.Transition{start, offer} {
			tr.FromRevision = rev + int64(i)
			errs, err := s.Commit(ctx, []*interpreter.Transition{tr})
			if err != nil {
				b.Fatal(err)
			}
			if errs[0] != nil {
				b.Fatal(errs[0])
			}
		}
		rev += 2
	}
}
