package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

const pinger = `
name: Pinger
steps:
  - set: {n: 0}
  - while:
      condition: "true"
      max: 1000
      steps:
        - wait: {event: Ping}
        - set: {n: "${ n + 1 }"}
        - setStatus: "${ input.base + n }"
`

// TestEngineCacheIsNeverTrusted drives two engines by hand over one
// instance so that one of them holds a stale cached state: once after the
// other engine moved the instance on, once after the instance was
// finished, started again under its id and brought to the very revision
// of the stale state. Each time the commit must refuse the stale state and
// the engine redo the work on the stored one.
func TestEngineCacheIsNeverTrusted(t *testing.T) {
	e := newEnv(t)
	e.deploy("pinger.yaml", []byte(pinger))
	ctx := context.Background()
	a := interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{Consumer: "a"})
	b := interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{Consumer: "b"})
	ping := func() {
		t.Helper()
		if err := e.raise("x", "Ping", nil); err != nil {
			t.Fatal(err)
		}
	}
	status := func(want string) {
		t.Helper()
		st, err := e.store.FetchStatus(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		if string(st.CustomStatus) != want {
			t.Fatalf("custom status %s, want %s (revision %d)", st.CustomStatus, want, st.Revision)
		}
	}

	e.start("Pinger", "x", map[string]any{"base": 0})
	e.hand(a) // a caches x
	ping()
	e.hand(b) // b moves x on; a's copy is stale
	ping()
	e.hand(a)
	status("2")

	// a now caches revision r of the first incarnation. b terminates x,
	// x starts again with base 100 and is brought to revision r by b.
	st, _ := e.store.FetchStatus(ctx, "x")
	r := st.Revision
	if err := e.store.SendControl(ctx, "x", interpreter.Event{Kind: interpreter.EvTerminate, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.hand(b)
	time.Sleep(5 * time.Millisecond) // another created time
	e.start("Pinger", "x", map[string]any{"base": 100})
	e.hand(b)
	for {
		st, _ := e.store.FetchStatus(ctx, "x")
		if st.Revision == r {
			break
		}
		if st.Revision > r {
			t.Fatalf("revision %d passed %d", st.Revision, r)
		}
		ping()
		e.hand(b)
	}
	ping()
	e.hand(a) // a's cached state has revision r and the old created time
	st, _ = e.store.FetchStatus(ctx, "x")
	var n int
	if err := json.Unmarshal(st.CustomStatus, &n); err != nil || n < 101 {
		t.Fatalf("custom status %s: computed on the first incarnation", st.CustomStatus)
	}
	if st.Revision != r+1 {
		t.Fatalf("revision %d, want %d", st.Revision, r+1)
	}
}

// TestStaleCacheDropsNothing: an item that a cached state would ignore (a
// timer set by another engine after the state was cached) is applied to the
// stored state, not dropped.
func TestStaleCacheDropsNothing(t *testing.T) {
	e := newEnv(t)
	e.deploy("timed.yaml", []byte(`
name: Timed
steps:
  - wait: {event: Go}
  - wait: {duration: 1s}
  - return: done
`))
	ctx := context.Background()
	a := interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{Consumer: "a"})
	b := interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{Consumer: "b"})
	e.start("Timed", "x", nil)
	e.hand(a) // a caches x waiting for Go
	if err := e.raise("x", "Go", nil); err != nil {
		t.Fatal(err)
	}
	e.hand(b) // b sets the timer
	for _, p := range e.allParts() {
		b.FireTimers(ctx, p, time.Now().Add(time.Minute))
	}
	e.hand(a) // the timer, against a's stale state
	st, err := e.store.FetchStatus(ctx, "x")
	if err != nil || st.Status != interpreter.StatusCompleted {
		t.Fatalf("x: %+v %v (the timer was dropped)", st, err)
	}
}
