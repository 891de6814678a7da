package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// outcomes records what a scheduler's observer hears, in order.
type outcomes struct {
	mu  sync.Mutex
	all []string
}

func (o *outcomes) OnScheduleRun(schedule, outcome string) {
	o.mu.Lock()
	o.all = append(o.all, schedule+":"+outcome)
	o.mu.Unlock()
}

func (o *outcomes) count(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, x := range o.all {
		if len(x) > len(outcome) && x[len(x)-len(outcome)-1:] == ":"+outcome {
			n++
		}
	}
	return n
}

// deploy stores a workflow and returns it parsed.
func deploy(t *testing.T, e *env, src string) *dsl.Workflow {
	t.Helper()
	wf, err := dsl.Parse("w.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.PutDefinition(e.ctx, wf.Name, wf.Hash, wf.Source, t0); err != nil {
		t.Fatal(err)
	}
	return wf
}

func newScheduler(s *redisstore.Store, clock *fakeClock, obs interpreter.ScheduleObserver) *interpreter.Scheduler {
	return interpreter.NewScheduler(s, interpreter.NewCatalog(s), interpreter.SchedulerOptions{Clock: clock.Now, Observer: obs})
}

// instancesWithPrefix lists the ids of the instances whose id starts with prefix.
func instancesWithPrefix(t *testing.T, e *env, prefix string) []string {
	t.Helper()
	var ids []string
	tok := ""
	for {
		page, next, err := e.s.ListInstances(e.ctx, interpreter.ListQuery{Prefix: prefix, Top: 1000, ContinuationToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page {
			ids = append(ids, string(st.ID))
		}
		if next == "" {
			break
		}
		tok = next
	}
	sort.Strings(ids)
	return ids
}

func tickIDs(id string, from time.Time, step time.Duration, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = id + "-" + from.Add(time.Duration(i)*step).UTC().Format("20060102T150405Z")
	}
	return out
}

func sameIDs(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("instances:\n got %v\nwant %v", got, want)
	}
}

