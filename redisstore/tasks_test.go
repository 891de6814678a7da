package redisstore_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// schedule commits a transition of id scheduling one task on queue.
func (e *env) schedule(id, task, queue string) {
	e.t.Helper()
	tr := e.transition(id, "", nil, &interpreter.ScheduleTask{
		TaskID: task, Instance: interpreter.InstanceID(id), Activity: "Charge",
		Input: json.RawMessage(`{"amount":3}`), Attempt: 1, StepID: "s1", DefHash: "h1",
		Workflow: "Wf", Queue: queue, Timeout: time.Minute,
	})
	if errs := e.commit(tr); errs[0] != nil {
		e.t.Fatal(errs[0])
	}
}

// takeLocalTask schedules task for id on the local queue, reads it as
// worker w (the only task there) and returns its ref.
func (e *env) takeLocalTask(id, task string) interpreter.TaskRef {
	e.t.Helper()
	e.schedule(id, task, "")
	tasks, err := e.s.ReadTasks(e.ctx, "w", interpreter.LocalQueue, 10, 0)
	if err != nil || len(tasks) != 1 {
		e.t.Fatal(tasks, err)
	}
	return tasks[0].Ref
}

// taskGone fails unless the task is out of its stream and of the group's
// pending entries.
func (e *env) taskGone(ref interpreter.TaskRef) {
	e.t.Helper()
	stream := fmt.Sprintf("cairn:{%d}:tasks:%s", ref.Partition, interpreter.LocalQueue)
	if e.client.XLen(e.ctx, stream).Val() != 0 || e.client.XPending(e.ctx, stream, "workers").Val().Count != 0 {
		e.t.Fatalf("task left in %s", stream)
	}
}

func TestTasks(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	e.readAll("engine")
	e.schedule("a", "t1", "")
	e.schedule("a", "t2", "Charge")

	local, err := e.s.ReadTasks(e.ctx, "w1", interpreter.LocalQueue, 10, 0)
	if err != nil || len(local) != 1 {
		t.Fatalf("local tasks %v %v", local, err)
	}
	task := local[0]
	if task.Schedule.TaskID != "t1" || task.Schedule.Activity != "Charge" || string(task.Schedule.Input) != `{"amount":3}` ||
		task.Schedule.Timeout != time.Minute || task.Ref.Instance != "a" || task.Ref.TaskID != "t1" || task.Ref.Queue != "local" {
		t.Fatalf("task %+v", task)
	}
	ext, err := e.s.ReadTasks(e.ctx, "w2", "Charge", 10, 0)
	if err != nil || len(ext) != 1 || ext[0].Schedule.TaskID != "t2" {
		t.Fatalf("Charge tasks %v %v", ext, err)
	}

	ref, err := redisstore.ParseTaskRef(redisstore.TaskToken(task.Ref))
	if err != nil || ref != task.Ref {
		t.Fatalf("ref round trip %+v %v", ref, err)
	}
	for _, bad := range []string{"", "x", redisstore.TaskToken(task.Ref) + "x"} {
		if _, err := redisstore.ParseTaskRef(bad); !errors.Is(err, interpreter.ErrNotFound) {
			t.Fatalf("ParseTaskRef(%q): %v", bad, err)
		}
	}

	if err := e.s.CompleteTask(e.ctx, ref, json.RawMessage(`{"ok":true}`), t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := e.s.CompleteTask(e.ctx, ref, json.RawMessage(`{"ok":false}`), t0.Add(time.Second)); !errors.Is(err, interpreter.ErrDuplicate) {
		t.Fatalf("second completion: %v", err)
	}
	if err := e.s.FailTask(e.ctx, ref, interpreter.ErrorInfo{Type: "X"}, t0); !errors.Is(err, interpreter.ErrDuplicate) {
		t.Fatalf("failure after completion: %v", err)
	}
	info := interpreter.ErrorInfo{Type: "Boom", Message: "no", Retryable: true}
	if err := e.s.FailTask(e.ctx, ext[0].Ref, info, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	items := e.readAll("engine")
	if len(items) != 2 {
		t.Fatalf("work %+v", items)
	}
	if ev := items[0].Event; ev.Kind != interpreter.EvCompleted || ev.TaskID != "t1" || string(ev.Data) != `{"ok":true}` || !ev.Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("completion %+v", ev)
	}
	if ev := items[1].Event; ev.Kind != interpreter.EvFailed || ev.TaskID != "t2" || ev.Error == nil || *ev.Error != info {
		t.Fatalf("failure %+v", ev)
	}
	// Finished tasks leave their streams.
	for _, q := range []string{"local", "Charge"} {
		if n := e.client.XLen(e.ctx, fmt.Sprintf("cairn:{%d}:tasks:%s", task.Ref.Partition, q)).Val(); n != 0 {
			t.Fatalf("%s stream holds %d", q, n)
		}
	}
	// A reference whose partition is not its instance's is refused.
	forged := ref
	forged.Partition = (ref.Partition + 1) % e.s.Partitions()
	if err := e.s.CompleteTask(e.ctx, forged, nil, t0); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("forged ref: %v", err)
	}
}

