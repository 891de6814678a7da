package activity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// These tests cover leases when a read returns more tasks than there are
// free slots: the runtime queues the surplus, which is leased to it.

// spy wraps a TaskStore. It counts the tasks leased and the reads that
// returned more than asked for, and it can play dead: every call then
// fails, as for a process that is gone.
type spy struct {
	activity.TaskStore
	dead    atomic.Bool
	leased  atomic.Int32 // tasks read or reclaimed
	surplus atomic.Int32 // reads that returned more tasks than asked for
}

var errDead = errors.New("spy: this runtime is dead")

func (s *spy) ReadTaskBatch(ctx context.Context, consumer, queue string, want int, block time.Duration) ([]interpreter.Task, error) {
	if s.dead.Load() {
		return nil, errDead
	}
	got, err := s.TaskStore.ReadTaskBatch(ctx, consumer, queue, want, block)
	s.leased.Add(int32(len(got)))
	if len(got) > want {
		s.surplus.Add(1)
	}
	return got, err
}

func (s *spy) ReclaimTaskBatch(ctx context.Context, consumer, queue string, minIdle time.Duration, want int) ([]interpreter.Task, bool, error) {
	if s.dead.Load() {
		return nil, false, errDead
	}
	got, more, err := s.TaskStore.ReclaimTaskBatch(ctx, consumer, queue, minIdle, want)
	s.leased.Add(int32(len(got)))
	return got, more, err
}

func (s *spy) CompleteTask(ctx context.Context, ref interpreter.TaskRef, result json.RawMessage, now time.Time) error {
	if s.dead.Load() {
		return errDead
	}
	return s.TaskStore.CompleteTask(ctx, ref, result, now)
}

func (s *spy) FailTask(ctx context.Context, ref interpreter.TaskRef, info interpreter.ErrorInfo, now time.Time) error {
	if s.dead.Load() {
		return errDead
	}
	return s.TaskStore.FailTask(ctx, ref, info, now)
}

func (s *spy) ExtendTasks(ctx context.Context, consumer string, refs []interpreter.TaskRef) []error {
	if s.dead.Load() {
		return deadErrs(len(refs))
	}
	return s.TaskStore.ExtendTasks(ctx, consumer, refs)
}

func (s *spy) ReleaseTasks(ctx context.Context, consumer string, refs []interpreter.TaskRef) []error {
	if s.dead.Load() {
		return deadErrs(len(refs))
	}
	return s.TaskStore.ReleaseTasks(ctx, consumer, refs)
}

func deadErrs(n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = errDead
	}
	return errs
}

