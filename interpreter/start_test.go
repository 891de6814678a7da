package interpreter

import (
	"context"
	"errors"
	"testing"
	"time"
)

const timedFlow = `name: Timed
steps:
  - wait: {event: a, timeout: 1m, result: x}
  - return: ${ x }
`

// An eager start writes the instance past its first step, with no start
// item; the engine knows the timer it set and runs the next item on the
// state it cached, loading nothing.
func TestCreateInstanceRunsTheFirstStep(t *testing.T) {
	m, def := newMemStore(t, timedFlow)
	e := quietEngine(m, EngineOptions{})
	ctx := context.Background()
	if err := e.CreateInstance(ctx, Instantiate(def, "i", nil, t0)); err != nil {
		t.Fatal(err)
	}
	st := m.states["i"]
	if st.Status != StatusRunning || st.Revision != 1 || st.Pending == nil || st.Pending.Event != "a" {
		t.Fatalf("stored state = %+v", st)
	}
	if len(m.started) != 0 || len(m.commits) != 1 {
		t.Fatalf("start items %v, transitions %d", m.started, len(m.commits))
	}
	if due := e.nextDue[0]; !due.Equal(t0.Add(time.Minute)) {
		t.Fatalf("the engine plans its timers for %v, want %v", due, t0.Add(time.Minute))
	}
	e.Process(ctx, []WorkItem{m.raise("i", "a", "1")})
	if st := m.states["i"]; st.Status != StatusCompleted || string(st.Output) != "1" || m.loads != 0 {
		t.Fatalf("status %s output %s loads %d", st.Status, st.Output, m.loads)
	}

	// The store's refusal is the caller's answer, and nothing is cached.
	if err := e.CreateInstance(ctx, Instantiate(def, "j", nil, t0)); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateInstance(ctx, Instantiate(def, "j", nil, t0.Add(time.Second))); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second start of j: %v", err)
	}
	if st, _ := e.cache.get("j"); st == nil || !st.CreatedTime.Equal(t0) {
		t.Fatalf("cached j = %+v", st)
	}
}

// A start whose first step starts a child goes the engine's way, as a
// start item, since a child starts after its parent's commit.
func TestCreateInstanceLeavesCallsToTheRound(t *testing.T) {
	m, def := newMemStore(t, `name: Calls
steps:
  - call: Child
    result: r
  - return: ${ r }
`)
	e := quietEngine(m, EngineOptions{})
	if err := e.CreateInstance(context.Background(), Instantiate(def, "p", nil, t0)); err != nil {
		t.Fatal(err)
	}
	if st := m.states["p"]; st.Status != StatusPending || len(m.started) != 1 || len(m.commits) != 0 {
		t.Fatalf("status %s, start items %v, transitions %d", st.Status, m.started, len(m.commits))
	}
}

// With every first-step slot taken (as many as cores), a start goes the
// engine's way at once rather than wait: the starts compute no more
// expressions at a time than the engine's rounds would.
func TestCreateInstanceWithNoSlotFree(t *testing.T) {
	m, def := newMemStore(t, timedFlow)
	e := quietEngine(m, EngineOptions{})
	for range cap(e.eager) {
		e.eager <- struct{}{}
	}
	if err := e.CreateInstance(context.Background(), Instantiate(def, "i", nil, t0)); err != nil {
		t.Fatal(err)
	}
	if st := m.states["i"]; st.Status != StatusPending || len(m.started) != 1 {
		t.Fatalf("status %s, start items %v", st.Status, m.started)
	}
}
