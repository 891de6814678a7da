package redisstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

func TestCreateInstance(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)

	st, err := e.s.FetchStatus(e.ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != interpreter.StatusPending || st.Name != "Wf" || st.DefHash != "h1" ||
		string(st.Input) != `{"x":1}` || !st.CreatedTime.Equal(t0) || st.Revision != 0 {
		t.Fatalf("status = %+v", st)
	}
	items := e.readAll("c1")
	if len(items) != 1 || items[0].Instance != "a" || items[0].Event.Kind != interpreter.EvStart || !items[0].Event.Time.Equal(t0) {
		t.Fatalf("work = %+v", items)
	}

	// A running instance is not replaced.
	err = e.s.CreateInstance(e.ctx, newInstance("a", t0.Add(time.Hour), `2`))
	if !errors.Is(err, interpreter.ErrAlreadyRunning) {
		t.Fatalf("duplicate create: %v", err)
	}

	// A finished one is, with its history.
	e.finish("a", interpreter.StatusCompleted)
	if h, _ := e.s.FetchHistory(e.ctx, "a"); len(h) != 2 {
		t.Fatalf("history before replace = %+v", h)
	}
	if err := e.s.CreateInstance(e.ctx, newInstance("a", t0.Add(time.Hour), `2`)); err != nil {
		t.Fatal(err)
	}
	st, _ = e.s.FetchStatus(e.ctx, "a")
	if st.Status != interpreter.StatusPending || string(st.Input) != "2" || st.Output != nil ||
		!st.CreatedTime.Equal(t0.Add(time.Hour)) || st.Revision != 0 {
		t.Fatalf("replaced status = %+v", st)
	}
	if h, _ := e.s.FetchHistory(e.ctx, "a"); len(h) != 1 || h[0].Type != "ExecutionScheduled" {
		t.Fatalf("history after replace = %+v", h)
	}
	// The index holds it once, at its new time.
	list, _, err := e.s.ListInstances(e.ctx, interpreter.ListQuery{})
	if err != nil || len(list) != 1 || !list[0].CreatedTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("list = %+v, %v", list, err)
	}

	if err := e.s.CreateInstance(e.ctx, newInstance("bad\nid", t0, "")); err == nil {
		t.Fatal("id with a newline accepted")
	}
}

func TestStateRoundTrip(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	work := e.readAll("c1")[0].ID
	deadline := t0.Add(time.Minute)
	tr := e.transition("a", work, func(s *interpreter.State) {
		s.Status = interpreter.StatusRunning
		s.Vars = map[string]json.RawMessage{"v": json.RawMessage(`[1,2]`)}
		s.Cursor = []interpreter.Frame{{Block: "b", Index: 2}}
		s.Pending = &interpreter.Pending{Kind: interpreter.WaitEvent, StepID: "w", Event: "Go", TimerID: "t1", Deadline: &deadline}
		s.Buffered = []interpreter.BufferedEvent{{Name: "X", Data: json.RawMessage(`1`), Time: t0}}
		s.Held = []interpreter.Event{{Kind: interpreter.EvRaised, Name: "Y", Time: t0}}
		s.Seq = 7
		s.CustomStatus = json.RawMessage(`{"msg":"hi"}`)
		s.LastUpdatedTime = t0.Add(time.Second)
	})
	if errs := e.commit(tr); errs[0] != nil {
		t.Fatal(errs[0])
	}
	got := e.load("a")
	want := *tr.State
	want.Input = json.RawMessage(`{"x":1}`)
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Fatalf("loaded state\n got %s\nwant %s", gj, wj)
	}
	if got.Revision != 1 || tr.State.Revision != 1 {
		t.Fatalf("revision = %d", got.Revision)
	}
	st, _ := e.s.FetchStatus(e.ctx, "a")
	if string(st.CustomStatus) != `{"msg":"hi"}` || st.Pending == nil || st.Pending.Event != "Go" {
		t.Fatalf("status = %+v", st)
	}
	if sts, err := e.s.LoadStates(e.ctx, []interpreter.InstanceID{"nope", "a"}); err != nil || sts[0] != nil || sts[1] == nil {
		t.Fatalf("LoadStates = %v, %v", sts, err)
	}
}

