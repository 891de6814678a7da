package interpreter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// Outcomes handed over while one is being applied form a group that is
// applied as one commit; a second outcome of an instance already in the
// forming group goes on its own; every caller learns its outcome applied.
func TestApplyTaskOutcomeGroups(t *testing.T) {
	m, def := newMemStore(t, taskFlow)
	e := quietEngine(m, EngineOptions{})
	const n = 8
	refs := make([]TaskRef, n+1)
	evs := make([]Event, n+1)
	for i := range refs {
		refs[i], evs[i] = startTask(t, m, e, def, InstanceID(fmt.Sprintf("i%d", i)))
	}
	calls := m.commitCalls

	// The first outcome's commit waits until the others have joined.
	release, committing := m.holdFirstCommit()
	applied := make([]bool, n+2)
	var wg sync.WaitGroup
	run := func(k int, ref TaskRef, ev Event) {
		defer wg.Done()
		applied[k] = e.ApplyTaskOutcome(context.Background(), ref, ev)
	}
	wg.Add(1)
	go run(0, refs[0], evs[0])
	<-committing
	for k := 1; k <= n; k++ {
		wg.Add(1)
		go run(k, refs[k], evs[k])
	}
	waitForGroup(t, e, n)
	// i1 again: it cannot join the group that holds i1, so it goes alone
	// (and, the instance having completed by then, takes no transition).
	wg.Add(1)
	go run(n+1, refs[1], evs[1])
	close(release)
	wg.Wait()
	for k := 0; k <= n; k++ {
		if st := m.status(InstanceID(fmt.Sprintf("i%d", k))); st != StatusCompleted {
			t.Fatalf("i%d is %s", k, st)
		}
		if !applied[k] && k != 1 {
			t.Fatalf("outcome %d was not applied", k)
		}
	}
	// i1's outcome applies once: in the group, or first, alone (the
	// repeat need not wait for the group, which holds no lock until it
	// runs).
	if applied[1] == applied[n+1] {
		t.Fatalf("i1's outcome applied in the group: %v, alone: %v", applied[1], applied[n+1])
	}
	// The first alone, the group, and the repeat when it applied.
	want := 2
	if applied[n+1] {
		want = 3
	}
	if got := m.commitCalls - calls; got != want {
		t.Fatalf("%d commit calls for %d outcomes, want %d", got, n+1, want)
	}
}

// holdFirstCommit makes the store's next commit wait, from the moment it
// is under way (committing closes) until release is closed; other commits
// go on meanwhile.
func (m *memStore) holdFirstCommit() (release, committing chan struct{}) {
	release, committing = make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	m.mu.Lock()
	defer m.mu.Unlock()
	m.answer = func(*Transition) error {
		if first.CompareAndSwap(false, true) {
			close(committing)
			m.mu.Unlock() // Commit holds it; the others commit meanwhile
			<-release
			m.mu.Lock()
		}
		return nil
	}
	return release, committing
}