func TestReadTasksMax(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	ids := ids(12, "i%d")
	for _, id := range ids {
		e.create(id, t0)
		e.schedule(id, "t-"+id, "")
	}
	got, err := e.s.ReadTasks(e.ctx, "w1", "", 2, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("read %d %v", len(got), err)
	}
	// The surplus was handed back: not new any more, but reclaimable now.
	if more, _ := e.s.ReadTasks(e.ctx, "w2", "", 100, 0); len(more) != 0 {
		t.Fatalf("surplus delivered as new: %d", len(more))
	}
	seen := map[string]bool{got[0].Ref.TaskID: true, got[1].Ref.TaskID: true}
	for i := 0; i < 20 && len(seen) < len(ids); i++ {
		re, err := e.s.ReclaimTasks(e.ctx, "w2", "", time.Minute, 3)
		if err != nil || len(re) > 3 {
			t.Fatalf("reclaim %d %v", len(re), err)
		}
		for _, r := range re {
			if seen[r.Ref.TaskID] {
				t.Fatalf("%s delivered twice", r.Ref.TaskID)
			}
			seen[r.Ref.TaskID] = true
		}
	}
	if len(seen) != len(ids) {
		t.Fatalf("saw %d of %d tasks", len(seen), len(ids))
	}
}

func TestReadTasksBlocks(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	done := make(chan []redisstore.Task)
	go func() {
		got, err := e.s.ReadTasks(e.ctx, "w1", "", 1, 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	time.Sleep(100 * time.Millisecond)
	e.schedule("a", "t1", "")
	select {
	case got := <-done:
		if len(got) != 1 {
			t.Fatalf("got %v", got)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("blocked read did not wake up")
	}
}

func TestTaskLeases(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	e.schedule("a", "t1", "q")
	e.schedule("a", "t2", "q")
	got, err := e.s.ReadTasks(e.ctx, "dead", "q", 32, 0) // 2 per partition
	if err != nil || len(got) != 2 {
		t.Fatalf("read %v %v", got, err)
	}
	if re, _ := e.s.ReclaimTasks(e.ctx, "alive", "q", time.Minute, 10); len(re) != 0 {
		t.Fatalf("reclaimed a fresh lease: %v", re)
	}
	time.Sleep(150 * time.Millisecond)
	// A heartbeat keeps t2's lease; t1's expires.
	if err := e.s.ExtendTask(e.ctx, "dead", got[1].Ref); err != nil {
		t.Fatal(err)
	}
	re, err := e.s.ReclaimTasks(e.ctx, "alive", "q", 100*time.Millisecond, 10)
	if err != nil || len(re) != 1 || re[0].Ref != got[0].Ref {
		t.Fatalf("reclaimed %v %v", re, err)
	}
	// The old holder lost t1 to another consumer: its heartbeat says so.
	if err := e.s.ExtendTask(e.ctx, "dead", got[0].Ref); !errors.Is(err, interpreter.ErrConflict) {
		t.Fatalf("heartbeat of a lost lease: %v", err)
	}
	if err := e.s.ExtendTask(e.ctx, "alive", re[0].Ref); err != nil {
		t.Fatal(err)
	}
	if err := e.s.CompleteTask(e.ctx, re[0].Ref, nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := e.s.ExtendTask(e.ctx, "alive", re[0].Ref); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("heartbeat of a finished task: %v", err)
	}
	if re, err := e.s.ReclaimTasks(e.ctx, "x", "never-read", 0, 10); err != nil || len(re) != 0 {
		t.Fatalf("reclaim of an unread queue: %v %v", re, err)
	}
}

func TestReclaimWork(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 1})
	e.create("a", t0)
	items, err := e.s.ReadWork(e.ctx, "dead", []int{0}, 10, 0)
	if err != nil || len(items) != 1 {
		t.Fatalf("read %v %v", items, err)
	}
	tr := e.transition("a", items[0].ID, nil)
	if re, _ := e.s.ReclaimWork(e.ctx, "alive", 0, time.Minute, 10); len(re) != 0 {
		t.Fatalf("reclaimed fresh work: %v", re)
	}
	time.Sleep(120 * time.Millisecond)
	re, err := e.s.ReclaimWork(e.ctx, "alive", 0, 100*time.Millisecond, 10)
	if err != nil || len(re) != 1 || re[0].ID != items[0].ID || re[0].Instance != "a" || re[0].Event.Kind != interpreter.EvStart {
		t.Fatalf("reclaimed %v %v", re, err)
	}
	if errs := e.commit(e.transition("a", re[0].ID, nil)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// The dead engine wakes up and commits too late: its state is stale,
	// and recomputed, its work item is done.
	if errs := e.commit(tr); !errors.Is(errs[0], interpreter.ErrConflict) {
		t.Fatalf("late commit: %v", errs[0])
	}
	if errs := e.commit(e.transition("a", items[0].ID, nil)); !errors.Is(errs[0], interpreter.ErrDuplicate) {
		t.Fatalf("late recomputed commit: %v", errs[0])
	}
	if re, err := e.s.ReclaimWork(e.ctx, "x", 0, 0, 10); err != nil || len(re) != 0 {
		t.Fatalf("reclaim after ack: %v %v", re, err)
	}
}

func TestCorruptWorkDropped(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 1})
	e.create("a", t0)
	e.client.XAdd(e.ctx, &redisAddArgs{Stream: "cairn:{0}:work", Values: []string{"i", "a", "e", "{nope"}})
	items := e.readAll("c")
	if len(items) != 1 || items[0].Event.Kind != interpreter.EvStart {
		t.Fatalf("items %v", items)
	}
	if n := e.client.XLen(e.ctx, "cairn:{0}:work").Val(); n != 1 {
		t.Fatalf("stream holds %d entries", n)
	}
}

