package interpreter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// A raise into an instance this engine cached is committed at once,
// numbered as the store's first message of it; none is queued, nothing
// loaded. Into an ended one it goes the store's way, which refuses it.
func TestRaiseEventAppliesTheCachedState(t *testing.T) {
	m, def := newMemStore(t, timedFlow)
	e := quietEngine(m, EngineOptions{})
	ctx := context.Background()
	if err := e.CreateInstance(ctx, Instantiate(def, "i", nil, t0)); err != nil {
		t.Fatal(err)
	}
	if err := e.RaiseEvent(ctx, "i", "a", []byte(`1`), t0); err != nil {
		t.Fatal(err)
	}
	st := m.states["i"]
	if st.Status != StatusCompleted || string(st.Output) != "1" || st.MsgSeq != 1 {
		t.Fatalf("status %s output %s mseq %d", st.Status, st.Output, st.MsgSeq)
	}
	if last := m.commits[len(m.commits)-1]; last.Message != 1 || last.WorkID != "" || m.mseq["i"] != 1 {
		t.Fatalf("commit message %d work %q, store numbered %d", last.Message, last.WorkID, m.mseq["i"])
	}
	if len(m.queued) != 0 || m.loads != 0 {
		t.Fatalf("queued %v, loads %d", m.queued, m.loads)
	}
	if err := e.RaiseEvent(ctx, "i", "a", []byte(`2`), t0); !errors.Is(err, ErrFinished) {
		t.Fatalf("raise into the completed instance: %v", err)
	}
}

// A message the store numbered but the engine has not applied yet comes
// first: the direct commit conflicts, and the raise is queued behind it,
// so the instance sees them in the order the store accepted them.
func TestRaiseEventKeepsTheOrder(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{})
	ctx := context.Background()
	if err := e.CreateInstance(ctx, Instantiate(def, "i", nil, t0)); err != nil {
		t.Fatal(err)
	}
	if err := m.RaiseEvent(ctx, "i", "a", []byte(`1`), t0); err != nil { // another API process's
		t.Fatal(err)
	}
	if err := e.RaiseEvent(ctx, "i", "b", []byte(`2`), t0); err != nil {
		t.Fatal(err)
	}
	if len(m.queued) != 2 || m.queued[1].Event.Seq != 2 || m.status("i") != StatusRunning {
		t.Fatalf("queued %+v, status %s", m.queued, m.status("i"))
	}
	// The engine applies them in their order, whichever it reads first.
	e.Process(ctx, []WorkItem{m.queued[1], m.queued[0]})
	if st := m.states["i"]; st.Status != StatusCompleted || string(st.Output) != "[1,2]" {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
}

// An instance this engine has not cached (another engine runs it, or it
// has not started) gets its raise queued; so does one whose commit
// conflicts (another engine moved it). A commit that failed is the
// caller's error, with nothing queued: it may have been applied.
func TestRaiseEventFallsBack(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{})
	ctx := context.Background()
	m.create(def, "pending")
	if err := e.RaiseEvent(ctx, "pending", "a", []byte(`1`), t0); err != nil || len(m.queued) != 1 {
		t.Fatalf("raise into an instance not cached: %v, queued %d", err, len(m.queued))
	}
	if err := e.RaiseEvent(ctx, "none", "a", []byte(`1`), t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("raise into no instance: %v", err)
	}

	if err := e.CreateInstance(ctx, Instantiate(def, "moved", nil, t0)); err != nil {
		t.Fatal(err)
	}
	m.moveUnder(t, def, "moved", Event{Kind: EvRaised, Name: "a", Data: []byte(`1`)})
	if err := e.RaiseEvent(ctx, "moved", "b", []byte(`2`), t0); err != nil || len(m.queued) != 2 {
		t.Fatalf("raise after another engine's commit: %v, queued %d", err, len(m.queued))
	}
	if st, _ := e.cache.get("moved"); st != nil {
		t.Fatal("the stale state stays cached")
	}

	if err := e.CreateInstance(ctx, Instantiate(def, "down", nil, t0)); err != nil {
		t.Fatal(err)
	}
	m.commitErr = fmt.Errorf("the store is down: %w", ErrUnavailable)
	if err := e.RaiseEvent(ctx, "down", "a", []byte(`1`), t0); !errors.Is(err, ErrUnavailable) || len(m.queued) != 2 {
		t.Fatalf("raise while commits fail: %v, queued %d", err, len(m.queued))
	}
}

// Raises arriving while a group is being applied form the next group: one
// commit for all of them.
func TestRaiseEventGroups(t *testing.T) {
	m, def := newMemStore(t, timedFlow)
	e := quietEngine(m, EngineOptions{})
	ctx := context.Background()
	const n = 6
	for k := 0; k <= n; k++ {
		if err := e.CreateInstance(ctx, Instantiate(def, InstanceID(fmt.Sprintf("i%d", k)), nil, t0)); err != nil {
			t.Fatal(err)
		}
	}
	calls := m.commitCalls
	release, committing := m.holdFirstCommit()
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	raise := func(k int) {
		defer wg.Done()
		errs[k] = e.RaiseEvent(ctx, InstanceID(fmt.Sprintf("i%d", k)), "a", []byte(`1`), t0)
	}
	wg.Add(1)
	go raise(0)
	<-committing
	for k := 1; k <= n; k++ {
		wg.Add(1)
		go raise(k)
	}
	waitForGroup(t, e, n)
	close(release)
	wg.Wait()
	for k := 0; k <= n; k++ {
		if errs[k] != nil || m.status(InstanceID(fmt.Sprintf("i%d", k))) != StatusCompleted {
			t.Fatalf("i%d: %v, %s", k, errs[k], m.status(InstanceID(fmt.Sprintf("i%d", k))))
		}
	}
	if got := m.commitCalls - calls; got != 2 || len(m.queued) != 0 {
		t.Fatalf("%d commit calls for %d raises (want 2), %d queued", got, n+1, len(m.queued))
	}
}

// A terminate, suspend or resume of an instance this engine holds applies
// at once too, numbered in the same sequence as the raises.
func TestSendControlAppliesTheCachedState(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{})
	ctx := context.Background()
	if err := e.CreateInstance(ctx, Instantiate(def, "i", nil, t0)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		do   func() error
		want RuntimeStatus
	}{
		{func() error { return e.SendControl(ctx, "i", Event{Kind: EvSuspend, Time: t0}) }, StatusSuspended},
		{func() error { return e.RaiseEvent(ctx, "i", "a", []byte(`1`), t0) }, StatusSuspended},
		{func() error { return e.SendControl(ctx, "i", Event{Kind: EvResume, Time: t0}) }, StatusRunning},
		{func() error { return e.SendControl(ctx, "i", Event{Kind: EvTerminate, Time: t0, Reason: "enough"}) }, StatusTerminated},
	}
	for k, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("message %d: %v", k+1, err)
		}
		if st := m.states["i"]; st.Status != s.want || st.MsgSeq != int64(k+1) || m.mseq["i"] != int64(k+1) {
			t.Fatalf("after message %d: status %s (want %s), applied %d, numbered %d", k+1, st.Status, s.want, st.MsgSeq, m.mseq["i"])
		}
	}
	if len(m.queued) != 0 || m.loads != 0 {
		t.Fatalf("queued %v, loads %d", m.queued, m.loads)
	}
	if err := e.SendControl(ctx, "i", Event{Kind: EvTerminate, Time: t0}); !errors.Is(err, ErrFinished) {
		t.Fatalf("terminate of the terminated instance: %v", err)
	}
}
