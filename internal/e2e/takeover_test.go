package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

const quick = "name: Quick\nsteps:\n  - set: {x: 41}\n  - return: ${ x + 1 }\n"

// slowStore is a store whose first commit takes hold: an engine in a
// long transition (or a long GC pause of its commit path).
type slowStore struct {
	*redisstore.Store
	hold    time.Duration
	entered chan struct{} // closed when the slow commit begins
	once    sync.Once
	mu      sync.Mutex
	errs    []error // the slow commit's outcomes
}

func (s *slowStore) Commit(ctx context.Context, ts []*interpreter.Transition) ([]error, error) {
	slow := false
	s.once.Do(func() { slow = true })
	if !slow {
		return s.Store.Commit(ctx, ts)
	}
	close(s.entered)
	time.Sleep(s.hold)
	errs, err := s.Store.Commit(ctx, ts)
	s.mu.Lock()
	s.errs = append(errs, err)
	s.mu.Unlock()
	return errs, err
}

// takeovers counts what an engine's Observer and OnTakeover hear.
type takeovers struct {
	reclaimed atomic.Int64 // OnReclaim items
	mu        sync.Mutex
	from      []string // OnTakeover's dead engines
	items     int
}

func (o *takeovers) OnTransition(interpreter.TransitionInfo) {}
func (o *takeovers) OnTimerFired(time.Duration)              {}
func (o *takeovers) OnReclaim(_, items int)                  { o.reclaimed.Add(int64(items)) }
func (o *takeovers) OnStoreCall(string, error)               {}
func (o *takeovers) took(dead string, items, _ int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.from = append(o.from, dead)
	o.items += items
}

func (o *takeovers) taken() ([]string, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.from...), o.items
}

// runEngine runs an engine over store until the test ends.
func runEngine(t *testing.T, store interpreter.Store, cat *interpreter.Catalog, opts interpreter.EngineOptions) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); interpreter.NewEngine(store, cat, opts).Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestSlowEngineNotTakenOver: an engine stuck in one transition for many
// times DeadAfter goes on beating (its heartbeat has a goroutine of its
// own), so the engine watching it takes nothing over; the slow commit is
// its own and succeeds.
func TestSlowEngineNotTakenOver(t *testing.T) {
	e := newEnv(t)
	e.deploy("quick.yaml", []byte(quick))
	const hb, deadAfter = 200 * time.Millisecond, time.Second
	slow := &slowStore{Store: e.store, hold: 4 * deadAfter, entered: make(chan struct{})}
	runEngine(t, slow, e.cat, interpreter.EngineOptions{Consumer: "slow", Heartbeat: hb, DeadAfter: deadAfter, ReclaimAfter: time.Hour})
	e.start("Quick", "q", nil)
	select {
	case <-slow.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow engine never committed")
	}
	// The watcher comes once the item is the slow engine's.
	obs := &takeovers{}
	runEngine(t, e.store, e.cat, interpreter.EngineOptions{Consumer: "watcher", Heartbeat: hb, DeadAfter: deadAfter,
		ReclaimAfter: time.Hour, Observer: obs, OnTakeover: obs.took})
	st := e.waitDone("q", 60*time.Second)
	jsonEq(t, "output", st.Output, "42")
	checkOnce(t, e.store, "q")
	if from, _ := obs.taken(); len(from) > 0 || obs.reclaimed.Load() > 0 {
		t.Errorf("the watcher took over from %v (%d items) an engine that was slow but beating", from, obs.reclaimed.Load())
	}
	slow.mu.Lock()
	defer slow.mu.Unlock()
	if len(slow.errs) != 2 || slow.errs[0] != nil || slow.errs[1] != nil {
		t.Errorf("the slow engine's commit: %v; want it to succeed", slow.errs)
	}
}

