package redisstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// watchEnv runs an engine on a fake clock over a real Redis, for the
// scheduleToStart and heartbeat timeouts of a worker activity.
type watchEnv struct {
	*env
	clock *fakeClock
	id    interpreter.InstanceID
}

const watchedFlow = `name: Watched
activities:
  Ship:
    worker: true
    timeout: 1h
    scheduleToStart: 30s
    heartbeat: 1s
    retry: {maxAttempts: 2, firstInterval: 1s}
steps:
  - activity: Ship
    result: r
    onError:
      - return: {failed: "${ error.type }", attempt: "${ error.attempt }"}
  - return: ${ r }
`

func newWatchEnv(t *testing.T) *watchEnv {
	e := newEnv(t, redisstore.Options{})
	wf := deploy(t, e, watchedFlow)
	clock := &fakeClock{t: t0}
	eng := interpreter.NewEngine(e.s, interpreter.NewCatalog(e.s), interpreter.EngineOptions{
		Consumer: "engine", Block: 20 * time.Millisecond, TimerTick: 5 * time.Millisecond, Clock: clock.Now})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	w := &watchEnv{env: e, clock: clock, id: "w1"}
	if err := e.s.CreateInstance(e.ctx, interpreter.Instantiate(wf, w.id, nil, t0)); err != nil {
		t.Fatal(err)
	}
	return w
}

// waitFor polls the instance until cond holds of its status.
func (w *watchEnv) waitFor(what string, cond func(*interpreter.InstanceStatus) bool) *interpreter.InstanceStatus {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := w.s.FetchStatus(w.ctx, w.id)
		if err != nil {
			w.t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("waiting for %s: status %s, pending %+v", what, st.Status, st.Pending)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// attempt waits until attempt n's task is scheduled and returns its id.
func (w *watchEnv) attempt(n int) string {
	w.t.Helper()
	st := w.waitFor("an attempt", func(st *interpreter.InstanceStatus) bool {
		return st.Pending != nil && st.Pending.Kind == interpreter.WaitActivity && st.Pending.Attempt == n
	})
	return st.Pending.TaskID
}

func (w *watchEnv) output() string {
	w.t.Helper()
	st := w.waitFor("the end", func(st *interpreter.InstanceStatus) bool { return st.Status.Terminal() })
	var v any
	_ = json.Unmarshal(st.Output, &v)
	b, _ := json.Marshal(v)
	return string(b)
}

// TestScheduleToStartTimeoutRetries: a task no worker polls for fails its
// attempt as ScheduleToStartTimeout once scheduleToStart passes, and the
// retry policy retries it; the withdrawn task is handed to no worker.
func TestScheduleToStartTimeoutRetries(t *testing.T) {
	w := newWatchEnv(t)
	first := w.attempt(1)
	w.clock.Add(31 * time.Second)
	w.waitFor("the retry delay", func(st *interpreter.InstanceStatus) bool {
		return st.Pending != nil && st.Pending.Kind == interpreter.WaitRetry
	})
	w.clock.Add(2 * time.Second)
	if second := w.attempt(2); second == first {
		t.Fatal("the retry reused the task")
	}
	tasks, err := w.s.ReadTasks(w.ctx, "late-worker", "Ship", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Schedule.Attempt != 2 || tasks[0].Schedule.ScheduleToStart != 30*time.Second || tasks[0].Schedule.Heartbeat != time.Second {
		t.Fatalf("a late worker got %+v, want attempt 2 alone, with its timeouts", tasks)
	}
	// The worker holds it without a heartbeat until the second watch.
	time.Sleep(1100 * time.Millisecond) // the store's idle time is the server's
	w.clock.Add(31 * time.Second)
	if got := w.output(); got != `{"attempt":2,"failed":"HeartbeatTimeout"}` {
		t.Fatalf("output %s", got)
	}
}

// TestHeartbeatTimeout: while its worker heartbeats the attempt runs on
// past many heartbeat timeouts; once it stops, the attempt fails as
// HeartbeatTimeout and is retried, and the silent worker's late
// completion is refused.
func TestHeartbeatTimeout(t *testing.T) {
	w := newWatchEnv(t)
	first := w.attempt(1)
	tasks, err := w.s.ReadTasks(w.ctx, "worker", "Ship", 1, time.Second)
	if err != nil || len(tasks) != 1 {
		t.Fatal(tasks, err)
	}
	ref := tasks[0].Ref
	w.clock.Add(30 * time.Second) // the first watch: taken, just now
	w.waitFor("the watch re-armed", func(st *interpreter.InstanceStatus) bool {
		return st.Pending != nil && st.Pending.Started
	})
	for i := range 4 {
		time.Sleep(600 * time.Millisecond)
		if err := w.s.ExtendTask(w.ctx, "worker", ref); err != nil {
			t.Fatal(err)
		}
		rev := w.waitFor("the state", func(*interpreter.InstanceStatus) bool { return true }).Revision
		w.clock.Add(time.Second) // each watch finds a heartbeat within the second
		w.waitFor("the watch again", func(st *interpreter.InstanceStatus) bool { return st.Revision > rev })
		st := w.waitFor("the state", func(*interpreter.InstanceStatus) bool { return true })
		if st.Pending == nil || st.Pending.Kind != interpreter.WaitActivity || st.Pending.TaskID != first {
			t.Fatalf("heartbeat %d: pending %+v, want the first attempt running", i, st.Pending)
		}
	}
	time.Sleep(1100 * time.Millisecond) // silent for longer than the heartbeat timeout
	w.clock.Add(time.Second)
	w.waitFor("the retry delay", func(st *interpreter.InstanceStatus) bool {
		return st.Pending != nil && st.Pending.Kind == interpreter.WaitRetry
	})
	w.clock.Add(time.Second)
	w.attempt(2)
	if err := w.s.CompleteTask(w.ctx, ref, json.RawMessage(`"late"`), w.clock.Now()); err == nil {
		t.Fatal("the silent worker's late completion was accepted")
	}
}
