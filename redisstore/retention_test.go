package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

func TestParseRetention(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]redisstore.Retention{
		"":          {},
		"forever":   {},
		"none":      redisstore.KeepNone,
		"NONE":      redisstore.KeepNone,
		"72h":       {MaxAge: 72 * time.Hour},
		"7d":        {MaxAge: 7 * day},
		"100000":    {MaxCount: 100000},
		"7d,100000": {MaxAge: 7 * day, MaxCount: 100000},
		"5, 30m":    {MaxAge: 30 * time.Minute, MaxCount: 5},
	} {
		got, err := redisstore.ParseRetention(in)
		if err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		if again, err := redisstore.ParseRetention(got.String()); err != nil || again != got {
			t.Errorf("%q: String %q reads back as %+v, %v", in, got.String(), again, err)
		}
	}
	for _, bad := range []string{"0", "-5", "-1h", "0s", "7x", "1d,2d", "1,2", "1,2,3", "d", "soon"} {
		if r, err := redisstore.ParseRetention(bad); err == nil {
			t.Errorf("ParseRetention(%q) = %+v, want an error", bad, r)
		}
	}
}

// keysOf counts the keys left of an instance: hash and history.
func (e *env) keysOf(id string) int {
	e.t.Helper()
	n := 0
	for _, pat := range []string{"*:inst:" + id, "*:log:" + id} {
		if c, ok := e.client.(*redis.ClusterClient); ok { // KEYS answers for one node
			var mu sync.Mutex
			_ = c.ForEachMaster(e.ctx, func(ctx context.Context, m *redis.Client) error {
				k := len(m.Keys(ctx, pat).Val())
				mu.Lock()
				n += k
				mu.Unlock()
				return nil
			})
			continue
		}
		n += len(e.client.Keys(e.ctx, pat).Val())
	}
	return n
}

func (e *env) expireAll(now time.Time) int {
	e.t.Helper()
	total := 0
	for _, p := range e.parts() {
		n, err := e.s.ExpireFinished(e.ctx, p, now)
		if err != nil {
			e.t.Fatal(err)
		}
		total += n
	}
	return total
}

func (e *env) indexed() int {
	e.t.Helper()
	page, _, err := e.s.ListInstances(e.ctx, interpreter.ListQuery{Top: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(page)
}

func TestRetentionByAge(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4, Retention: redisstore.Retention{MaxAge: time.Hour}})
	for _, id := range []string{"old1", "old2", "old3", "new", "running"} {
		e.create(id, t0)
	}
	e.readAll("c")
	for _, id := range []string{"old1", "old2"} {
		e.finish(id, interpreter.StatusCompleted) // finishes at t0+1s
	}
	e.finish("old3", interpreter.StatusFailed)
	newer := e.transition("new", "", func(s *interpreter.State) {
		s.Status = interpreter.StatusTerminated
		s.LastUpdatedTime = t0.Add(30 * time.Minute)
	})
	newer.StatusChanged = true
	if errs := e.commit(newer); errs[0] != nil {
		t.Fatal(errs[0])
	}

	// Nothing is due an hour after the first ones finished.
	if n := e.expireAll(t0.Add(time.Hour)); n != 0 {
		t.Fatalf("expired %d at t0+1h", n)
	}
	if n := e.expireAll(t0.Add(time.Hour + 2*time.Second)); n != 3 {
		t.Fatalf("expired %d at t0+1h2s, want 3", n)
	}
	for _, id := range []string{"old1", "old2", "old3"} {
		if k := e.keysOf(id); k != 0 {
			t.Errorf("%s: %d keys left", id, k)
		}
		if _, err := e.s.FetchStatus(e.ctx, interpreter.InstanceID(id)); err == nil {
			t.Errorf("%s still readable", id)
		}
	}
	if e.indexed() != 2 {
		t.Fatalf("%d instances listed, want new and running", e.indexed())
	}
	if n := e.expireAll(t0.Add(90*time.Minute + time.Second)); n != 1 {
		t.Fatalf("expired %d at t0+1h30m, want new", n)
	}
	// A running instance is never expired, however old.
	if n := e.expireAll(t0.Add(1000 * time.Hour)); n != 0 || e.keysOf("running") != 2 {
		t.Fatalf("expired %d; running has %d keys", n, e.keysOf("running"))
	}
	if n := e.client.ZCard(e.ctx, "cairn:{0}:finished").Val() + e.client.ZCard(e.ctx, "cairn:{1}:finished").Val() +
		e.client.ZCard(e.ctx, "cairn:{2}:finished").Val() + e.client.ZCard(e.ctx, "cairn:{3}:finished").Val(); n != 0 {
		t.Fatalf("%d retention entries left", n)
	}
}