func TestCommitConflict(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	work := e.readAll("c1")[0].ID
	stale := e.transition("a", work, func(s *interpreter.State) { s.Status = interpreter.StatusRunning })
	e.finish("a", interpreter.StatusRunning) // someone else moved the revision
	trips, _ := e.trips.measure(func() {
		if errs := e.commit(stale); !errors.Is(errs[0], interpreter.ErrConflict) {
			t.Fatalf("stale commit: %v", errs[0])
		}
	})
	if trips != 1 {
		t.Fatalf("commit took %d round trips", trips)
	}
	// Nothing was written: the work item is still pending, the revision 1.
	if st := e.load("a"); st.Revision != 1 {
		t.Fatalf("revision = %d", st.Revision)
	}
	fresh := e.transition("a", work, nil)
	if errs := e.commit(fresh); errs[0] != nil {
		t.Fatalf("fresh commit: %v", errs[0])
	}

	// A batch: the second transition builds on the first.
	e.create("b", t0)
	w := e.readAll("c1")[0].ID
	t1 := e.transition("b", w, func(s *interpreter.State) { s.Status = interpreter.StatusRunning })
	n2 := *t1.State
	n2.Revision++
	t2 := &interpreter.Transition{State: &n2, FromRevision: t1.State.Revision}
	t3 := &interpreter.Transition{State: &n2, FromRevision: 0} // stale
	errs := e.commit(t1, t2, t3)
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], interpreter.ErrConflict) {
		t.Fatalf("batch = %v", errs)
	}
	if st := e.load("b"); st.Revision != 2 {
		t.Fatalf("revision = %d", st.Revision)
	}

	// An instance purged meanwhile is a conflict too.
	e.create("c", t0)
	gone := e.transition("c", "", nil)
	e.finish("c", interpreter.StatusCompleted)
	if err := e.s.Purge(e.ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if errs := e.commit(gone); !errors.Is(errs[0], interpreter.ErrConflict) {
		t.Fatalf("commit of a purged instance: %v", errs[0])
	}
	if e.load("c") != nil {
		t.Fatal("commit recreated a purged instance")
	}
}

