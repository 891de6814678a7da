package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// streamLen is the length of the instance's partition's task stream of queue.
func (e *env) streamLen(id, queue string) int64 {
	e.t.Helper()
	p := redisstore.PartitionOf(id, e.s.Partitions())
	return e.client.XLen(e.ctx, fmt.Sprintf("cairn:{%d}:tasks:%s", p, queue)).Val()
}

// TestWithdrawOnEnd: the commit that ends an instance withdraws its tasks
// in the same script: a queued one leaves its stream and no read gets it;
// a delivered one is acknowledged, its holder hears of it on the withdrawn
// channel, and its heartbeat and outcome answer ErrInstanceFinished.
func TestWithdrawOnEnd(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	e.readAll("engine")
	e.schedule("a", "t1", "Charge")
	e.schedule("a", "t2", "Ship")
	held, err := e.s.ReadTasks(e.ctx, "w1", "Charge", 1, 0)
	if err != nil || len(held) != 1 {
		t.Fatalf("read %v %v", held, err)
	}

	type notice struct {
		id    interpreter.InstanceID
		tasks []string
	}
	notices := make(chan notice, 4)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	watching := make(chan error, 1)
	go func() {
		watching <- e.s.WatchWithdrawn(ctx, nil, func(id interpreter.InstanceID, tasks []string) { notices <- notice{id, tasks} })
	}()
	// Wait until the watcher is subscribed.
	channel := fmt.Sprintf("cairn:{%d}:withdrawn", redisstore.PartitionOf("a", e.s.Partitions()))
	for e.client.PubSubNumSub(e.ctx, channel).Val()[channel] == 0 {
		time.Sleep(5 * time.Millisecond)
	}

	tr := e.transition("a", "", func(s *interpreter.State) {
		s.Status = interpreter.StatusTerminated
		s.LastUpdatedTime = s.LastUpdatedTime.Add(time.Second)
	}, &interpreter.CancelTask{TaskID: "t1", Queue: "Charge"}, &interpreter.CancelTask{TaskID: "t2", Queue: "Ship"})
	tr.StatusChanged = true
	var trips int
	trips, _ = e.trips.measure(func() {
		if errs := e.commit(tr); errs[0] != nil {
			t.Fatal(errs[0])
		}
	})
	if trips != 1 {
		t.Fatalf("the ending commit took %d round trips", trips)
	}
	for _, q := range []string{"Charge", "Ship"} {
		if n := e.streamLen("a", q); n != 0 {
			t.Fatalf("%s stream holds %d entries after the end", q, n)
		}
	}
	if got, err := e.s.ReadTasks(e.ctx, "w2", "Ship", 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("a queued task of the ended instance was handed out: %v %v", got, err)
	}
	select {
	case n := <-notices:
		if n.id != "a" || !slices.Equal(n.tasks, []string{"t1", "t2"}) {
			t.Fatalf("notice %+v", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no withdrawal notice")
	}
	ref := held[0].Ref
	if err := e.s.ExtendTask(e.ctx, "w1", ref); !errors.Is(err, interpreter.ErrInstanceFinished) {
		t.Fatalf("heartbeat of a withdrawn task: %v", err)
	}
	if err := e.s.CompleteTask(e.ctx, ref, nil, t0); !errors.Is(err, interpreter.ErrInstanceFinished) {
		t.Fatalf("completion of a withdrawn task: %v", err)
	}
	if err := e.s.FailTask(e.ctx, ref, interpreter.ErrorInfo{Type: "X"}, t0); !errors.Is(err, interpreter.ErrInstanceFinished) {
		t.Fatalf("failure of a withdrawn task: %v", err)
	}
	if items := e.readAll("engine"); len(items) != 0 {
		t.Fatalf("a withdrawn task's outcome was queued: %+v", items)
	}
	cancel()
	if err := <-watching; err != nil {
		t.Fatalf("WatchWithdrawn: %v", err)
	}
}

// TestWithdrawWhileRunning: a task withdrawn while its instance runs on
// (its attempt timed out) leaves its stream; its holder's heartbeat finds
// it closed (ErrNotFound), its outcome is a duplicate, and the instance's
// other task is untouched.
func TestWithdrawWhileRunning(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	e.readAll("engine")
	e.schedule("a", "t1", "Charge")
	held, err := e.s.ReadTasks(e.ctx, "w1", "Charge", 1, 0)
	if err != nil || len(held) != 1 {
		t.Fatalf("read %v %v", held, err)
	}
	e.schedule("a", "t2", "Charge") // queued, not read
	if errs := e.commit(e.transition("a", "", nil, &interpreter.CancelTask{TaskID: "t1", Queue: "Charge"})); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if err := e.s.ExtendTask(e.ctx, "w1", held[0].Ref); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("heartbeat of a timed-out attempt's task: %v", err)
	}
	if err := e.s.CompleteTask(e.ctx, held[0].Ref, nil, t0); !errors.Is(err, interpreter.ErrDuplicate) {
		t.Fatalf("completion of a timed-out attempt's task: %v", err)
	}
	got, err := e.s.ReadTasks(e.ctx, "w2", "Charge", 10, 0)
	if err != nil || len(got) != 1 || got[0].Ref.TaskID != "t2" {
		t.Fatalf("the other task: %v %v", got, err)
	}
	if err := e.s.CompleteTask(e.ctx, got[0].Ref, nil, t0); err != nil {
		t.Fatal(err)
	}
	// Finished and withdrawn tasks leave no field behind.
	fields := e.client.HKeys(e.ctx, fmt.Sprintf("cairn:{%d}:inst:a", redisstore.PartitionOf("a", e.s.Partitions()))).Val()
	for _, f := range fields {
		if len(f) > 3 && (f[:3] == "tk:" || f[:3] == "pk:") {
			t.Fatalf("instance hash keeps %s: %v", f, fields)
		}
	}
}

// TestSuspendParksTasks: suspending parks the instance's queued task (no
// read gets it) and leaves a delivered one with its holder; resuming
// queues the parked one again.
func TestSuspendParksTasks(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	e.readAll("engine")
	e.schedule("a", "t1", "Charge")
	held, err := e.s.ReadTasks(e.ctx, "w1", "Charge", 1, 0)
	if err != nil || len(held) != 1 {
		t.Fatalf("read %v %v", held, err)
	}
	e.schedule("a", "t2", "Charge")
	pending := func(s *interpreter.State) {
		s.Pending = &interpreter.Pending{Kind: interpreter.WaitActivity, TaskID: "t1", Queue: "Charge", Activity: "Charge"}
		s.Threads = []interpreter.Thread{{ID: "b/0", Pending: &interpreter.Pending{Kind: interpreter.WaitActivity, TaskID: "t2", Queue: "Charge", Activity: "Charge"}}}
	}
	set := func(status interpreter.RuntimeStatus, line string) {
		tr := e.transition("a", "", func(s *interpreter.State) { pending(s); s.Status = status })
		tr.History = []interpreter.HistoryEvent{{Type: line, Timestamp: t0}}
		tr.StatusChanged = true
		if errs := e.commit(tr); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	set(interpreter.StatusSuspended, "ExecutionSuspended")
	if got, err := e.s.ReadTasks(e.ctx, "w2", "Charge", 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("a suspended instance's task was handed out: %v %v", got, err)
	}
	if err := e.s.ExtendTask(e.ctx, "w1", held[0].Ref); err != nil {
		t.Fatalf("the task handed out before the suspend: %v", err)
	}
	set(interpreter.StatusRunning, "ExecutionResumed")
	got, err := e.s.ReadTasks(e.ctx, "w2", "Charge", 10, 0)
	if err != nil || len(got) != 1 || got[0].Ref.TaskID != "t2" || string(got[0].Schedule.Input) != `{"amount":3}` {
		t.Fatalf("after the resume: %+v %v", got, err)
	}
	// The requeued task can be withdrawn like any other.
	tr := e.transition("a", "", func(s *interpreter.State) { s.Status = interpreter.StatusTerminated },
		&interpreter.CancelTask{TaskID: "t2", Queue: "Charge"})
	tr.StatusChanged = true
	if errs := e.commit(tr); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if err := e.s.CompleteTask(e.ctx, got[0].Ref, nil, t0); !errors.Is(err, interpreter.ErrInstanceFinished) {
		t.Fatalf("completion after the end: %v", err)
	}
}
