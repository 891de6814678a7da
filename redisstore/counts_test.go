package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// counted waits for an event "go" and then completes, fails or continues
// as new (and waits again) as the event says.
const counted = `name: %s
steps:
  - wait: {event: go, result: what}
  - if: what == "fail"
    fail: {error: Boom, message: asked to}
  - if: what == "again"
    continueAsNew: {input: 1}
  - return: ${ what }
`

type counts = map[string]map[interpreter.RuntimeStatus]int64

// nonZero drops the zero counts (a status whose count fell back to 0
// keeps its field).
func nonZero(c counts) counts {
	out := counts{}
	for wf, by := range c {
		for st, n := range by {
			if n == 0 {
				continue
			}
			if out[wf] == nil {
				out[wf] = map[interpreter.RuntimeStatus]int64{}
			}
			out[wf][st] = n
		}
	}
	return out
}

// listedCounts counts the instances by listing every one: the truth the counts
// must agree with.
func listedCounts(t *testing.T, s *redisstore.Store) counts {
	t.Helper()
	out := counts{}
	q := interpreter.ListQuery{Top: 1000}
	for {
		page, next, err := s.ListInstances(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page {
			if out[st.Name] == nil {
				out[st.Name] = map[interpreter.RuntimeStatus]int64{}
			}
			out[st.Name][st.Status]++
		}
		if next == "" {
			return out
		}
		q.ContinuationToken = next
	}
}

func countsOf(t *testing.T, s *redisstore.Store) counts {
	t.Helper()
	c, err := s.CountInstances(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return nonZero(c)
}

func sameCounts(a, b counts) bool {
	return maps.EqualFunc(a, b, func(x, y map[interpreter.RuntimeStatus]int64) bool { return maps.Equal(x, y) })
}

// waitCounts waits until both stores count want and the listing agrees.
func waitCounts(t *testing.T, want counts, stores ...*redisstore.Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		var got counts
		for _, s := range stores {
			if got = countsOf(t, s); !sameCounts(got, want) {
				ok = false
				break
			}
		}
		if ok {
			if l := listedCounts(t, stores[0]); !sameCounts(l, want) {
				t.Fatalf("the counts are %v, as wanted, but listing every instance finds %v", want, l)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts are %v, want %v (listing finds %v)", got, want, listedCounts(t, stores[0]))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type countEnv struct {
	t      *testing.T
	stores []*redisstore.Store
	cat    []*interpreter.Catalog
	defs   map[string]*dsl.Workflow
}

// newCountEnv opens n stores, each with a client of its own, on one
// redis-server, as n processes would.
func newCountEnv(t *testing.T, srv *redistest.Server, n int, opts redisstore.Options) *countEnv {
	e := &countEnv{t: t, defs: map[string]*dsl.Workflow{}}
	for range n {
		client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { client.Close() })
		s := redisstore.New(client, opts)
		if err := s.Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.stores = append(e.stores, s)
		e.cat = append(e.cat, interpreter.NewCatalog(s))
	}
	return e
}

func (e *countEnv) deploy(name string) {
	e.t.Helper()
	def, err := dsl.Parse(name+".yaml", fmt.Appendf(nil, counted, name))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.stores[0].PutDefinition(context.Background(), def.Name, def.Hash, def.Source, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	for _, c := range e.cat {
		c.Add(def)
	}
	e.defs[name] = def
}

// start creates an instance through store i.
func (e *countEnv) start(i int, name, id string) {
	e.t.Helper()
	ni := interpreter.Instantiate(e.defs[name], interpreter.InstanceID(id), nil, time.Now())
	if err := e.stores[i].CreateInstance(context.Background(), ni); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
}

func (e *countEnv) raise(id, what string) {
	e.t.Helper()
	data, _ := json.Marshal(what)
	if err := e.stores[len(e.stores)-1].RaiseEvent(context.Background(), interpreter.InstanceID(id), "go", data, time.Now()); err != nil {
		e.t.Fatalf("raise %s: %v", id, err)
	}
}

func (e *countEnv) control(id string, kind interpreter.EventKind) {
	e.t.Helper()
	if err := e.stores[0].SendControl(context.Background(), interpreter.InstanceID(id), interpreter.Event{Kind: kind, Time: time.Now()}); err != nil {
		e.t.Fatalf("%s %s: %v", kind, id, err)
	}
}

// run starts an engine on every store until the test ends.
func (e *countEnv) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, s := range e.stores {
		eng := interpreter.NewEngine(s, e.cat[i], interpreter.EngineOptions{Consumer: fmt.Sprintf("engine-%d", i)})
		wg.Add(1)
		go func() { defer wg.Done(); _ = eng.Run(ctx) }()
	}
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// waitHistory waits until the instance's history has a line of type typ.
func (e *countEnv) waitHistory(id, typ string) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		h, err := e.stores[0].FetchHistory(context.Background(), interpreter.InstanceID(id))
		if err != nil {
			e.t.Fatal(err)
		}
		if slices.ContainsFunc(h, func(ev interpreter.HistoryEvent) bool { return ev.Type == typ }) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("%s has no %s in its history", id, typ)
}

const (
	pending    = interpreter.StatusPending
	running    = interpreter.StatusRunning
	suspended  = interpreter.StatusSuspended
	completed  = interpreter.StatusCompleted
	failed     = interpreter.StatusFailed
	terminated = interpreter.StatusTerminated
)

// TestCountsFollowInstances: the counts per workflow and runtime status
// move exactly as instances are created, started, wait, complete, fail,
// are terminated, suspended and resumed, continue as new, are replaced,
// purged one by one and in bulk, and expire, with two stores (two
// processes) creating, messaging and running them on one Redis; both read
// the same counts, and listing every instance agrees.
func TestCountsFollowInstances(t *testing.T) {
	srv := redistest.Start(t)
	e := newCountEnv(t, srv, 2, redisstore.Options{Partitions: 4, Retention: redisstore.Retention{MaxAge: time.Hour}})
	e.deploy("Counted")
	e.deploy("Other")
	for i := range 10 {
		e.start(i%2, "Counted", fmt.Sprintf("c%d", i))
	}
	for i := range 3 {
		e.start(1, "Other", fmt.Sprintf("o%d", i))
	}
	waitCounts(t, counts{"Counted": {pending: 10}, "Other": {pending: 3}}, e.stores...)

	e.run()
	waitCounts(t, counts{"Counted": {running: 10}, "Other": {running: 3}}, e.stores...)

	e.raise("c0", "done")
	e.raise("c1", "done")
	e.raise("c2", "fail")
	e.control("c3", interpreter.EvTerminate)
	e.control("c4", interpreter.EvSuspend)
	e.control("c5", interpreter.EvSuspend)
	e.raise("o0", "fail")
	waitCounts(t, counts{
		"Counted": {running: 4, suspended: 2, completed: 2, failed: 1, terminated: 1},
		"Other":   {running: 2, failed: 1},
	}, e.stores...)

	e.control("c5", interpreter.EvResume)
	e.raise("c6", "again")
	e.waitHistory("c6", "ContinuedAsNew")
	waitCounts(t, counts{
		"Counted": {running: 5, suspended: 1, completed: 2, failed: 1, terminated: 1},
		"Other":   {running: 2, failed: 1},
	}, e.stores...)
	e.raise("c6", "done")
	e.control("c4", interpreter.EvTerminate) // terminating a suspended one
	waitCounts(t, counts{
		"Counted": {running: 4, completed: 3, failed: 1, terminated: 2},
		"Other":   {running: 2, failed: 1},
	}, e.stores...)

	// A finished id started again, under another workflow: the old one's
	// count goes down, the new one's up.
	e.start(0, "Other", "c0")
	waitCounts(t, counts{
		"Counted": {running: 4, completed: 2, failed: 1, terminated: 2},
		"Other":   {running: 3, failed: 1},
	}, e.stores...)

	ctx := context.Background()
	if err := e.stores[1].Purge(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.stores[0].PurgeMany(ctx, time.Time{}, time.Time{}, []interpreter.RuntimeStatus{failed}); err != nil || n != 2 {
		t.Fatalf("PurgeMany of the failed ones = %d, %v; want 2", n, err)
	}
	waitCounts(t, counts{
		"Counted": {running: 4, completed: 1, terminated: 2},
		"Other":   {running: 3},
	}, e.stores...)

	// Everything finished expires two hours on.
	later := time.Now().Add(2 * time.Hour)
	expired := 0
	for p := range e.stores[0].Partitions() {
		n, err := e.stores[p%2].ExpireFinished(ctx, p, later)
		if err != nil {
			t.Fatal(err)
		}
		expired += n
	}
	if expired != 3 {
		t.Fatalf("%d instances expired, want 3", expired)
	}
	waitCounts(t, counts{"Counted": {running: 4}, "Other": {running: 3}}, e.stores...)

	// The fields that fell to zero stay, with 0.
	all, err := e.stores[0].CountInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := all["Counted"][failed]; !ok || n != 0 {
		t.Errorf("Counted Failed = %d (present %v), want a 0 kept", n, ok)
	}
}

// TestCountsRebuilt: data written before counts existed (no counts hash)
// is counted once by Init, also when several stores start at once; a
// counted partition is not counted again.
func TestCountsRebuilt(t *testing.T) {
	srv := redistest.Start(t)
	e := newCountEnv(t, srv, 1, redisstore.Options{Partitions: 4})
	e.deploy("Counted")
	e.deploy("Other")
	for i := range 40 {
		e.start(0, "Counted", fmt.Sprintf("c%d", i))
	}
	for i := range 7 {
		e.start(0, "Other", fmt.Sprintf("o%d", i))
	}
	e.run()
	want := counts{"Counted": {running: 40}, "Other": {running: 7}}
	waitCounts(t, want, e.stores[0])
	for i := range 5 {
		e.raise(fmt.Sprintf("c%d", i), "done")
	}
	want = counts{"Counted": {running: 35, completed: 5}, "Other": {running: 7}}
	waitCounts(t, want, e.stores[0])

	// As an earlier version left it: no counts at all.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	ctx := context.Background()
	for p := range 4 {
		if err := client.Del(ctx, fmt.Sprintf("cairn:{%d}:counts", p)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := countsOf(t, e.stores[0]); len(got) != 0 {
		t.Fatalf("counts after deleting them: %v", got)
	}
	// Four processes start together, while instances are still being
	// created.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			e.start(0, "Other", fmt.Sprintf("late%d", i))
		}
	}()
	fresh := newCountEnv(t, srv, 4, redisstore.Options{Partitions: 4})
	<-done
	want["Other"][running] += 20
	waitCounts(t, want, append(fresh.stores, e.stores[0])...)

	// Counted once: a further start leaves the (now exact) counts alone,
	// even when they were made wrong on purpose.
	if err := client.HIncrBy(ctx, "cairn:{0}:counts", "Other\nRunning", 1000).Err(); err != nil {
		t.Fatal(err)
	}
	newCountEnv(t, srv, 1, redisstore.Options{Partitions: 4})
	if got := countsOf(t, e.stores[0]); got["Other"][running] != want["Other"][running]+1000 {
		t.Fatalf("a counted partition was counted again: Other Running = %d", got["Other"][running])
	}
}

// TestCountInstancesRoundTrip: reading the counts is one round trip, and
// creating and committing take none more than before.
func TestCountInstancesRoundTrip(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 8})
	e.single("it counts the round trips of one redis-server; on a cluster a call spans up to 3 masters (internal/e2e cost_cluster_test.go measures those)")
	trips, _ := e.trips.measure(func() { e.create("a", t0) })
	if trips != 1 {
		t.Errorf("CreateInstance took %d round trips, want 1", trips)
	}
	trips, _ = e.trips.measure(func() { e.finish("a", completed) })
	if trips != 2 { // LoadStates, then Commit
		t.Errorf("load and commit took %d round trips, want 2", trips)
	}
	var got counts
	trips, _ = e.trips.measure(func() {
		var err error
		if got, err = e.s.CountInstances(e.ctx); err != nil {
			t.Fatal(err)
		}
	})
	if trips != 1 {
		t.Errorf("CountInstances took %d round trips, want 1", trips)
	}
	if want := (counts{"Wf": {completed: 1}}); !sameCounts(nonZero(got), want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}

// TestListByWorkflow: the workflow filter lists exactly the instances of
// that workflow, page by page, also with a status filter, and agrees with
// the counts.
func TestListByWorkflow(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4})
	want := map[string][]interpreter.InstanceID{}
	for i := range 60 {
		ni := newInstance(fmt.Sprintf("i%02d", i), t0.Add(time.Duration(i)*time.Millisecond), "")
		ni.State.Name = []string{"A", "B", "Beta"}[i%3]
		if err := e.s.CreateInstance(e.ctx, ni); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			e.finish(string(ni.State.ID), completed)
		}
		want[ni.State.Name] = append(want[ni.State.Name], ni.State.ID)
	}
	counted := countsOf(t, e.s)
	for _, wf := range []string{"A", "B", "Beta", "Bet", ""} {
		for _, sts := range [][]interpreter.RuntimeStatus{nil, {completed}} {
			got, _ := pages(e, interpreter.ListQuery{Workflow: wf, Statuses: sts, Top: 7})
			var ids []interpreter.InstanceID
			for _, st := range got {
				if wf != "" && st.Name != wf {
					t.Errorf("workflow %q lists %s of %s", wf, st.ID, st.Name)
				}
				ids = append(ids, st.ID)
			}
			n := int64(0)
			for name, by := range counted {
				if wf == "" || name == wf {
					for st, c := range by {
						if sts == nil || st == sts[0] {
							n += c
						}
					}
				}
			}
			if int64(len(ids)) != n {
				t.Errorf("workflow %q, statuses %v: %d listed, the counts say %d", wf, sts, len(ids), n)
			}
			if wf != "" && sts == nil && !slices.Equal(ids, want[wf]) {
				t.Errorf("workflow %q lists %v, want %v", wf, ids, want[wf])
			}
		}
	}
}