func TestDuplicateWork(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	work := e.readAll("c1")[0].ID
	first := e.transition("a", work, func(s *interpreter.State) { s.Status = interpreter.StatusRunning })
	again := e.transition("a", work, func(s *interpreter.State) { s.Seq = 99 })
	if errs := e.commit(first); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// The same work item again, even at the right revision: duplicate.
	again.FromRevision = 1
	again.State.Revision = 2
	if errs := e.commit(again); !errors.Is(errs[0], interpreter.ErrDuplicate) {
		t.Fatalf("second commit of the same work: %v", errs[0])
	}
	if st := e.load("a"); st.Revision != 1 || st.Seq == 99 {
		t.Fatalf("duplicate wrote: %+v", st)
	}
	// The first transition again (stale and duplicate): a conflict, and
	// recomputed on the fresh state, a duplicate.
	first.State.Revision = 1
	if errs := e.commit(first); !errors.Is(errs[0], interpreter.ErrConflict) {
		t.Fatalf("replayed commit: %v", errs[0])
	}
	if errs := e.commit(e.transition("a", work, nil)); !errors.Is(errs[0], interpreter.ErrDuplicate) {
		t.Fatalf("recomputed replay: %v", errs[0])
	}
	// Acknowledged items leave the stream at the next trim.
	p := 0
	for ; p < e.s.Partitions(); p++ {
		if workKey(e, "a") == fmt.Sprintf("cairn:{%d}:work", p) {
			break
		}
	}
	if _, err := e.s.TrimWork(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	if n := e.client.XLen(e.ctx, workKey(e, "a")).Val(); n != 0 {
		t.Fatalf("work stream holds %d entries", n)
	}
}

func workKey(e *env, id string) string {
	p := 0
	for q := 0; q < e.s.Partitions(); q++ {
		if n := e.client.Exists(e.ctx, fmt.Sprintf("cairn:{%d}:inst:%s", q, id)).Val(); n == 1 {
			p = q
		}
	}
	return fmt.Sprintf("cairn:{%d}:work", p)
}

func TestTimers(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 1})
	e.create("a", t0)
	work := e.readAll("c1")[0].ID
	tr := e.transition("a", work, nil,
		&interpreter.StartTimer{ID: "t3", Due: t0.Add(3 * time.Second)},
		&interpreter.StartTimer{ID: "t1", Due: t0.Add(1 * time.Second)},
		&interpreter.StartTimer{ID: "t2", Due: t0.Add(2 * time.Second)},
		&interpreter.StartTimer{ID: "t9", Due: t0.Add(9 * time.Second)},
		&interpreter.StartTimer{ID: "x/y", Due: t0.Add(4 * time.Second)},
	)
	if errs := e.commit(tr); errs[0] != nil {
		t.Fatal(errs[0])
	}
	tr = e.transition("a", "", nil, &interpreter.CancelTimer{ID: "t9", Due: t0.Add(9 * time.Second)})
	if errs := e.commit(tr); errs[0] != nil {
		t.Fatal(errs[0])
	}

	n, next, err := e.s.FireDueTimers(e.ctx, 0, t0, 10)
	if err != nil || n != 0 || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("nothing due: %d %v %v", n, next, err)
	}
	now := t0.Add(3500 * time.Millisecond)
	n, next, err = e.s.FireDueTimers(e.ctx, 0, now, 2)
	if err != nil || n != 2 || !next.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("first batch: %d %v %v", n, next, err)
	}
	n, next, err = e.s.FireDueTimers(e.ctx, 0, now, 10)
	if err != nil || n != 1 || !next.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("second batch: %d %v %v", n, next, err)
	}
	n, next, err = e.s.FireDueTimers(e.ctx, 0, t0.Add(time.Hour), 10)
	if err != nil || n != 1 || !next.IsZero() {
		t.Fatalf("last: %d %v %v", n, next, err)
	}
	var got []string
	for _, it := range e.readAll("c1") {
		if it.Instance != "a" || it.Event.Kind != interpreter.EvTimer {
			t.Fatalf("work item %+v", it)
		}
		got = append(got, it.Event.Timer)
		if len(got) <= 3 && !it.Event.Time.Equal(now) {
			t.Fatalf("event time %v", it.Event.Time)
		}
	}
	if want := []string{"t1", "t2", "t3", "x/y"}; !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
}

func TestRaiseEventAndControl(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	if err := e.s.RaiseEvent(e.ctx, "nope", "E", nil, t0); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("raise to unknown: %v", err)
	}
	e.create("a", t0)
	e.readAll("c1")
	if err := e.s.RaiseEvent(e.ctx, "a", "E", json.RawMessage(`{"n":1}`), t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []interpreter.EventKind{interpreter.EvSuspend, interpreter.EvResume, interpreter.EvTerminate} {
		if err := e.s.SendControl(e.ctx, "a", interpreter.Event{Kind: k, Reason: "r", Time: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.s.SendControl(e.ctx, "a", interpreter.Event{Kind: interpreter.EvRaised}); err == nil {
		t.Fatal("EventRaised accepted as control message")
	}
	items := e.readAll("c1")
	var kinds []interpreter.EventKind
	for _, it := range items {
		kinds = append(kinds, it.Event.Kind)
	}
	if want := []interpreter.EventKind{interpreter.EvRaised, interpreter.EvSuspend, interpreter.EvResume, interpreter.EvTerminate}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds %v", kinds)
	}
	if ev := items[0].Event; ev.Name != "E" || string(ev.Data) != `{"n":1}` || !ev.Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("raised %+v", ev)
	}
	if items[3].Event.Reason != "r" {
		t.Fatalf("terminate %+v", items[3].Event)
	}
	if err := e.s.SendControl(e.ctx, "nope", interpreter.Event{Kind: interpreter.EvTerminate}); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("terminate unknown: %v", err)
	}
}

