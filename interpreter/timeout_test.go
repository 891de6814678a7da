package interpreter

import (
	"encoding/json"
	"testing"
	"time"
)

// fireTimeout fires the pending attempt's timeout timer (or its grace
// timer) at its due time, with the store's answer about the task.
func (h *harness) fireTimeout(pr *TaskProbe) {
	h.t.Helper()
	p := h.st.Pending
	if p == nil || p.Kind != WaitActivity || p.TimerID == "" || p.Deadline == nil {
		h.t.Fatalf("no timeout timer: pending %+v", p)
	}
	id, due := p.TimerID, *p.Deadline
	if _, live := h.timers[id]; !live {
		h.t.Fatalf("timer %s is not live", id)
	}
	delete(h.timers, id)
	h.now = due
	h.send(Event{Kind: EvTimer, Timer: id, Probe: pr})
}

// outcome sends the pending attempt's completion, finished at finished
// (the event's time) and applied at the harness's clock.
func (h *harness) outcome(result any, finished time.Time) {
	h.t.Helper()
	raw, _ := json.Marshal(result)
	if !h.send(Event{Kind: EvCompleted, TaskID: h.lastTask().TaskID, Data: raw, Time: finished}) {
		h.t.Fatal("completion was ignored")
	}
}

func (h *harness) wantOverdue(deadline time.Time) {
	h.t.Helper()
	p := h.st.Pending
	if p == nil || p.Kind != WaitActivity || p.Overdue == nil || !p.Overdue.Equal(deadline) {
		h.t.Fatalf("pending %+v, want the attempt overdue since %s", p, deadline)
	}
	if want := deadline.Add(timeoutGrace); !p.Deadline.Equal(want) {
		h.t.Fatalf("grace timer due %s, want %s", p.Deadline, want)
	}
}

// TestTimeoutTakesAnOutcomeThatFinishedInTime: the timeout fires while a
// worker holds the task (its outcome held through an outage, say); the
// outcome that arrives later but finished before the deadline is taken,
// and the instance's update time does not go back.
func TestTimeoutTakesAnOutcomeThatFinishedInTime(t *testing.T) {
	for _, pr := range []*TaskProbe{{Open: true, Taken: true}, {}, {Unknown: true}} {
		h := newHarness(t, "TimedActivity", nil)
		deadline := t0.Add(10 * time.Second)
		h.fireTimeout(pr)
		h.wantOverdue(deadline)
		fired := h.st.LastUpdatedTime
		h.now = deadline.Add(3 * time.Second)
		h.outcome("shipped", deadline.Add(-time.Second))
		h.wantStatus(StatusCompleted)
		h.wantJSON("output", h.st.Output, `"shipped"`)
		if h.st.LastUpdatedTime.Before(fired) {
			t.Fatalf("probe %+v: updated %s, before the timer's %s", pr, h.st.LastUpdatedTime, fired)
		}
		if len(h.timers) != 0 {
			t.Fatalf("probe %+v: live timers left: %v", pr, h.timers)
		}
	}
}

// TestTimeoutFailsAnOutcomeThatFinishedLate: an outcome that arrives in
// the grace but finished after the deadline fails the attempt as
// ActivityTimeout (retried), as the timeout would have.
func TestTimeoutFailsAnOutcomeThatFinishedLate(t *testing.T) {
	h := newHarness(t, "TimedActivity", nil)
	deadline := t0.Add(10 * time.Second)
	h.fireTimeout(&TaskProbe{Open: true, Taken: true})
	h.wantOverdue(deadline)
	h.now = deadline.Add(2 * time.Second)
	h.outcome("shipped", deadline.Add(time.Second))
	if p := h.st.Pending; p == nil || p.Kind != WaitRetry {
		t.Fatalf("pending %+v, want the retry delay after ActivityTimeout", p)
	}
	h.fireNext() // the retry delay
	if tk := h.lastTask(); tk.Attempt != 2 {
		t.Fatalf("task %+v, want attempt 2", tk)
	}
	// Attempt 2: a worker holds it and nothing comes in the grace.
	h.fireTimeout(&TaskProbe{Open: true, Taken: true})
	h.fireTimeout(&TaskProbe{Open: true, Taken: true})
	h.wantJSON("output", h.st.Output, `{"failed": "ActivityTimeout", "attempt": 2}`)
	if len(h.timers) != 0 {
		t.Fatalf("live timers left: %v", h.timers)
	}
}

// TestTimeoutOfAnUntakenTaskFailsAtOnce: nothing can have finished a task
// no worker took, and without a probe (a store that cannot say) the
// timeout fails the attempt at its deadline as before.
func TestTimeoutOfAnUntakenTaskFailsAtOnce(t *testing.T) {
	for _, pr := range []*TaskProbe{{Open: true}, nil} {
		h := newHarness(t, "TimedActivity", nil)
		h.fireTimeout(pr)
		if p := h.st.Pending; p == nil || p.Kind != WaitRetry {
			t.Fatalf("probe %+v: pending %+v, want the retry delay", pr, p)
		}
		var failed bool
		for _, ev := range h.hist {
			failed = failed || ev.Type == "TaskFailed"
		}
		if !failed {
			t.Fatalf("probe %+v: no TaskFailed in the history", pr)
		}
		// A late outcome of the first attempt is ignored.
		raw, _ := json.Marshal("late")
		if h.send(Event{Kind: EvCompleted, TaskID: h.tasks[0].TaskID, Data: raw}) {
			t.Fatalf("probe %+v: the first attempt's late outcome was applied", pr)
		}
	}
}

// TestWatchedTaskCoversTheTimeout: the engine probes the task when the
// attempt's timeout timer fires, as for its watch.
func TestWatchedTaskCoversTheTimeout(t *testing.T) {
	h := newHarness(t, "TimedActivity", nil)
	p := h.st.Pending
	ref, ok := h.st.WatchedTask(p.TimerID)
	if !ok || ref.TaskID != p.TaskID || ref.Instance != h.st.ID || ref.Queue != p.Queue {
		t.Fatalf("WatchedTask(%s) = %+v, %v; want the attempt's task %s", p.TimerID, ref, ok, p.TaskID)
	}
	if _, ok := h.st.WatchedTask("w-nope"); ok {
		t.Fatal("an unknown timer is watched")
	}
}