// inPartitions returns n instance ids in n different partitions (of the
// store's default 16, by its fnv32a partition function), so that one read
// of one task per partition gets all their tasks.
func inPartitions(prefix string, n int) []string {
	var ids []string
	seen := map[uint32]bool{}
	for i := 0; len(ids) < n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		h := fnv.New32a()
		h.Write([]byte(id))
		if p := h.Sum32() % 16; !seen[p] {
			seen[p] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// startScheduled starts an instance of workflow name for each id and
// returns once every one has its task in the store, so that a runtime
// started then finds them all at its first read.
func (e *env) startScheduled(name string, ids []string) {
	e.t.Helper()
	for _, id := range ids {
		e.start(name, id, id)
	}
	deadline := time.Now().Add(time.Minute)
	for _, id := range ids {
		for {
			st, err := e.store.FetchStatus(e.ctx, interpreter.InstanceID(id))
			if err != nil {
				e.t.Fatal(err)
			}
			if st.Pending != nil && st.Pending.TaskID != "" {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("%s has scheduled no task: %s %+v", id, st.Status, st.Pending)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// runs counts the runs of each task (by instance/task id) and how many
// run at once.
type runs struct {
	mu      sync.Mutex
	total   map[string]int  // task → runs
	now     map[string]bool // tasks running
	twice   []string        // tasks started while running already
	running int
	peak    int
}

func newRuns() *runs { return &runs{total: map[string]int{}, now: map[string]bool{}} }

func (r *runs) begin(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.now[id] {
		r.twice = append(r.twice, id)
	}
	r.now[id] = true
	r.total[id]++
	r.running++
	r.peak = max(r.peak, r.running)
}

func (r *runs) end(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.now, id)
	r.running--
}

// TestTakeOverFromDeadRuntime: a runtime leases six tasks with one slot,
// runs one and queues five, then dies. Another runtime, started at once
// (so its start-up reclaim finds the leases fresh), takes over all six
// once they expire, the running one and the queued ones.
func TestTakeOverFromDeadRuntime(t *testing.T) {
	e := newEnv(t)
	e.deploy(catchWorkflow("Take", "Job", ""))
	survivor := newRuns()
	e.reg.Register("Job", func(ctx context.Context, task activity.Task) (any, error) {
		survivor.begin(task.InstanceID + "/" + task.ID)
		defer survivor.end(task.InstanceID + "/" + task.ID)
		return "survivor", nil
	})
	started := make(chan string, 16)
	deadReg := activity.NewRegistry()
	deadReg.Register("Job", func(ctx context.Context, task activity.Task) (any, error) {
		started <- task.InstanceID
		<-ctx.Done() // stuck until the test ends
		return nil, ctx.Err()
	})
	ids := inPartitions("take", 6)
	e.startScheduled("Take", ids)

	lease := 500 * time.Millisecond
	dead := &spy{TaskStore: e.ts}
	e.background(activity.NewRuntime(dead, e.cat, deadReg, activity.Options{Consumer: "dead", Concurrency: 1,
		Lease: lease, Block: 50 * time.Millisecond, ShutdownGrace: 50 * time.Millisecond, Logger: logger()}).Run)
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("the first runtime started nothing")
	}
	dead.dead.Store(true)
	if n := dead.leased.Load(); n != 6 {
		t.Fatalf("the first runtime leased %d tasks, want all 6 in one read", n)
	}

	e.runtime(activity.Options{Consumer: "survivor", Lease: lease})
	for _, id := range ids {
		if o := e.outcome(id); string(o.Result) != `"survivor"` {
			t.Fatalf("%s: %+v", id, o)
		}
	}
	if n := len(started); n != 0 {
		t.Fatalf("the dead runtime started %d more tasks", n)
	}
	for id, n := range survivor.total {
		if n != 1 {
			t.Errorf("task %s ran %d times on the survivor", id, n)
		}
	}
	if len(survivor.total) != 6 {
		t.Fatalf("the survivor ran %d tasks, want 6", len(survivor.total))
	}
}

// TestSurplusNeitherLostNorRunTwice: two runtimes of two slots each share
// 100 tasks that are all waiting when they start, so reads return more
// than there are free slots. Every task runs exactly once, never two at
// once, and no runtime runs more than its slots.
func TestSurplusNeitherLostNorRunTwice(t *testing.T) {
	e := newEnv(t)
	e.deploy(catchWorkflow("Many", "Work", ""))
	all := newRuns()
	work := func(mine *runs) activity.Handler {
		return func(ctx context.Context, task activity.Task) (any, error) {
			key := task.InstanceID + "/" + task.ID // task ids are per instance
			all.begin(key)
			mine.begin(key)
			time.Sleep(time.Millisecond)
			mine.end(key)
			all.end(key)
			return task.InstanceID, nil
		}
	}
	e.reg.Register("Work", func(context.Context, activity.Task) (any, error) { return nil, errors.New("unused") })
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprint("many-", i)
	}
	e.startScheduled("Many", ids)

	var spies []*spy
	var mine []*runs
	for _, name := range []string{"a", "b"} {
		s, r := &spy{TaskStore: e.ts}, newRuns()
		reg := activity.NewRegistry()
		reg.Register("Work", work(r))
		// An hour's lease: a task leased but dropped would never come back
		// within the test, and none is taken over between a and b.
		// One http slot (unused here) keeps reads small: a runtime reads
		// up to Concurrency + HTTPConcurrency tasks.
		e.background(activity.NewRuntime(s, e.cat, reg, activity.Options{Consumer: name, Concurrency: 2, HTTPConcurrency: 1,
			Lease: time.Hour, Block: 100 * time.Millisecond, Logger: logger()}).Run)
		spies, mine = append(spies, s), append(mine, r)
	}
	for _, id := range ids {
		if o := e.outcome(id); string(o.Result) != `"`+id+`"` {
			t.Fatalf("%s: %+v", id, o)
		}
	}
	all.mu.Lock()
	defer all.mu.Unlock()
	if len(all.twice) > 0 {
		t.Errorf("tasks run twice at once: %v", all.twice)
	}
	for id, n := range all.total {
		if n != 1 {
			t.Errorf("task %s ran %d times", id, n)
		}
	}
	if len(all.total) != len(ids) {
		t.Errorf("%d tasks ran, want %d", len(all.total), len(ids))
	}
	for i, r := range mine {
		if r.peak > 2 {
			t.Errorf("runtime %d ran %d tasks at once with 2 slots", i, r.peak)
		}
	}
	if spies[0].surplus.Load()+spies[1].surplus.Load() == 0 {
		t.Fatal("no read returned more than its free slots: the case is not covered")
	}
}

// TestQueuedTasksKeepTheirLease: tasks queued behind a long one are
// heartbeated like running ones, so another runtime never takes them over
// while their holder is alive.
func TestQueuedTasksKeepTheirLease(t *testing.T) {
	e := newEnv(t)
	e.deploy(catchWorkflow("Queue", "Slow", ""))
	started, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	e.reg.Register("Slow", func(ctx context.Context, task activity.Task) (any, error) {
		if first.CompareAndSwap(false, true) {
			close(started)
			<-release
		}
		return "a", nil
	})
	ids := inPartitions("queue", 4)
	e.startScheduled("Queue", ids)
	lease := 600 * time.Millisecond
	sa := &spy{TaskStore: e.ts}
	e.background(activity.NewRuntime(sa, e.cat, e.reg, activity.Options{Consumer: "a", Concurrency: 1,
		Lease: lease, Block: 50 * time.Millisecond, Logger: logger()}).Run)
	<-started
	if n := sa.leased.Load(); n != 4 {
		t.Fatalf("runtime a leased %d tasks, want all 4 in one read", n)
	}

	var stolen atomic.Int32
	regB := activity.NewRegistry()
	regB.Register("Slow", func(ctx context.Context, task activity.Task) (any, error) {
		stolen.Add(1)
		return "b", nil
	})
	e.background(activity.NewRuntime(e.ts, e.cat, regB, activity.Options{Consumer: "b", Lease: lease,
		Block: 50 * time.Millisecond, Logger: logger()}).Run)
	time.Sleep(3 * lease)
	close(release)
	for _, id := range ids {
		if o := e.outcome(id); string(o.Result) != `"a"` {
			t.Errorf("%s: %+v", id, o)
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Fatalf("runtime b took over %d of a's tasks", n)
	}
}

// TestQueuedTasksHandedBackAtShutdown: a runtime that stops hands back the
// tasks it queued, so another runtime takes them at once, not after their
// lease (an hour here).
func TestQueuedTasksHandedBackAtShutdown(t *testing.T) {
	e := newEnv(t)
	e.deploy(catchWorkflow("Stop", "Step", ""))
	started, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	regA := activity.NewRegistry()
	regA.Register("Step", func(ctx context.Context, task activity.Task) (any, error) {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return "a", nil
	})
	e.reg.Register("Step", func(ctx context.Context, task activity.Task) (any, error) { return "b", nil })
	ids := inPartitions("stop", 4)
	e.startScheduled("Stop", ids)

	sa := &spy{TaskStore: e.ts}
	rt := activity.NewRuntime(sa, e.cat, regA, activity.Options{Consumer: "a", Concurrency: 1,
		Lease: time.Hour, Block: 50 * time.Millisecond, Logger: logger()})
	ctx, cancel := context.WithCancel(e.ctx)
	ran := make(chan error, 1)
	go func() { ran <- rt.Run(ctx) }()
	<-started
	if n := sa.leased.Load(); n != 4 {
		cancel()
		close(release)
		t.Fatalf("runtime a leased %d tasks, want all 4 in one read", n)
	}
	cancel()
	close(release) // the running task finishes within the grace period
	if err := <-ran; err != nil {
		t.Fatal(err)
	}

	e.runtime(activity.Options{Consumer: "b", Lease: time.Hour})
	var results []string
	for _, id := range ids {
		results = append(results, string(e.outcome(id).Result))
	}
	if got := strings.Join(results, " "); strings.Count(got, `"a"`) != 1 || strings.Count(got, `"b"`) != 3 {
		t.Fatalf("results %s, want one from a and three from b", got)
	}
}

// commandCounter counts the commands a client sends, by name.
type commandCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *commandCounter) add(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range cmds {
		c.n[cmd.Name()]++
	}
}

func (c *commandCounter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.add(cmd); return next(ctx, cmd) }
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.add(cmds...); return next(ctx, cmds) }
}

// TestNoReclaimChurn: with 2 slots and 100 waiting tasks every read
// returns a surplus. It is neither handed back (XCLAIM) nor taken again by
// reclaims (XAUTOCLAIM over every partition) in a loop: reclaims happen at
// start-up and on their period only, reads are fewer than tasks, and each
// task costs one script call (its completion; no heartbeat, the lease is
// long).
func TestNoReclaimChurn(t *testing.T) {
	e := newEnv(t)
	e.deploy(catchWorkflow("Churn", "Quick", ""))
	e.reg.Register("Quick", func(ctx context.Context, task activity.Task) (any, error) { return 1, nil })
	const n = 100
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("churn-", i)
	}
	e.startScheduled("Churn", ids)

	count := &commandCounter{n: map[string]int{}}
	client := redis.NewClient(&redis.Options{Addr: e.addr})
	t.Cleanup(func() { client.Close() })
	client.AddHook(count)
	store := redisstore.New(client, redisstore.Options{Logger: logger()})
	e.background(activity.NewRuntime(store, e.cat, e.reg, activity.Options{Consumer: "r", Concurrency: 2,
		Lease: time.Hour, Block: 100 * time.Millisecond, Logger: logger()}).Run)
	for _, id := range ids {
		if o := e.outcome(id); string(o.Result) != "1" {
			t.Fatalf("%s: %+v", id, o)
		}
	}
	// Before, a full read handed its surplus back and the next loop
	// reclaimed it: about 4 XAUTOCLAIM and 2 XCLAIM per task.
	// A reclaim looks with one XPENDING per partition (16) and claims
	// with XCLAIM only what expired: nothing here.
	looks := count.get("xautoclaim") + count.get("xpending")
	claim, reads, scripts := count.get("xclaim"), count.get("xreadgroup"), count.get("evalsha")
	t.Logf("%d tasks: %d xpending/xautoclaim, %d xclaim, %d xreadgroup, %d evalsha", n, looks, claim, reads, scripts)
	if looks >= n || claim != 0 || reads >= n || scripts > n {
		t.Fatalf("%d tasks cost %d XPENDING/XAUTOCLAIM (each reclaim is 16), %d XCLAIM, %d XREADGROUP and %d EVALSHA",
			n, looks, claim, reads, scripts)
	}
}