// TestTerminalStatuses checks the scripts' idea of "finished" against
// RuntimeStatus.Terminal for every status.
func TestTerminalStatuses(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	for _, st := range []interpreter.RuntimeStatus{
		interpreter.StatusPending, interpreter.StatusRunning, interpreter.StatusSuspended,
		interpreter.StatusCompleted, interpreter.StatusFailed, interpreter.StatusTerminated,
	} {
		id := "i-" + string(st)
		e.create(id, t0)
		if st != interpreter.StatusPending {
			e.finish(id, st)
		}
		raise := e.s.RaiseEvent(e.ctx, interpreter.InstanceID(id), "E", nil, t0)
		ctl := e.s.SendControl(e.ctx, interpreter.InstanceID(id), interpreter.Event{Kind: interpreter.EvTerminate})
		recreate := e.s.CreateInstance(e.ctx, newInstance(id, t0, ""))
		if st.Terminal() {
			if !errors.Is(raise, interpreter.ErrFinished) || !errors.Is(ctl, interpreter.ErrFinished) || recreate != nil {
				t.Errorf("%s: raise %v, control %v, recreate %v", st, raise, ctl, recreate)
			}
		} else {
			if raise != nil || ctl != nil || !errors.Is(recreate, interpreter.ErrAlreadyRunning) {
				t.Errorf("%s: raise %v, control %v, recreate %v", st, raise, ctl, recreate)
			}
			if err := e.s.Purge(e.ctx, interpreter.InstanceID(id)); !errors.Is(err, interpreter.ErrAlreadyRunning) {
				t.Errorf("%s: purge %v", st, err)
			}
		}
	}
}