// TestSilentEngineTakenOver: an engine that beat once and then fell
// silent holding a work item is taken over without waiting out the
// (hour-long) lease: the item is applied by the live engine, the silent
// one is removed from the members, and the takeover is reported.
func TestSilentEngineTakenOver(t *testing.T) {
	e := newEnv(t)
	e.deploy("quick.yaml", []byte(quick))
	ctx := context.Background()
	e.start("Quick", "q", nil)
	items, err := e.store.ReadWork(ctx, "silent", e.allParts(), 10, 0)
	if err != nil || len(items) != 1 {
		t.Fatalf("read %v %v", items, err)
	}
	if _, err := e.store.Heartbeat(ctx, "silent", time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	obs := &takeovers{}
	runEngine(t, e.store, e.cat, interpreter.EngineOptions{Consumer: "live", Heartbeat: 100 * time.Millisecond,
		ReclaimAfter: time.Hour, Observer: obs, OnTakeover: obs.took})
	st := e.waitDone("q", 60*time.Second)
	jsonEq(t, "output", st.Output, "42")
	checkOnce(t, e.store, "q")
	if from, n := obs.taken(); len(from) != 1 || from[0] != "silent" || n != 1 || obs.reclaimed.Load() != 1 {
		t.Errorf("takeovers from %v of %d items (%d reclaimed); want one from silent of 1", from, n, obs.reclaimed.Load())
	}
	// Removed once all it held was taken (the engine forgets it after
	// the item is applied, so wait for it).
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := e.store.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m["silent"]; !ok {
			if _, ok := m["live"]; !ok {
				t.Errorf("members %v lack the live engine", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("silent is still a member: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOnce fails when a transition of id appears more than once in its
// history.
func checkOnce(t *testing.T, store *redisstore.Store, id string) {
	t.Helper()
	h, err := store.FetchHistory(context.Background(), interpreter.InstanceID(id))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, ev := range h {
		count[ev.Type]++
	}
	for _, typ := range []string{"ExecutionStarted", "ExecutionCompleted"} {
		if count[typ] != 1 {
			t.Errorf("%s: %s appears %d times in %v", id, typ, count[typ], count)
		}
	}
}

// TestStoreOutageTakesNoEngineOver: while Redis is away for many times
// DeadAfter no engine can beat, and once it is back no engine takes the
// others for dead: each watches afresh after its own reads failed.
func TestStoreOutageTakesNoEngineOver(t *testing.T) {
	redistest.SkipOnCluster(t, "it stops and restarts its own redis-server")
	srv := redistest.StartWith(t, redistest.StartOpts{AOF: true})
	e := newEnvOn(t, srv)
	e.deploy("quick.yaml", []byte(quick))
	const hb, deadAfter = 100 * time.Millisecond, 300 * time.Millisecond
	var obs [3]takeovers
	var logs [3]lockedBuffer
	for i := range obs {
		runEngine(t, e.store, e.cat, interpreter.EngineOptions{Consumer: fmt.Sprintf("e%d", i), Heartbeat: hb, DeadAfter: deadAfter,
			ReclaimAfter: time.Hour, Observer: &obs[i], OnTakeover: obs[i].took, Logger: slog.New(slog.NewTextHandler(&logs[i], nil))})
	}
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m, _ := e.store.Members(ctx); len(m) == len(obs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the engines never all beat")
		}
	}
	for round := range 3 {
		srv.Stop()
		time.Sleep(6 * deadAfter)
		srv.Restart(t)
		// Long enough for a watcher to have taken any engine for dead.
		time.Sleep(6 * deadAfter)
		for i := range obs {
			// A takeover of an idle engine moves nothing (no OnTakeover)
			// but is logged.
			if from, _ := obs[i].taken(); len(from) > 0 || strings.Contains(logs[i].String(), "took over") {
				t.Fatalf("outage %d: engine e%d took over from live engines (%v):\n%s", round+1, i, from, logs[i].String())
			}
		}
	}
	e.start("Quick", "after", nil)
	jsonEq(t, "output", e.waitDone("after", 30*time.Second).Output, "42")
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
