package interpreter

import (
	"strings"
	"testing"
	"time"
)

// fireWatch fires the pending attempt's watch with the store's answer.
func (h *harness) fireWatch(pr *TaskProbe) {
	h.t.Helper()
	p := h.st.Pending
	if p == nil || p.WatchID == "" || p.WatchDue == nil {
		h.t.Fatalf("no watch: pending %+v", p)
	}
	id, due := p.WatchID, *p.WatchDue
	if _, live := h.timers[id]; !live {
		h.t.Fatalf("watch %s has no live timer", id)
	}
	delete(h.timers, id)
	h.now = due
	h.send(Event{Kind: EvTimer, Timer: id, Probe: pr})
}

// TestScheduleToStartRetriesThenFails: a task no worker takes within
// scheduleToStart fails its attempt as ScheduleToStartTimeout, which the
// retry policy retries; the task is withdrawn and carries both timeouts.
func TestScheduleToStartRetriesThenFails(t *testing.T) {
	h := newHarness(t, "WatchedActivity", nil)
	first := h.lastTask()
	if first.ScheduleToStart != 30*time.Second || first.Heartbeat != 10*time.Second {
		t.Fatalf("task %+v lacks its timeouts", first)
	}
	// The watch looks every heartbeat timeout (10s) until scheduleToStart
	// (30s) has passed.
	for _, at := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second} {
		if due := *h.st.Pending.WatchDue; !due.Equal(t0.Add(at)) {
			t.Fatalf("watch due %s, want %s after the start", due, at)
		}
		h.fireWatch(&TaskProbe{Open: true})
	}
	if p := h.st.Pending; p == nil || p.Kind != WaitRetry {
		t.Fatalf("pending %+v, want the retry delay", p)
	}
	h.fireNext() // retry delay
	second := h.lastTask()
	if second.TaskID == first.TaskID || second.Attempt != 2 {
		t.Fatalf("second task %+v", second)
	}
	for h.st.Pending != nil && h.st.Pending.Kind == WaitActivity {
		h.fireWatch(&TaskProbe{Open: true})
	}
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"failed": "ScheduleToStartTimeout", "attempt": 2}`)
	if len(h.timers) != 0 {
		t.Fatalf("live timers left: %v", h.timers)
	}
}

// TestHeartbeatWatch: while the worker heartbeats, the watch fires again a
// heartbeat timeout after the last one and the attempt runs on; once the
// worker is silent that long the attempt fails as HeartbeatTimeout and is
// retried.
func TestHeartbeatWatch(t *testing.T) {
	h := newHarness(t, "WatchedActivity", nil)
	first := h.lastTask()
	h.fireWatch(&TaskProbe{Open: true, Taken: true, Idle: 4 * time.Second}) // at 10s, heartbeat 4s ago
	p := h.st.Pending
	if p == nil || p.Kind != WaitActivity || !p.Started {
		t.Fatalf("pending %+v, want the attempt running", p)
	}
	if want := t0.Add(16 * time.Second); !p.WatchDue.Equal(want) {
		t.Fatalf("watch due %s, want %s (the last heartbeat + 10s)", p.WatchDue, want)
	}
	for range 3 { // it keeps heartbeating
		h.fireWatch(&TaskProbe{Open: true, Taken: true, Idle: 2 * time.Second})
		if p := h.st.Pending; p.Kind != WaitActivity || p.TaskID != first.TaskID {
			t.Fatalf("pending %+v, want the first attempt running", p)
		}
	}
	h.fireWatch(&TaskProbe{Open: true, Taken: true, Idle: 10 * time.Second})
	if p := h.st.Pending; p == nil || p.Kind != WaitRetry {
		t.Fatalf("pending %+v, want the retry delay after a heartbeat timeout", p)
	}
	var failed bool
	for _, ev := range h.hist {
		failed = failed || (ev.Type == "TaskFailed" && len(ev.Data) > 0 && strings.Contains(string(ev.Data), ErrTypeHeartbeat))
	}
	if !failed {
		t.Fatal("no TaskFailed of type HeartbeatTimeout in the history")
	}
	h.fireNext()
	second := h.lastTask()
	if second.Attempt != 2 {
		t.Fatalf("second task %+v", second)
	}
	// A worker that takes the task, then lets it go unfinished (it handed
	// it back as it stopped), times out too.
	h.fireWatch(&TaskProbe{Open: true, Taken: true})
	h.fireWatch(&TaskProbe{Open: true})
	h.wantJSON("output", h.st.Output, `{"failed": "HeartbeatTimeout", "attempt": 2}`)
}

// TestWatchEndsWithTheAttempt: a completed attempt cancels its watch; a
// watch that finds the task closed (its outcome is on the way) stops; one
// whose probe failed looks again later.
func TestWatchEndsWithTheAttempt(t *testing.T) {
	h := newHarness(t, "WatchedActivity", nil)
	h.fireWatch(nil)
	if p := h.st.Pending; p.Kind != WaitActivity || p.WatchDue == nil || !p.WatchDue.Equal(h.now.Add(watchRetry)) {
		t.Fatalf("pending %+v, want the watch again after %s", p, watchRetry)
	}
	h.fireWatch(&TaskProbe{})
	if p := h.st.Pending; p.Kind != WaitActivity || p.WatchID != "" {
		t.Fatalf("pending %+v, want the attempt unwatched", p)
	}
	h.complete("shipped")
	h.wantJSON("output", h.st.Output, `"shipped"`)

	h = newHarness(t, "WatchedActivity", nil)
	h.complete("early")
	if len(h.timers) != 0 {
		t.Fatalf("live timers after completion: %v", h.timers)
	}
}