func TestFetchStatusOneRoundTrip(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.single("it counts the round trips of one redis-server; on a cluster a call spans up to 3 masters (internal/e2e cost_cluster_test.go measures those)")
	e.create("a", t0)
	trips, cmds := e.trips.measure(func() {
		if _, err := e.s.FetchStatus(e.ctx, "a"); err != nil {
			t.Fatal(err)
		}
	})
	if trips != 1 || len(cmds) != 1 || !strings.EqualFold(fmt.Sprint(cmds[0][0]), "hmget") {
		t.Fatalf("FetchStatus: %d round trips: %v", trips, cmds)
	}
	for _, a := range cmds[0][2:] {
		if a == "rt" {
			t.Fatalf("FetchStatus reads the runtime field: %v", cmds[0])
		}
	}
	if _, err := e.s.FetchStatus(e.ctx, "nope"); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}

	// The other single-round-trip operations.
	for name, f := range map[string]func() error{
		"RaiseEvent": func() error { return e.s.RaiseEvent(e.ctx, "a", "E", nil, t0) },
		"FetchHistory": func() error {
			_, err := e.s.FetchHistory(e.ctx, "a")
			return err
		},
		"LoadStates": func() error {
			_, err := e.s.LoadStates(e.ctx, []interpreter.InstanceID{"a", "b", "c"})
			return err
		},
		"ReadWork": func() error {
			_, err := e.s.ReadWork(e.ctx, "c", e.parts(), 10, 0)
			return err
		},
		"FireDueTimers": func() error {
			_, _, err := e.s.FireDueTimers(e.ctx, 3, t0, 10)
			return err
		},
		"PutDefinition": func() error {
			_, err := e.s.PutDefinition(e.ctx, "Wf", "h1", []byte("name: Wf"), t0)
			return err
		},
		"ListInstances": func() error { // index page + statuses
			_, _, err := e.s.ListInstances(e.ctx, interpreter.ListQuery{})
			return err
		},
	} {
		want := 1
		if name == "ListInstances" {
			want = 2
		}
		trips, _ := e.trips.measure(func() {
			if err := f(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
		if trips != want {
			t.Errorf("%s: %d round trips, want %d", name, trips, want)
		}
	}
}

func TestHistory(t *testing.T) {
	e := newEnv(t, redisstore.Options{HistoryMax: 3})
	e.create("a", t0)
	for i := 0; i < 300; i++ {
		tr := e.transition("a", "", nil)
		tr.History = []interpreter.HistoryEvent{{Type: "Step", Timestamp: t0, Name: fmt.Sprint(i), Data: json.RawMessage(`{"i":1}`), Attempt: 2, StepID: "s", Reason: "r"}}
		if errs := e.commit(tr); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	h, err := e.s.FetchHistory(e.ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// Exactly the last 3 transitions are kept.
	if len(h) != 3 || h[0].Name != "297" {
		t.Fatalf("history has %d lines, first %+v", len(h), h[0])
	}
	last := h[len(h)-1]
	if last.Name != "299" || last.Type != "Step" || !last.Timestamp.Equal(t0) || string(last.Data) != `{"i":1}` ||
		last.Attempt != 2 || last.StepID != "s" || last.Reason != "r" {
		t.Fatalf("last line %+v", last)
	}
	if _, err := e.s.FetchHistory(e.ctx, "nope"); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}

	// Several lines of one transition, in order.
	e.create("b", t0)
	tr := e.transition("b", "", nil)
	tr.History = []interpreter.HistoryEvent{{Type: "A"}, {Type: "B"}, {Type: "C"}}
	if errs := e.commit(tr); errs[0] != nil {
		t.Fatal(errs[0])
	}
	h, _ = e.s.FetchHistory(e.ctx, "b")
	var types []string
	for _, l := range h {
		types = append(types, l.Type)
	}
	if want := []string{"ExecutionScheduled", "A", "B", "C"}; !slices.Equal(types, want) {
		t.Fatalf("history %v, want %v", types, want)
	}

	off := newEnv(t, redisstore.Options{HistoryMax: redisstore.NoHistory})
	off.create("a", t0)
	off.finish("a", interpreter.StatusCompleted)
	if h, err := off.s.FetchHistory(off.ctx, "a"); err != nil || len(h) != 0 {
		t.Fatalf("history off: %v %v", h, err)
	}
	if keys := off.client.Keys(off.ctx, "*:log:*").Val(); len(keys) != 0 {
		t.Fatalf("history keys with history off: %v", keys)
	}
}

func TestPurge(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	if err := e.s.Purge(e.ctx, "nope"); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("purge unknown: %v", err)
	}
	e.create("a", t0)
	if err := e.s.Purge(e.ctx, "a"); !errors.Is(err, interpreter.ErrAlreadyRunning) {
		t.Fatalf("purge running: %v", err)
	}
	e.finish("a", interpreter.StatusCompleted)
	if err := e.s.Purge(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.FetchStatus(e.ctx, "a"); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("status after purge: %v", err)
	}
	if _, err := e.s.FetchHistory(e.ctx, "a"); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("history after purge: %v", err)
	}
	if list, _, _ := e.s.ListInstances(e.ctx, interpreter.ListQuery{}); len(list) != 0 {
		t.Fatalf("listed after purge: %v", list)
	}
}

func TestPurgeMany(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4})
	statuses := []interpreter.RuntimeStatus{interpreter.StatusCompleted, interpreter.StatusFailed, interpreter.StatusTerminated, interpreter.StatusRunning}
	// 1200 instances over 600 ms: statuses cycle.
	for i := 0; i < 1200; i++ {
		id := fmt.Sprintf("i%04d", i)
		e.create(id, t0.Add(time.Duration(i/2)*time.Millisecond))
		e.finish(id, statuses[i%4])
	}
	n, err := e.s.PurgeMany(e.ctx, t0.Add(100*time.Millisecond), t0.Add(199*time.Millisecond),
		[]interpreter.RuntimeStatus{interpreter.StatusFailed, interpreter.StatusRunning})
	if err != nil || n != 50 { // i in [200, 400) with i%4 == 1
		t.Fatalf("purged %d, %v", n, err)
	}
	if _, err := e.s.FetchStatus(e.ctx, "i0201"); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatal("i0201 not purged")
	}
	for _, id := range []string{"i0199", "i0203", "i0400", "i0202"} {
		if _, err := e.s.FetchStatus(e.ctx, interpreter.InstanceID(id)); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if n, err := e.s.PurgeMany(e.ctx, time.Time{}, time.Time{}, []interpreter.RuntimeStatus{interpreter.StatusRunning}); err != nil || n != 0 {
		t.Fatalf("purge running: %d %v", n, err)
	}
	n, err = e.s.PurgeMany(e.ctx, time.Time{}, time.Time{}, nil)
	if err != nil || n != 900-50 {
		t.Fatalf("purge all finished: %d %v", n, err)
	}
	list, tok, err := e.s.ListInstances(e.ctx, interpreter.ListQuery{Top: 1000})
	if err != nil || len(list) != 300 || tok != "" {
		t.Fatalf("left %d, %q, %v", len(list), tok, err)
	}
}