// TestCreateInstanceOnce: an id is created once, whether its instance
// runs or has finished.
func TestCreateInstanceOnce(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	wf := deploy(t, e, "name: Once\nsteps:\n  - return: 1\n")
	ni := interpreter.Instantiate(wf, "once-1", nil, t0)
	if err := e.s.CreateInstanceOnce(e.ctx, ni); err != nil {
		t.Fatal(err)
	}
	if err := e.s.CreateInstanceOnce(e.ctx, ni); !errors.Is(err, interpreter.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if err := e.s.SendControl(e.ctx, "once-1", interpreter.Event{Kind: interpreter.EvTerminate, Time: t0}); err != nil {
		t.Fatal(err)
	}
	eng := interpreter.NewEngine(e.s, interpreter.NewCatalog(e.s), interpreter.EngineOptions{Block: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	waitStatus(t, e, "once-1", func(s interpreter.RuntimeStatus) bool { return s.Terminal() })
	cancel()
	<-done
	if err := e.s.CreateInstanceOnce(e.ctx, ni); !errors.Is(err, interpreter.ErrExists) {
		t.Fatalf("create after the end: %v, want ErrExists", err)
	}
	// CreateInstance still replaces a finished instance.
	if err := e.s.CreateInstance(e.ctx, ni); err != nil {
		t.Fatalf("CreateInstance over a finished one: %v", err)
	}
}

func waitStatus(t *testing.T, e *env, id interpreter.InstanceID, ok func(interpreter.RuntimeStatus) bool) *interpreter.InstanceStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := e.s.FetchStatus(e.ctx, id)
		if err == nil && ok(st.Status) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s: %v %v", id, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestScheduleTicksOnceAcrossSchedulers: four schedulers, over two
// connections each, race on every tick of a 1 s schedule for 20 s of the
// clock; every tick's instance is created once (by its id), none is
// missed, and the outcome of each is recorded once.
func TestScheduleTicksOnceAcrossSchedulers(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	deploy(t, e, "name: Often\nschedules:\n  - id: often\n    every: 1s\n    overlap: allowAll\n    input: {at: \"${ schedule.time }\"}\nsteps:\n  - return: ${ input }\n")
	clock := &fakeClock{t: t0}
	obs := &outcomes{}
	var scheds []*interpreter.Scheduler
	for i := 0; i < 4; i++ {
		c := e.newClient(redis.Options{})
		t.Cleanup(func() { c.Close() })
		scheds = append(scheds, newScheduler(redisstore.New(c, redisstore.Options{}), clock, obs))
	}
	run := func() {
		var wg sync.WaitGroup
		for _, s := range scheds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.RunOnce(e.ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	run() // the first pass sets the first tick: t0+1s
	for i := 0; i < 20; i++ {
		clock.Add(time.Second)
		run()
		run()
	}
	sameIDs(t, instancesWithPrefix(t, e, "often-"), tickIDs("often", t0.Add(time.Second), time.Second, 20))
	if n := obs.count(interpreter.OutcomeStarted); n != 20 {
		t.Errorf("%d started outcomes, want 20: %v", n, obs.all)
	}
	st, err := e.s.FetchStatus(e.ctx, interpreter.InstanceID(tickIDs("often", t0.Add(20*time.Second), 0, 1)[0]))
	if err != nil || string(st.Input) != `{"at":"2026-01-02T03:04:25Z"}` {
		t.Errorf("the last tick's instance: %+v, %v", st, err)
	}
}

// TestScheduleCatchup: after 3 h of downtime with a 1 h catchupWindow, the
// ticks of the last hour run once each, oldest first; the older ones are
// missed.
func TestScheduleCatchup(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	deploy(t, e, "name: Catchup\nschedules:\n  - id: ten\n    every: 10m\n    overlap: allowAll\n    catchupWindow: 1h\nsteps:\n  - return: 1\n")
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	obs := &outcomes{}
	s := newScheduler(e.s, clock, obs)
	if err := s.RunOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	clock.Add(3 * time.Hour)
	if err := s.RunOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	// Ticks 03:10 ... 06:00: 03:10-04:50 (11) are over an hour late.
	want := []string{}
	for i := 0; i < 11; i++ {
		want = append(want, "ten:missed")
	}
	for i := 0; i < 7; i++ {
		want = append(want, "ten:started")
	}
	if fmt.Sprint(obs.all) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v", obs.all, want)
	}
	sameIDs(t, instancesWithPrefix(t, e, "ten-"), tickIDs("ten", start.Add(2*time.Hour), 10*time.Minute, 7))
	d, err := s.Schedule(e.ctx, "ten")
	if err != nil {
		t.Fatal(err)
	}
	if !d.State.LastRun.Equal(start.Add(3*time.Hour)) || d.State.LastInstance != "ten-20260102T060000Z" || !d.NextRun(clock.Now()).Equal(start.Add(3*time.Hour+10*time.Minute)) {
		t.Errorf("state %+v", d.State)
	}
}

// plainStore hides the store's other methods from the engine.
type plainStore struct{ interpreter.Store }

// TestScheduleOverlap: while a tick's instance runs, skip starts nothing,
// allowAll starts the next, bufferOne keeps one tick until it ends, and
// terminatePrevious terminates it and starts the next.
func TestScheduleOverlap(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	src := "name: Overlap%s\nschedules:\n  - id: %s\n    every: 1m\n    overlap: %s\nsteps:\n  - wait: {event: go}\n"
	for _, pol := range []string{"skip", "allowAll", "bufferOne", "terminatePrevious"} {
		deploy(t, e, fmt.Sprintf(src, pol, "o-"+pol, pol))
	}
	start := time.Date(2026, 1, 2, 3, 0, 30, 0, time.UTC)
	clock := &fakeClock{t: start}
	obs := &outcomes{}
	s := newScheduler(e.s, clock, obs)
	// The engine sees the store as a plain Store, so it runs no scheduler
	// of its own: the test's decides every tick.
	eng := interpreter.NewEngine(plainStore{e.s}, interpreter.NewCatalog(e.s), interpreter.EngineOptions{Block: 20 * time.Millisecond, Clock: clock.Now})
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go eng.Run(ctx)
	step := func() {
		t.Helper()
		clock.Add(time.Minute)
		if err := s.RunOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RunOnce(e.ctx); err != nil { // first ticks at 03:01
		t.Fatal(err)
	}
	step() // 03:01: every schedule starts its first instance
	step() // 03:02: it still waits
	step() // 03:03
	first := func(pol string) interpreter.InstanceID {
		return interpreter.InstanceID("o-" + pol + "-20260102T030100Z")
	}
	tick := func(pol string, m int) string { return fmt.Sprintf("o-%s-20260102T03%02d00Z", pol, m) }
	sameIDs(t, instancesWithPrefix(t, e, "o-skip-"), []string{tick("skip", 1)})
	sameIDs(t, instancesWithPrefix(t, e, "o-allowAll-"), []string{tick("allowAll", 1), tick("allowAll", 2), tick("allowAll", 3)})
	sameIDs(t, instancesWithPrefix(t, e, "o-bufferOne-"), []string{tick("bufferOne", 1)})
	sameIDs(t, instancesWithPrefix(t, e, "o-terminatePrevious-"), []string{tick("terminatePrevious", 1), tick("terminatePrevious", 2), tick("terminatePrevious", 3)})
	for _, id := range []string{tick("terminatePrevious", 1), tick("terminatePrevious", 2)} {
		waitStatus(t, e, interpreter.InstanceID(id), func(s interpreter.RuntimeStatus) bool { return s == interpreter.StatusTerminated })
	}
	// bufferOne: the 03:02 tick waits, 03:03 was skipped; once the first
	// ends, the buffered one starts with its own tick's id.
	waitStatus(t, e, first("bufferOne"), func(s interpreter.RuntimeStatus) bool { return s == interpreter.StatusRunning })
	if err := e.s.RaiseEvent(e.ctx, first("bufferOne"), "go", nil, clock.Now()); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, first("bufferOne"), func(s interpreter.RuntimeStatus) bool { return s == interpreter.StatusCompleted })
	if err := s.RunOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	sameIDs(t, instancesWithPrefix(t, e, "o-bufferOne-"), []string{tick("bufferOne", 1), tick("bufferOne", 2)})
	want := map[string][3]int{ // started, skipped, missed
		"o-skip": {1, 2, 0}, "o-allowAll": {3, 0, 0}, "o-bufferOne": {2, 1, 0}, "o-terminatePrevious": {3, 0, 0},
	}
	got := map[string][3]int{}
	for _, x := range obs.all {
		var id, out string
		for i := len(x) - 1; i >= 0; i-- {
			if x[i] == ':' {
				id, out = x[:i], x[i+1:]
				break
			}
		}
		c := got[id]
		switch out {
		case interpreter.OutcomeStarted:
			c[0]++
		case interpreter.OutcomeSkipped:
			c[1]++
		case interpreter.OutcomeMissed:
			c[2]++
		}
		got[id] = c
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}