// instanceSeq numbers the instances tasksIn creates.
var instanceSeq atomic.Int64

// tasksIn creates n instances of partition p, each with a task on queue
// q, and returns their ids.
func (e *env) tasksIn(p, n int, q string) []string {
	e.t.Helper()
	var out []string
	for len(out) < n {
		id := fmt.Sprintf("p%d-%d", p, instanceSeq.Add(1))
		if redisstore.PartitionOf(id, e.s.Partitions()) != p {
			continue
		}
		e.create(id, t0)
		e.schedule(id, "t-"+id, q)
		out = append(out, id)
	}
	return out
}

// sent counts the commands named cmd among cmds.
func sent(cmds [][]any, cmd string) int {
	n := 0
	for _, c := range cmds {
		if s, _ := c[0].(string); strings.EqualFold(s, cmd) {
			n++
		}
	}
	return n
}

// TestReadTaskBatch: a batch read asks each partition for its share and
// keeps all it gets: nothing is handed back (no XCLAIM), so nothing is
// left for another consumer's reclaim, and the rest stays new.
func TestReadTaskBatch(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.single("it counts the round trips of one redis-server; on a cluster a call spans up to 3 masters (internal/e2e cost_cluster_test.go measures those)")
	// The first read of a queue creates its consumer groups: not measured.
	if none, err := e.s.ReadTaskBatch(e.ctx, "w1", "q", 1, 0); err != nil || len(none) != 0 {
		t.Fatalf("first read %v %v", none, err)
	}
	e.tasksIn(3, 3, "q")
	e.tasksIn(5, 1, "q")
	e.tasksIn(9, 1, "q")
	var got []redisstore.Task
	trips, cmds := e.trips.measure(func() {
		var err error
		got, err = e.s.ReadTaskBatch(e.ctx, "w1", "q", 2, 0) // COUNT 1 per partition
		if err != nil {
			t.Fatal(err)
		}
	})
	parts := map[int]int{}
	for _, tk := range got {
		parts[tk.Ref.Partition]++
	}
	if len(got) != 3 || parts[3] != 1 || parts[5] != 1 || parts[9] != 1 {
		t.Fatalf("read %d tasks from partitions %v, want one from each of 3, 5 and 9", len(got), parts)
	}
	if trips != 1 || sent(cmds, "xclaim") != 0 {
		t.Fatalf("%d round trips, commands %v", trips, cmds)
	}
	if re, more, err := e.s.ReclaimTaskBatch(e.ctx, "w2", "q", time.Hour, 16); err != nil || len(re) != 0 || more {
		t.Fatalf("the surplus was handed back: reclaimed %d (more %v) %v", len(re), more, err)
	}
	rest, err := e.s.ReadTaskBatch(e.ctx, "w2", "q", 32, 0) // COUNT 2 per partition
	if err != nil || len(rest) != 2 || rest[0].Ref.Partition != 3 || rest[1].Ref.Partition != 3 {
		t.Fatalf("rest %v %v", rest, err)
	}
	if none, err := e.s.ReadTaskBatch(e.ctx, "w3", "q", 100, 0); err != nil || len(none) != 0 {
		t.Fatalf("read again %v %v", none, err)
	}
}

