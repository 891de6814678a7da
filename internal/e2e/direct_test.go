package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

const oneTask = `
name: OneTask
activities:
  Double: {expr: "input * 2"}
steps:
  - activity: Double
    input: ${ input }
    result: d
  - wait: {event: Other, result: o}
  - return: ${ [d, o] }
`

// TestApplyTaskOutcome: an outcome handed straight to the engine commits
// with the task's acknowledgement and queues no work item; handing it
// again changes nothing; it survives a stale cached state; and when the
// instance has ended meanwhile the engine declines, so the runtime falls
// back to the store.
func TestApplyTaskOutcome(t *testing.T) {
	e := newEnv(t)
	e.deploy("one-task.yaml", []byte(oneTask))
	ctx := context.Background()
	a := interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{Consumer: "a"})
	b := interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{Consumer: "b"})
	noWork := func() {
		t.Helper()
		if items, err := e.store.ReadWork(ctx, "probe", e.allParts(), 100, 0); err != nil || len(items) != 0 {
			t.Fatalf("work queued: %+v %v", items, err)
		}
	}
	done := func(tk redisstore.Task) interpreter.Event {
		return interpreter.Event{Kind: interpreter.EvCompleted, Time: time.Now(), TaskID: tk.Ref.TaskID, Data: json.RawMessage(`42`)}
	}

	// x: straight through, with a state that b made stale meanwhile.
	e.start("OneTask", "x", 21)
	e.hand(a) // a caches x with the task scheduled
	tk := e.leaseTask()
	if err := e.raise("x", "Other", "early"); err != nil {
		t.Fatal(err)
	}
	e.hand(b) // b buffers the event: a's cached state is stale
	if !a.ApplyTaskOutcome(ctx, tk.Ref, done(tk)) {
		t.Fatal("the engine declined a task of a running instance")
	}
	noWork()
	st := e.waitDone("x", 5*time.Second)
	jsonEq(t, "x output", st.Output, `[42,"early"]`)
	if n := e.client.XPending(ctx, "cairn:{"+strconv.Itoa(tk.Ref.Partition)+"}:tasks:"+interpreter.LocalQueue, "workers").Val().Count; n != 0 {
		t.Fatalf("%d tasks still pending", n)
	}
	// Again: the engine declines (x took no transition) and the store
	// path finds the task acknowledged; nothing changes.
	rev := st.Revision
	if a.ApplyTaskOutcome(ctx, tk.Ref, done(tk)) {
		t.Fatal("a repeated outcome was applied")
	}
	if err := e.store.CompleteTask(ctx, tk.Ref, json.RawMessage(`42`), time.Now()); !errors.Is(err, interpreter.ErrDuplicate) {
		t.Fatalf("completing the task again: %v, want ErrDuplicate", err)
	}
	if st, _ := e.store.FetchStatus(ctx, "x"); st.Revision != rev {
		t.Fatalf("a repeated outcome moved x to revision %d", st.Revision)
	}
	hist, _ := e.store.FetchHistory(ctx, "x")
	n := 0
	for _, h := range hist {
		if h.Type == "TaskCompleted" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d TaskCompleted lines", n)
	}

	// y: terminated while its task ran: the terminate withdrew the task,
	// so the engine declines and the store answers that the instance
	// ended.
	e.start("OneTask", "y", 1)
	e.hand(a)
	tk = e.leaseTask()
	if err := e.store.SendControl(ctx, "y", interpreter.Event{Kind: interpreter.EvTerminate, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.hand(b)
	if a.ApplyTaskOutcome(ctx, tk.Ref, done(tk)) {
		t.Fatal("the engine applied a task of a terminated instance")
	}
	if err := e.store.CompleteTask(ctx, tk.Ref, json.RawMessage(`2`), time.Now()); !errors.Is(err, interpreter.ErrInstanceFinished) {
		t.Fatalf("completing a task of a terminated instance: %v, want ErrInstanceFinished", err)
	}
	if st := e.waitDone("y", time.Second); st.Status != interpreter.StatusTerminated {
		t.Fatalf("y: %s", st.Status)
	}
}

// TestEarlierIncarnationsTaskIsIgnored: the outcome of a task that an
// instance scheduled before it was terminated and started again under its
// id does not pass for the new instance's task.
func TestEarlierIncarnationsTaskIsIgnored(t *testing.T) {
	e := newEnv(t)
	e.deploy("one-task.yaml", []byte(oneTask))
	ctx := context.Background()
	eng := interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{Consumer: "a"})
	e.start("OneTask", "x", 1)
	e.hand(eng)
	old := e.leaseTask()
	if err := e.store.SendControl(ctx, "x", interpreter.Event{Kind: interpreter.EvTerminate, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.hand(eng)
	time.Sleep(5 * time.Millisecond)
	e.start("OneTask", "x", 2)
	e.hand(eng)
	fresh := e.leaseTask()
	if old.Ref.TaskID == fresh.Ref.TaskID {
		t.Fatalf("both incarnations scheduled task %s", old.Ref.TaskID)
	}
	// The old task's result arrives first: ignored (the terminate withdrew
	// the task, so the store takes it for a repeat).
	if err := e.store.CompleteTask(ctx, old.Ref, json.RawMessage(`100`), time.Now()); !errors.Is(err, interpreter.ErrDuplicate) {
		t.Fatalf("the old task's result: %v, want ErrDuplicate", err)
	}
	if err := e.raise("x", "Other", "o"); err != nil {
		t.Fatal(err)
	}
	e.hand(eng)
	if st, _ := e.store.FetchStatus(ctx, "x"); st.Status != interpreter.StatusRunning {
		t.Fatalf("x is %s after the old task's result", st.Status)
	}
	if err := e.store.CompleteTask(ctx, fresh.Ref, json.RawMessage(`4`), time.Now()); err != nil {
		t.Fatal(err)
	}
	e.hand(eng)
	st, _ := e.store.FetchStatus(ctx, "x")
	jsonEq(t, "output", st.Output, `[4,"o"]`)
}