// waitForGroup waits until the group forming holds n chains.
func waitForGroup(t *testing.T, e *Engine, n int) {
	t.Helper()
	waitFor(t, "the group to form", func() bool {
		e.outcomes.mu.Lock()
		defer e.outcomes.mu.Unlock()
		return e.outcomes.forming != nil && len(e.outcomes.forming.chains) == n
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// foldFlow waits for an event after its activity, as ReserveTicket does.
const foldFlow = `name: Fold
activities:
  Calc: {expr: "input + 1"}
steps:
  - activity: Calc
    input: 1
    result: r
  - wait: {event: go, timeout: 1m, result: g}
  - return: ${ r * 10 + g }
`

// startCached starts instance id the eager way (its state cached, its task
// queued) and returns its task's ref and completion (Calc's 2).
func startCached(t *testing.T, m *memStore, e *Engine, def *dsl.Workflow, id InstanceID) (TaskRef, Event) {
	t.Helper()
	if err := e.CreateInstance(context.Background(), Instantiate(def, id, nil, t0)); err != nil {
		t.Fatal(err)
	}
	return lastTask(t, m, id)
}

// foldSetup starts "held" and "x", holds the commit of held's outcome
// while x's outcome and a raise into x join the forming group (in the
// order given: outcome first, or the raise first), and returns when both
// are in it, with release to let the commit go on and wait for both
// callers' answers.
func foldSetup(t *testing.T, m *memStore, e *Engine, def *dsl.Workflow, raiseFirst bool) (release func(), wait func() (applied bool, raised error)) {
	t.Helper()
	heldRef, heldEv := startCached(t, m, e, def, "held")
	ref, ev := startCached(t, m, e, def, "x")
	rel, committing := m.holdFirstCommit()
	var wg sync.WaitGroup
	var applied bool
	var raised error
	wg.Add(3)
	go func() { defer wg.Done(); e.ApplyTaskOutcome(context.Background(), heldRef, heldEv) }()
	<-committing
	outcome := func() { defer wg.Done(); applied = e.ApplyTaskOutcome(context.Background(), ref, ev) }
	raise := func() { defer wg.Done(); raised = e.RaiseEvent(context.Background(), "x", "go", []byte(`5`), t0) }
	first, second := outcome, raise
	if raiseFirst {
		first, second = raise, outcome
	}
	go first()
	waitForGroup(t, e, 1)
	go second()
	waitFor(t, "the message to ride on the outcome", func() bool {
		e.outcomes.mu.Lock()
		defer e.outcomes.mu.Unlock()
		g := e.outcomes.forming
		return g != nil && len(g.chains) == 1 && g.chains[0].rider != nil
	})
	return func() { close(rel) }, func() (bool, error) { wg.Wait(); return applied, raised }
}

// A task outcome and a raise of one instance that meet in a group are one
// transition: one commit that acknowledges the task and numbers the
// message, the wait's timer neither set nor cancelled; whichever came first.
func TestOutcomeAndRaiseFold(t *testing.T) {
	for _, raiseFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("raiseFirst=%v", raiseFirst), func(t *testing.T) {
			m, def := newMemStore(t, foldFlow)
			e := quietEngine(m, EngineOptions{})
			release, wait := foldSetup(t, m, e, def, raiseFirst)
			calls, commits := m.commitCalls, len(m.commits)
			release()
			applied, raised := wait()
			if !applied || raised != nil {
				t.Fatalf("outcome applied %v, raise %v", applied, raised)
			}
			st := m.states["x"]
			if st.Status != StatusCompleted || string(st.Output) != "25" || st.MsgSeq != 1 || st.Revision != 2 {
				t.Fatalf("status %s output %s mseq %d revision %d", st.Status, st.Output, st.MsgSeq, st.Revision)
			}
			// held's commit was under way already; then the group: x alone.
			if got := m.commitCalls - calls; got != 1 {
				t.Fatalf("%d commit calls after the held one, want 1", got)
			}
			var tr *Transition
			for _, c := range m.commits[commits:] {
				if c.State.ID == "x" {
					if tr != nil {
						t.Fatal("x took two transitions")
					}
					tr = c
				}
			}
			if tr == nil || tr.TaskAck == nil || tr.Message != 1 || tr.FromRevision != 1 || !tr.StatusChanged {
				t.Fatalf("folded transition %+v", tr)
			}
			for _, c := range tr.Commands {
				switch c.(type) {
				case *StartTimer, *CancelTimer:
					t.Fatalf("the folded commit carries %T", c)
				}
			}
			if len(m.queued) != 0 || m.loads != 0 {
				t.Fatalf("queued %v, loads %d", m.queued, m.loads)
			}
		})
	}
}

// A raise that cannot ride goes alone, with the answers it gets without a
// fold: into an instance the outcome ends, the store refuses it; after the
// folded commit conflicts, the outcome reloads and the raise applies on
// its own; when the round cannot load the instance, the raise is queued;
// after the commit fails, the raise answers the failure (it may have been
// applied) and the runtime finishes the task itself.
func TestOutcomeAndRaiseFoldFallsBack(t *testing.T) {
	t.Run("ended", func(t *testing.T) {
		m, def := newMemStore(t, taskFlow)
		e := quietEngine(m, EngineOptions{})
		release, wait := foldSetup(t, m, e, def, false)
		release()
		if applied, raised := wait(); !applied || !errors.Is(raised, ErrFinished) {
			t.Fatalf("outcome applied %v, raise %v", applied, raised)
		}
		if m.status("x") != StatusCompleted {
			t.Fatalf("x is %s", m.status("x"))
		}
	})
	t.Run("conflict", func(t *testing.T) {
		m, def := newMemStore(t, foldFlow)
		e := quietEngine(m, EngineOptions{})
		release, wait := foldSetup(t, m, e, def, false)
		hold := m.answer
		var folded atomic.Int32
		m.answer = func(tr *Transition) error {
			if tr.TaskAck != nil && tr.Message != 0 {
				folded.Add(1)
				return ErrConflict
			}
			return hold(tr)
		}
		release()
		if applied, raised := wait(); !applied || raised != nil {
			t.Fatalf("outcome applied %v, raise %v", applied, raised)
		}
		if st := m.states["x"]; st.Status != StatusCompleted || string(st.Output) != "25" || folded.Load() != 1 {
			t.Fatalf("status %s output %s, folded commits %d", st.Status, st.Output, folded.Load())
		}
	})
	t.Run("load", func(t *testing.T) {
		m, def := newMemStore(t, foldFlow)
		e := quietEngine(m, EngineOptions{})
		release, wait := foldSetup(t, m, e, def, false)
		e.cache.drop("x") // so the round loads x, and fails
		m.mu.Lock()
		m.loadErr = fmt.Errorf("the store is down: %w", ErrUnavailable)
		m.mu.Unlock()
		release()
		if applied, raised := wait(); applied || raised != nil {
			t.Fatalf("outcome applied %v, raise %v", applied, raised)
		}
		if m.status("x") != StatusRunning || len(m.queued) != 1 || m.queued[0].Event.Name != "go" {
			t.Fatalf("x is %s, queued %v", m.status("x"), m.queued)
		}
	})
	t.Run("failure", func(t *testing.T) {
		m, def := newMemStore(t, foldFlow)
		e := quietEngine(m, EngineOptions{})
		release, wait := foldSetup(t, m, e, def, false)
		hold := m.answer
		down := fmt.Errorf("the store is down: %w", ErrUnavailable)
		m.answer = func(tr *Transition) error {
			if tr.TaskAck != nil && tr.Message != 0 {
				return down
			}
			return hold(tr)
		}
		release()
		if applied, raised := wait(); applied || !errors.Is(raised, ErrUnavailable) {
			t.Fatalf("outcome applied %v, raise %v", applied, raised)
		}
		if m.status("x") != StatusRunning || len(m.queued) != 0 {
			t.Fatalf("x is %s, queued %v", m.status("x"), m.queued)
		}
	})
}