// TestReclaimTaskBatch: a reclaim takes the oldest want expired tasks of
// all partitions, never more; says when there may be more; and ends once
// all are taken, in one round trip when none has expired, two otherwise.
// A failing partition does not cost the others' tasks.
func TestReclaimTaskBatch(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.single("it counts the round trips of one redis-server; on a cluster a call spans up to 3 masters (internal/e2e cost_cluster_test.go measures those)")
	e.tasksIn(2, 3, "q")
	e.tasksIn(7, 1, "q")
	dead, err := e.s.ReadTaskBatch(e.ctx, "dead", "q", 64, 0)
	if err != nil || len(dead) != 4 {
		t.Fatalf("read %d %v", len(dead), err)
	}
	if re, more, err := e.s.ReclaimTaskBatch(e.ctx, "alive", "q", time.Hour, 4); err != nil || len(re) != 0 || more {
		t.Fatalf("reclaimed fresh leases: %v %v %v", re, more, err)
	}
	// Released tasks look long idle: no need to wait out a lease.
	refs := make([]redisstore.TaskRef, len(dead))
	for i, tk := range dead {
		refs[i] = tk.Ref
	}
	for i, err := range e.s.ReleaseTasks(e.ctx, "dead", refs) {
		if err != nil {
			t.Fatalf("release %s: %v", refs[i].TaskID, err)
		}
	}
	var order []string
	for more, calls := true, 0; more; {
		if calls++; calls > 5 {
			t.Fatalf("still more after %d reclaims: %v", calls, order)
		}
		var re []redisstore.Task
		trips, cmds := e.trips.measure(func() {
			re, more, err = e.s.ReclaimTaskBatch(e.ctx, "alive", "q", time.Hour, 1)
		})
		if err != nil || len(re) > 1 || trips != 1+len(re) || sent(cmds, "xautoclaim") != 0 {
			t.Fatalf("reclaim %d: %d tasks, %v; %d round trips, %v", calls, len(re), err, trips, cmds)
		}
		for _, tk := range re {
			order = append(order, tk.Ref.EntryID)
		}
	}
	want := make([]string, len(dead))
	for i, tk := range dead {
		want[i] = tk.Ref.EntryID
	}
	slices.SortFunc(want, func(a, b string) int { // entry ids "ms-seq", numerically
		num := func(id string) (ms, seq int64) {
			m, q, _ := strings.Cut(id, "-")
			ms, _ = strconv.ParseInt(m, 10, 64)
			seq, _ = strconv.ParseInt(q, 10, 64)
			return ms, seq
		}
		am, as := num(a)
		bm, bs := num(b)
		return cmp.Or(cmp.Compare(am, bm), cmp.Compare(as, bs))
	})
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("reclaimed %v, want the oldest first: %v", order, want)
	}

	// A partition that fails: the others' tasks come with the error.
	e.tasksIn(4, 1, "r")
	e.tasksIn(11, 1, "r")
	if got, _ := e.s.ReadTaskBatch(e.ctx, "dead", "r", 16, 0); len(got) != 2 {
		t.Fatalf("read %v", got)
	}
	e.client.Del(e.ctx, "cairn:{11}:tasks:r")
	e.client.Set(e.ctx, "cairn:{11}:tasks:r", "not a stream", 0)
	re, _, err := e.s.ReclaimTaskBatch(e.ctx, "alive", "r", 0, 16)
	if err == nil || len(re) != 1 || re[0].Ref.Partition != 4 {
		t.Fatalf("reclaim with a broken partition: %v %v", re, err)
	}
}