func TestDefinitions(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	if _, err := e.s.LatestDefinition(e.ctx, "Wf"); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("latest of unknown: %v", err)
	}
	if _, err := e.s.DescribeDefinition(e.ctx, "Wf"); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("describe unknown: %v", err)
	}
	if defs, err := e.s.ListDefinitions(e.ctx); err != nil || len(defs) != 0 {
		t.Fatalf("list empty: %v %v", defs, err)
	}
	created, err := e.s.PutDefinition(e.ctx, "Wf", "h1", []byte("v1"), t0)
	if err != nil || !created {
		t.Fatalf("first put: %v %v", created, err)
	}
	created, err = e.s.PutDefinition(e.ctx, "Wf", "h1", []byte("v1"), t0.Add(time.Hour))
	if err != nil || created {
		t.Fatalf("same put: %v %v", created, err)
	}
	if _, err := e.s.PutDefinition(e.ctx, "Wf", "h2", []byte("v2"), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.PutDefinition(e.ctx, "Other", "h9", []byte("o"), t0); err != nil {
		t.Fatal(err)
	}
	if h, err := e.s.LatestDefinition(e.ctx, "Wf"); err != nil || h != "h2" {
		t.Fatalf("latest = %q %v", h, err)
	}
	info, err := e.s.DescribeDefinition(e.ctx, "Wf")
	if err != nil {
		t.Fatal(err)
	}
	want := interpreter.DefinitionInfo{Name: "Wf", Latest: "h2", Versions: []interpreter.Version{
		{Hash: "h1", Created: t0}, {Hash: "h2", Created: t0.Add(time.Minute)},
	}}
	gj, _ := json.Marshal(info)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Fatalf("describe\n got %s\nwant %s", gj, wj)
	}
	for h, src := range map[string]string{"h1": "v1", "h2": "v2"} {
		if b, err := e.s.LoadDefinition(e.ctx, "Wf", h); err != nil || string(b) != src {
			t.Fatalf("load %s = %q %v", h, b, err)
		}
	}
	for _, h := range []string{"h3", "latest", "t:h1"} {
		if _, err := e.s.LoadDefinition(e.ctx, "Wf", h); !errors.Is(err, interpreter.ErrNotFound) {
			t.Fatalf("load %s: %v", h, err)
		}
	}
	// Deploying old content again makes it the latest, without a version.
	if _, err := e.s.PutDefinition(e.ctx, "Wf", "h1", []byte("v1"), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	defs, err := e.s.ListDefinitions(e.ctx)
	if err != nil || len(defs) != 2 || defs[0].Name != "Other" || defs[1].Latest != "h1" || len(defs[1].Versions) != 2 {
		t.Fatalf("list = %+v %v", defs, err)
	}
}

