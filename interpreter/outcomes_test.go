package interpreter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