// TestExtendAndReleaseTasks: both renew or hand back only a task the
// consumer still holds, in one round trip for several; a release makes the
// task reclaimable at once, and cannot take a task back from its new
// holder.
func TestExtendAndReleaseTasks(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.tasksIn(1, 3, "q")
	got, err := e.s.ReadTaskBatch(e.ctx, "w1", "q", 48, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("read %v %v", got, err)
	}
	held, lost, done := got[0].Ref, got[1].Ref, got[2].Ref
	if errs := e.s.ReleaseTasks(e.ctx, "w1", []redisstore.TaskRef{lost}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	re, _, err := e.s.ReclaimTaskBatch(e.ctx, "w2", "q", time.Hour, 16)
	if err != nil || len(re) != 1 || re[0].Ref != lost {
		t.Fatalf("reclaimed %v %v, want only the released task", re, err)
	}
	if err := e.s.CompleteTask(e.ctx, done, nil, t0); err != nil {
		t.Fatal(err)
	}
	forged := held
	forged.Partition = (held.Partition + 1) % e.s.Partitions()

	var errs []error
	trips, _ := e.trips.measure(func() {
		errs = e.s.ExtendTasks(e.ctx, "w1", []redisstore.TaskRef{held, lost, done, forged})
	})
	if trips != 1 || errs[0] != nil || !errors.Is(errs[1], interpreter.ErrConflict) ||
		!errors.Is(errs[2], interpreter.ErrNotFound) || !errors.Is(errs[3], interpreter.ErrNotFound) {
		t.Fatalf("extend: %d round trips, %v", trips, errs)
	}
	errs = e.s.ReleaseTasks(e.ctx, "w1", []redisstore.TaskRef{held, lost})
	if errs[0] != nil || !errors.Is(errs[1], interpreter.ErrConflict) {
		t.Fatalf("release: %v", errs)
	}
	re, _, err = e.s.ReclaimTaskBatch(e.ctx, "w3", "q", time.Hour, 16)
	if err != nil || len(re) != 1 || re[0].Ref != held {
		t.Fatalf("reclaimed %v %v, want only the task w1 released", re, err)
	}
	if err := e.s.ExtendTask(e.ctx, "w2", lost); err != nil {
		t.Fatalf("w2 lost its task to w1's release: %v", err)
	}
}

// TestReclaimBehindLiveTasks: an expired task behind many live ones in its
// partition's pending list is found (XAUTOCLAIM would give up after
// scanning 10 entries per task asked for, and start again from the front
// the next time).
func TestReclaimBehindLiveTasks(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.tasksIn(2, 30, "q")
	if live, err := e.s.ReadTaskBatch(e.ctx, "live", "q", 16*30, 0); err != nil || len(live) != 30 {
		t.Fatalf("read %d %v", len(live), err)
	}
	e.tasksIn(2, 1, "q")
	dead, err := e.s.ReadTaskBatch(e.ctx, "dead", "q", 1, 0)
	if err != nil || len(dead) != 1 {
		t.Fatalf("read %v %v", dead, err)
	}
	if errs := e.s.ReleaseTasks(e.ctx, "dead", []redisstore.TaskRef{dead[0].Ref}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	re, more, err := e.s.ReclaimTaskBatch(e.ctx, "alive", "q", time.Hour, 1)
	if err != nil || len(re) != 1 || re[0].Ref != dead[0].Ref {
		t.Fatalf("reclaimed %v (more %v) %v, want the dead consumer's task", re, more, err)
	}
}
