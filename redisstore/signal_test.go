package redisstore_test

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// kinds lists the work items' event kinds (and raised events' names).
func kinds(items []interpreter.WorkItem) []string {
	var out []string
	for _, it := range items {
		k := string(it.Event.Kind)
		if it.Event.Kind == interpreter.EvRaised {
			k += ":" + it.Event.Name
		}
		out = append(out, k)
	}
	return out
}

func TestSignalWithStart(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	signal := func(id, name string) bool {
		t.Helper()
		started, err := e.s.SignalWithStart(e.ctx, newInstance(id, t0, `{"x":1}`), name, json.RawMessage(`true`))
		if err != nil {
			t.Fatalf("signal-with-start %s %s: %v", id, name, err)
		}
		return started
	}
	// None runs: it is started, and the event follows its start item.
	if !signal("s1", "Go") {
		t.Fatal("first call did not start s1")
	}
	if got, _ := json.Marshal(kinds(e.readAll("c"))); string(got) != `["ExecutionStarted","EventRaised:Go"]` {
		t.Fatalf("work after the first call: %s", got)
	}
	// It runs: the event is queued, nothing started.
	if signal("s1", "Again") {
		t.Fatal("second call started s1 again")
	}
	if got, _ := json.Marshal(kinds(e.readAll("c"))); string(got) != `["EventRaised:Again"]` {
		t.Fatalf("work after the second call: %s", got)
	}
	// Finished: replaced by a new run.
	e.finish("s1", interpreter.StatusCompleted)
	if !signal("s1", "Third") {
		t.Fatal("a call after s1 finished did not start it again")
	}
	if got, _ := json.Marshal(kinds(e.readAll("c"))); string(got) != `["ExecutionStarted","EventRaised:Third"]` {
		t.Fatalf("work after the third call: %s", got)
	}

	// Concurrent calls: one start, every event.
	const n = 50
	var wg sync.WaitGroup
	starts := make(chan bool, n)
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); starts <- signal("s2", "Ping") }()
	}
	wg.Wait()
	close(starts)
	nStarted := 0
	for s := range starts {
		if s {
			nStarted++
		}
	}
	items := kinds(e.readAll("c"))
	if nStarted != 1 || len(items) != n+1 || items[0] != "ExecutionStarted" {
		t.Fatalf("%d concurrent calls: %d started, work %v", n, nStarted, items)
	}
	for _, k := range items[1:] {
		if k != "EventRaised:Ping" {
			t.Fatalf("work %v", items)
		}
	}
}