func TestRetentionByCount(t *testing.T) {
	const parts, keep, n = 2, 10, 60
	e := newEnv(t, redisstore.Options{Partitions: parts, Retention: redisstore.Retention{MaxCount: keep}})
	names := ids(n, "i%03d")
	for _, id := range names {
		e.create(id, t0)
	}
	e.readAll("c")
	for i, id := range names {
		tr := e.transition(id, "", func(s *interpreter.State) {
			s.Status = interpreter.StatusCompleted
			s.LastUpdatedTime = t0.Add(time.Duration(i) * time.Second) // i001 finished before i002
		})
		tr.StatusChanged = true
		if errs := e.commit(tr); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	e.expireAll(t0)
	left := map[string]bool{}
	perPart := map[int]int{}
	for _, id := range names {
		if e.keysOf(id) > 0 {
			left[id] = true
			perPart[redisstore.PartitionOf(id, parts)]++
		}
	}
	for p, c := range perPart {
		if c != keep/parts {
			t.Errorf("partition %d keeps %d, want %d", p, c, keep/parts)
		}
	}
	// The kept ones are the last finished of their partition.
	for p := 0; p < parts; p++ {
		var mine []string
		for _, id := range names {
			if redisstore.PartitionOf(id, parts) == p {
				mine = append(mine, id)
			}
		}
		for j, id := range mine {
			if want := j >= len(mine)-keep/parts; left[id] != want {
				t.Errorf("partition %d: %s kept=%v", p, id, left[id])
			}
		}
	}
	if e.indexed() != keep {
		t.Fatalf("%d listed, want %d", e.indexed(), keep)
	}
}

// TestRetentionLeavesReplacedAndPurged: an instance replaced (started again
// under its id) after it finished is not expired by its old finish, and a
// purge removes the retention entry with the instance.
func TestRetentionLeavesReplacedAndPurged(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 1, Retention: redisstore.KeepNone})
	e.create("a", t0)
	e.create("b", t0)
	e.readAll("c")
	e.finish("a", interpreter.StatusCompleted)
	e.finish("b", interpreter.StatusCompleted)
	if err := e.s.CreateInstance(e.ctx, newInstance("a", t0.Add(time.Minute), "")); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Purge(e.ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if z := e.client.ZCard(e.ctx, "cairn:{0}:finished").Val(); z != 0 {
		t.Fatalf("%d retention entries after replace and purge", z)
	}
	if n := e.expireAll(t0.Add(time.Hour)); n != 0 || e.keysOf("a") != 2 {
		t.Fatalf("expired %d; a has %d keys", n, e.keysOf("a"))
	}
}

// TestRetentionBoundsMemory: with a count limit, finishing ten times as
// many instances leaves Redis about as large as finishing the limit.
func TestRetentionBoundsMemory(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4, Retention: redisstore.Retention{MaxCount: 100}})
	round := func(r int) int64 {
		names := ids(500, fmt.Sprintf("r%d-%%04d", r))
		for _, id := range names {
			e.create(id, t0)
		}
		for _, it := range e.readAll("c") {
			tr := e.transition(string(it.Instance), it.ID, func(s *interpreter.State) { s.Status = interpreter.StatusCompleted })
			tr.StatusChanged = true
			if errs := e.commit(tr); errs[0] != nil {
				t.Fatal(errs[0])
			}
		}
		for _, p := range e.parts() {
			if _, err := e.s.TrimWork(e.ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		e.expireAll(t0)
		return e.client.DBSize(e.ctx).Val()
	}
	first := round(0)
	for r := 1; r < 10; r++ {
		if n := round(r); n != first {
			t.Fatalf("round %d: %d keys, first round %d", r, n, first)
		}
	}
	if first > 2*100+20 {
		t.Fatalf("%d keys kept for 100 instances", first)
	}
}
