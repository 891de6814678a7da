package redisstore_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// firstStep is a start's transition of st: Running, a custom status, one
// task and a timer, one history line.
func firstStep(st *interpreter.State) *interpreter.Transition {
	next := *st
	next.Status = interpreter.StatusRunning
	next.Revision = 1
	next.CustomStatus = json.RawMessage(`{"step":1}`)
	due := st.CreatedTime.Add(time.Minute)
	next.Pending = &interpreter.Pending{Kind: interpreter.WaitEvent, StepID: "w", Event: "Go", TimerID: "t1", Deadline: &due}
	return &interpreter.Transition{State: &next, FromRevision: 0, StatusChanged: true,
		Commands: []interpreter.Command{
			&interpreter.ScheduleTask{TaskID: "k1", Instance: st.ID, Activity: "Charge", Input: json.RawMessage(`3`),
				Attempt: 1, StepID: "s1", DefHash: st.DefHash, Workflow: st.Name, Queue: interpreter.LocalQueue, Timeout: time.Minute},
			&interpreter.StartTimer{ID: "t1", Due: due},
		},
		History: []interpreter.HistoryEvent{{Type: "ExecutionStarted", Timestamp: st.CreatedTime}}}
}

// TestCreateStarted: an instance created with its first transition reads
// back, through every read the store has, as one created and then
// committed with that transition by an engine, and leaves no start item;
// a running instance of the id refuses it and a finished one is replaced.
func TestCreateStarted(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	// a: created, then its start item stepped by an engine.
	e.create("a", t0)
	work := e.readAll("engine")
	if len(work) != 1 {
		t.Fatalf("work = %+v", work)
	}
	ta := firstStep(e.load("a"))
	ta.WorkID = work[0].ID
	if errs := e.commit(ta); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// b: the same, on the way in.
	nb := newInstance("b", t0, `{"x":1}`)
	nb.First = firstStep(nb.State)
	if err := e.s.CreateInstance(e.ctx, nb); err != nil {
		t.Fatal(err)
	}
	if nb.First.State.Revision != 1 {
		t.Fatalf("revision of the first transition's state = %d, want 1", nb.First.State.Revision)
	}
	if items := e.readAll("engine"); len(items) != 0 {
		t.Fatalf("a start created with its first transition left work: %+v", items)
	}

	same := func(what string, a, b any) {
		t.Helper()
		aj, _ := json.Marshal(a)
		bj, _ := json.Marshal(b)
		if string(aj) != string(bj) {
			t.Errorf("%s differs:\n a %s\n b %s", what, aj, bj)
		}
	}
	sa, err := e.s.FetchStatus(e.ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := e.s.FetchStatus(e.ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if sb.Status != interpreter.StatusRunning || sb.Revision != 1 || string(sb.Input) != `{"x":1}` || !sb.CreatedTime.Equal(t0) {
		t.Fatalf("status of b = %+v", sb)
	}
	sb.ID = sa.ID
	same("GET status", sa, sb)
	la, lb := e.load("a"), e.load("b")
	lb.ID = la.ID
	same("the loaded state", la, lb)
	ha, _ := e.s.FetchHistory(e.ctx, "a")
	hb, _ := e.s.FetchHistory(e.ctx, "b")
	if len(hb) != 2 || hb[0].Type != "ExecutionScheduled" {
		t.Fatalf("history of b = %+v", hb)
	}
	same("the history", ha, hb)
	list, _, err := e.s.ListInstances(e.ctx, interpreter.ListQuery{})
	if err != nil || len(list) != 2 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if c, err := e.s.CountInstances(e.ctx); err != nil || c["Wf"][interpreter.StatusRunning] != 2 || c["Wf"][interpreter.StatusPending] != 0 {
		t.Fatalf("counts = %v, %v", c, err)
	}
	tasks, err := e.s.ReadTasks(e.ctx, "w", interpreter.LocalQueue, 10, 0)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("tasks = %+v, %v", tasks, err)
	}
	for _, tk := range tasks {
		if tk.Schedule.TaskID != "k1" || string(tk.Schedule.Input) != "3" {
			t.Fatalf("task = %+v", tk.Schedule)
		}
	}
	fired := 0
	for p := range e.s.Partitions() {
		n, _, err := e.s.FireDueTimers(e.ctx, p, t0.Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		fired += n
	}
	if items := e.readAll("engine"); fired != 2 || len(items) != 2 || items[0].Event.Kind != interpreter.EvTimer || items[1].Event.Kind != interpreter.EvTimer {
		t.Fatalf("fired %d timers, then read %+v", fired, items)
	}

	// A running instance is not replaced: nothing is written.
	again := newInstance("b", t0.Add(time.Hour), `2`)
	again.First = firstStep(again.State)
	if err := e.s.CreateInstance(e.ctx, again); !errors.Is(err, interpreter.ErrAlreadyRunning) {
		t.Fatalf("create over a running instance: %v", err)
	}
	if st := e.load("b"); st.Revision != 1 || !st.CreatedTime.Equal(t0) {
		t.Fatalf("the refused create wrote: %+v", st)
	}
	// A finished one is, with its history and its count.
	e.finish("b", interpreter.StatusCompleted)
	if err := e.s.CreateInstance(e.ctx, again); err != nil {
		t.Fatal(err)
	}
	st, _ := e.s.FetchStatus(e.ctx, "b")
	if st.Status != interpreter.StatusRunning || string(st.Input) != "2" || st.Output != nil || st.Revision != 1 ||
		!st.CreatedTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("replaced status = %+v", st)
	}
	if h, _ := e.s.FetchHistory(e.ctx, "b"); len(h) != 2 {
		t.Fatalf("history after replace = %+v", h)
	}
	if c, err := e.s.CountInstances(e.ctx); err != nil || c["Wf"][interpreter.StatusRunning] != 2 || c["Wf"][interpreter.StatusCompleted] != 0 {
		t.Fatalf("counts after replace = %v, %v", c, err)
	}
	// A transition that is not the start's is refused.
	bad := newInstance("c", t0, "")
	bad.First = firstStep(bad.State)
	bad.First.WorkID = "1-1"
	if err := e.s.CreateInstance(e.ctx, bad); err == nil {
		t.Fatal("a first transition consuming a work item was accepted")
	}
}