func TestWatchStatus(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	ch, stop, err := e.s.WatchStatus(e.ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	tr := e.transition("a", "", func(s *interpreter.State) {
		s.Status = interpreter.StatusRunning
		s.CustomStatus = json.RawMessage(`"step 1"`)
		s.LastUpdatedTime = t0.Add(time.Second)
	})
	tr.StatusChanged = true
	quiet := e.transition("a", "", nil)
	quiet.FromRevision, quiet.State.Revision = 1, 2
	if errs := e.commit(tr, quiet); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	e.finish("a", interpreter.StatusCompleted)
	var got []interpreter.StatusChange
	for len(got) < 2 {
		select {
		case c := <-ch:
			got = append(got, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d changes", len(got))
		}
	}
	if c := got[0]; c.Instance != "a" || c.Status != interpreter.StatusRunning || string(c.CustomStatus) != `"step 1"` ||
		c.Revision != 1 || !c.Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("first change %+v", c)
	}
	if c := got[1]; c.Status != interpreter.StatusCompleted || string(c.Output) != `"done"` || c.Revision != 3 {
		t.Fatalf("second change %+v", c)
	}
	stop()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after stop")
	}
	stop() // twice is fine
}

func TestScriptCacheFlush(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	work := e.readAll("c1")[0].ID
	if err := e.client.ScriptFlush(e.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	tr := e.transition("a", work, nil)
	trips, cmds := e.trips.measure(func() {
		if errs := e.commit(tr); errs[0] != nil {
			t.Fatal(errs[0])
		}
	})
	// Under DurabilityReplica (the cluster run) each call is followed by a
	// WAIT in the same round trip.
	cmds = slices.DeleteFunc(cmds, func(c []any) bool { return strings.EqualFold(fmt.Sprint(c[0]), "wait") })
	if trips != 2 || len(cmds) < 2 || !strings.EqualFold(fmt.Sprint(cmds[1][0]), "eval") {
		t.Fatalf("commit after a flush: %d round trips: %v", trips, cmds)
	}
	if err := e.client.ScriptFlush(e.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	e.create("b", t0)
}

// TestServerRestart: a Redis that lost everything (no persistence) gets
// its consumer groups back on the next read.
func TestServerRestart(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.single("it restarts its redis-server; a shared cluster must stay up")
	e.create("a", t0)
	e.srv.Restart(t)
	if items := e.readAll("c1"); len(items) != 0 {
		t.Fatalf("items after data loss: %v", items)
	}
	e.create("a", t0)
	if items := e.readAll("c1"); len(items) != 1 {
		t.Fatalf("items after restart: %v", items)
	}
}

// TestDurableRestart: with AOF, a killed Redis keeps instances, pending
// work and the consumer groups' pending lists; another engine reclaims.
func TestDurableRestart(t *testing.T) {
	e := newEnvWith(t, redisstore.Options{}, redistest.StartOpts{AOF: true})
	e.create("a", t0)
	items := e.readAll("dead")
	if len(items) != 1 {
		t.Fatalf("items %v", items)
	}
	e.srv.Kill()
	e.srv.Restart(t)
	if got := e.readAll("c2"); len(got) != 0 {
		t.Fatalf("pending item delivered again as new: %v", got)
	}
	p := items[0].Partition
	re, err := e.s.ReclaimWork(e.ctx, "c2", p, 0, 10)
	if err != nil || len(re) != 1 || re[0].ID != items[0].ID || re[0].Event.Kind != interpreter.EvStart {
		t.Fatalf("reclaimed %v, %v", re, err)
	}
	if errs := e.commit(e.transition("a", re[0].ID, nil)); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

var _ activity.TaskStore = (*redisstore.Store)(nil)

func TestTrimWorkKeepsWhatIsNotAcknowledged(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 1})
	for i := 0; i < 3; i++ {
		e.create(fmt.Sprintf("trim-%d", i), t0)
	}
	items, err := e.s.ReadWork(e.ctx, "c1", []int{0}, 2, 0)
	if err != nil || len(items) != 2 {
		t.Fatalf("read %v %v", items, err)
	}
	// One acknowledged, one pending, one never delivered: only the first may go.
	if err := e.s.AckWork(e.ctx, items[:1]); err != nil {
		t.Fatal(err)
	}
	if n, err := e.s.TrimWork(e.ctx, 0); err != nil || n != 1 {
		t.Fatalf("trimmed %d %v, want 1", n, err)
	}
	if n, _ := e.s.TrimWork(e.ctx, 0); n != 0 {
		t.Fatalf("second trim removed %d", n)
	}
	if err := e.s.AckWork(e.ctx, items[1:]); err != nil {
		t.Fatal(err)
	}
	rest, err := e.s.ReadWork(e.ctx, "c1", []int{0}, 10, 0)
	if err != nil || len(rest) != 1 || rest[0].Instance != "trim-2" {
		t.Fatalf("the undelivered item: %v %v", rest, err)
	}
	if err := e.s.AckWork(e.ctx, rest); err != nil {
		t.Fatal(err)
	}
	if n, err := e.s.TrimWork(e.ctx, 0); err != nil || n != 2 {
		t.Fatalf("trimmed %d %v, want 2", n, err)
	}
}

// TestCommitRefusesAnEarlierIncarnation: a transition computed on the state
// of an instance that has since finished and been started again under its
// id does not commit, even when the new one has reached the same revision
// (an engine may compute on a cached state).
func TestCommitRefusesAnEarlierIncarnation(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	e.readAll("c")
	old := e.transition("a", "", func(s *interpreter.State) { s.Status = interpreter.StatusRunning })
	if errs := e.commit(old); errs[0] != nil {
		t.Fatal(errs[0])
	}
	stale := old.State // revision 1 of the first incarnation
	e.finish("a", interpreter.StatusCompleted)
	if err := e.s.CreateInstance(e.ctx, newInstance("a", t0.Add(time.Minute), "")); err != nil {
		t.Fatal(err)
	}
	if errs := e.commit(e.transition("a", "", nil)); errs[0] != nil { // the new one at revision 1
		t.Fatal(errs[0])
	}
	next := *stale
	next.Revision++
	tr := &interpreter.Transition{State: &next, FromRevision: stale.Revision}
	if errs := e.commit(tr); !errors.Is(errs[0], interpreter.ErrConflict) {
		t.Fatalf("commit on the earlier incarnation: %v, want ErrConflict", errs[0])
	}
}

// TestCommitAcknowledgesATask: a transition that consumed a task's outcome
// directly acknowledges and deletes the task in its commit; a second one
// for the same task is ErrDuplicate and writes nothing; a transition may
// not consume both a work item and a task, nor another instance's task.
func TestCommitAcknowledgesATask(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	e.create("b", t0)
	e.readAll("engine")
	ref := e.takeLocalTask("a", "t1")
	tr := e.transition("a", "", nil)
	tr.TaskAck = &ref
	if errs := e.commit(tr); errs[0] != nil {
		t.Fatal(errs[0])
	}
	e.taskGone(ref)
	rev := e.load("a").Revision
	again := e.transition("a", "", nil)
	again.TaskAck = &ref
	if errs := e.commit(again); !errors.Is(errs[0], interpreter.ErrDuplicate) {
		t.Fatalf("second commit for the task: %v", errs[0])
	}
	if e.load("a").Revision != rev {
		t.Fatal("the refused commit wrote")
	}
	both := e.transition("a", "1-1", nil)
	both.TaskAck = &ref
	if errs, err := e.s.Commit(e.ctx, []*interpreter.Transition{both}); err == nil && errs[0] == nil {
		t.Fatal("a commit consuming a work item and a task was accepted")
	}
	other := e.transition("b", "", nil)
	other.TaskAck = &ref
	if errs, err := e.s.Commit(e.ctx, []*interpreter.Transition{other}); err == nil && errs[0] == nil {
		t.Fatal("b consumed a's task")
	}
}
