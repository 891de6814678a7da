package activity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/interpreter"
)

// peak counts attempts in flight and remembers the most at once.
type peak struct{ now, most atomic.Int32 }

func (p *peak) enter() {
	n := p.now.Add(1)
	for {
		m := p.most.Load()
		if n <= m || p.most.CompareAndSwap(m, n) {
			return
		}
	}
}

func (p *peak) leave() { p.now.Add(-1) }

// TestHTTPBindingsRunManyAtOnce: 200 instances of an http activity that
// takes a second, started at once on one runtime with the default limits,
// all finish within a few seconds: http calls wait on the network, so
// they are not held to the CPU-sized limit of Go handlers.
func TestHTTPBindingsRunManyAtOnce(t *testing.T) {
	e := newEnv(t)
	var inFlight peak
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.enter()
		defer inFlight.leave()
		time.Sleep(time.Second)
		fmt.Fprint(w, `"ok"`)
	}))
	t.Cleanup(srv.Close)
	e.deploy(catchWorkflow("Slow", "Call", "    http: {url: \""+srv.URL+"\"}\n    timeout: 1m"))
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("slow-", i)
	}
	e.startScheduled("Slow", ids)
	began := time.Now()
	e.runtime(activity.Options{})
	for _, id := range ids {
		if o := e.outcome(id); string(o.Result) != `"ok"` {
			t.Fatalf("%s: %+v", id, o)
		}
	}
	took := time.Since(began)
	t.Logf("%d instances of a 1 s http activity took %s on one runtime; at most %d calls in flight at once", n, took.Round(time.Millisecond), inFlight.most.Load())
	if took > 30*time.Second {
		t.Fatalf("%d one-second http calls took %s", n, took)
	}
	if m := inFlight.most.Load(); m <= 8 {
		t.Fatalf("at most %d http calls were in flight at once: they are held to a CPU-sized limit", m)
	}
}

// TestActivityConcurrencyLimit: an activity with `concurrency: 2` never
// has more than two attempts in flight in a runtime, whatever its class
// allows.
func TestActivityConcurrencyLimit(t *testing.T) {
	e := newEnv(t)
	var inFlight peak
	e.reg.Register("Charge", func(ctx context.Context, task activity.Task) (any, error) {
		inFlight.enter()
		defer inFlight.leave()
		time.Sleep(20 * time.Millisecond)
		return task.InstanceID, nil
	})
	e.deploy(catchWorkflow("Limited", "Charge", "    go: true\n    concurrency: 2"))
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = fmt.Sprint("lim-", i)
	}
	e.startScheduled("Limited", ids)
	e.runtime(activity.Options{Concurrency: 16})
	for _, id := range ids {
		if o := e.outcome(id); string(o.Result) != `"`+id+`"` {
			t.Fatalf("%s: %+v", id, o)
		}
	}
	if m := inFlight.most.Load(); m != 2 {
		t.Fatalf("at most %d attempts in flight at once, want 2", m)
	}
}

// TestGlobalConcurrencyLimit: `concurrency: {limit: 2, scope: global}`
// holds two runtimes (each of which alone would allow two) to two attempts
// in flight between them, through the store's semaphore.
func TestGlobalConcurrencyLimit(t *testing.T) {
	e := newEnv(t)
	var inFlight peak
	var mu sync.Mutex
	by := map[string]int{}
	handler := func(name string) activity.Handler {
		return func(ctx context.Context, task activity.Task) (any, error) {
			inFlight.enter()
			defer inFlight.leave()
			mu.Lock()
			by[name]++
			mu.Unlock()
			time.Sleep(30 * time.Millisecond)
			return task.InstanceID, nil
		}
	}
	e.deploy(catchWorkflow("Shared", "Charge", "    go: true\n    concurrency: {limit: 2, scope: global}"))
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = fmt.Sprint("glob-", i)
	}
	e.startScheduled("Shared", ids)
	for _, name := range []string{"a", "b"} {
		reg := activity.NewRegistry()
		reg.Register("Charge", handler(name))
		// Small read capacities (Concurrency + HTTPConcurrency) so that
		// one runtime does not lease every task in one read.
		e.background(activity.NewRuntime(e.ts, e.cat, reg, activity.Options{Consumer: name, Concurrency: 4, HTTPConcurrency: 1,
			Block: 50 * time.Millisecond, Logger: logger()}).Run)
	}
	for _, id := range ids {
		if o := e.outcome(id); string(o.Result) != `"`+id+`"` {
			t.Fatalf("%s: %+v", id, o)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("attempts run by runtime: %v; at most %d in flight at once", by, inFlight.most.Load())
	if m := inFlight.most.Load(); m > 2 || m < 1 {
		t.Fatalf("at most %d attempts in flight across both runtimes, want 2", m)
	}
	if by["a"] == 0 || by["b"] == 0 {
		t.Fatalf("one runtime ran nothing (%v): the case of two runtimes is not covered", by)
	}
}

// heldRecording is a TaskStore whose first CompleteTask waits until
// release is closed: an outcome being recorded for long (a slow commit).
type heldRecording struct {
	activity.TaskStore
	first   atomic.Bool
	waiting chan struct{} // closed once the first recording waits
	release chan struct{}
}

func (h *heldRecording) CompleteTask(ctx context.Context, ref interpreter.TaskRef, result json.RawMessage, now time.Time) error {
	if h.first.CompareAndSwap(false, true) {
		close(h.waiting)
		<-h.release
	}
	return h.TaskStore.CompleteTask(ctx, ref, result, now)
}

// TestSlotFreeWhileRecording: with one CPU slot, a second attempt runs
// while the first one's outcome is still being recorded: the slot bounds
// attempts computing, and recording waits on the store, not the CPU.
func TestSlotFreeWhileRecording(t *testing.T) {
	e := newEnv(t)
	h := &heldRecording{TaskStore: e.ts, waiting: make(chan struct{}), release: make(chan struct{})}
	e.ts = h
	ran := make(chan string, 2)
	e.reg.Register("Work", func(ctx context.Context, task activity.Task) (any, error) {
		ran <- string(task.InstanceID)
		return 1, nil
	})
	e.deploy(catchWorkflow("Two", "Work", ""))
	e.start("Two", "a", 1)
	e.runtime(activity.Options{Concurrency: 1})
	let := sync.OnceFunc(func() { close(h.release) })
	t.Cleanup(let) // before the runtime's own cleanup waits for it to stop
	<-ran
	<-h.waiting // a's outcome is being recorded, and held there
	e.start("Two", "b", 2)
	select {
	case got := <-ran:
		if got != "b" {
			t.Fatalf("ran %s, want b", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the second attempt did not run while the first outcome was being recorded: the slot was held through the recording")
	}
	let()
	for _, id := range []string{"a", "b"} {
		if o := e.outcome(id); string(o.Result) != "1" {
			t.Fatalf("%s: %+v", id, o)
		}
	}
}
