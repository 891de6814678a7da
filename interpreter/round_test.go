package interpreter

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// memStore is an in-memory Store for the engine's round: states guarded by
// revision and created time, acknowledged work items and tasks, counted
// loads and commits, and hooks that make a commit or a load fail. Methods
// the round does not use panic (the embedded nil Store).
type memStore struct {
	Store
	mu      sync.Mutex
	sources map[string][]byte // definition hash → YAML
	states  map[InstanceID]*State
	acked   map[string]bool // work item ids and task ids
	loads   int             // LoadStates calls
	commits []*Transition   // applied, in order
	// answer, when set, answers the commit of t before the store's own
	// checks do; nil lets them run.
	answer func(t *Transition) error
	// commitErr and loadErr fail whole calls.
	commitErr, loadErr error
	nextWork           int
	started            []InstanceID // created with a start item (CreateInstance without First)
	commitCalls        int          // Commit calls
	// mseq numbers each instance's client messages, as redisstore's
	// instance field does; queued holds the raises queued as work items.
	mseq   map[InstanceID]int64
	queued []WorkItem
}

func newMemStore(t *testing.T, src string) (*memStore, *dsl.Workflow) {
	t.Helper()
	def, err := dsl.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return &memStore{sources: map[string][]byte{def.Hash: []byte(src)},
		states: map[InstanceID]*State{}, acked: map[string]bool{}, mseq: map[InstanceID]int64{}}, def
}

func (m *memStore) Partitions() int { return 1 }

func (m *memStore) LoadDefinition(_ context.Context, _, hash string) ([]byte, error) {
	if src, ok := m.sources[hash]; ok {
		return src, nil
	}
	return nil, ErrNotFound
}

func (m *memStore) LoadStates(_ context.Context, ids []InstanceID) ([]*State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loadErr != nil {
		return nil, m.loadErr
	}
	m.loads++
	out := make([]*State, len(ids))
	for i, id := range ids {
		out[i] = m.states[id]
	}
	return out, nil
}

func (m *memStore) Commit(_ context.Context, ts []*Transition) ([]error, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.commitErr != nil {
		return nil, m.commitErr
	}
	m.commitCalls++
	errs := make([]error, len(ts))
	for i, t := range ts {
		errs[i] = m.commitOne(t)
	}
	return errs, nil
}

func (m *memStore) commitOne(t *Transition) error {
	if m.answer != nil {
		if err := m.answer(t); err != nil {
			return err
		}
	}
	ack := t.WorkID
	if t.TaskAck != nil {
		ack = taskKey(*t.TaskAck)
	}
	if ack != "" && m.acked[ack] {
		return ErrDuplicate
	}
	cur := m.states[t.State.ID]
	if cur == nil {
		return ErrNotFound
	}
	if cur.Revision != t.FromRevision || !cur.CreatedTime.Equal(t.State.CreatedTime) {
		return ErrConflict
	}
	if t.Message != 0 {
		if m.mseq[t.State.ID] != t.Message-1 {
			return ErrConflict
		}
		m.mseq[t.State.ID] = t.Message
	}
	m.states[t.State.ID] = t.State
	if ack != "" {
		m.acked[ack] = true
	}
	m.commits = append(m.commits, t)
	return nil
}

// taskKey is the acknowledgement of a task in memStore.acked.
func taskKey(ref TaskRef) string { return "task:" + string(ref.Instance) + "/" + ref.TaskID }

func (m *memStore) AckWork(_ context.Context, items []WorkItem) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, it := range items {
		m.acked[it.ID] = true
	}
	return nil
}

// create stores a new instance and returns its start item, carrying the
// state as redisstore's does.
func (m *memStore) create(def *dsl.Workflow, id InstanceID) WorkItem {
	ni := Instantiate(def, id, nil, t0)
	m.states[id] = ni.State
	ev := ni.Start
	ev.Init = &StartInfo{Name: def.Name, DefHash: def.Hash}
	return m.item(id, ev)
}

// item is a new work item of id.
func (m *memStore) item(id InstanceID, ev Event) WorkItem {
	m.nextWork++
	if ev.Time.IsZero() {
		ev.Time = t0
	}
	return WorkItem{ID: "w" + strconv.Itoa(m.nextWork), Instance: id, Event: ev}
}

func (m *memStore) raise(id InstanceID, name string, data string) WorkItem {
	return m.item(id, Event{Kind: EvRaised, Name: name, Data: json.RawMessage(data)})
}

// RaiseEvent queues a numbered raise, as redisstore's does, in queued.
func (m *memStore) RaiseEvent(ctx context.Context, id InstanceID, name string, data json.RawMessage, now time.Time) error {
	return m.SendControl(ctx, id, Event{Kind: EvRaised, Time: now, Name: name, Data: data})
}

// SendControl queues a numbered message (a raise too, here) in queued.
func (m *memStore) SendControl(_ context.Context, id InstanceID, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch cur := m.states[id]; {
	case cur == nil:
		return ErrNotFound
	case cur.Status.Terminal():
		return ErrFinished
	}
	m.mseq[id]++
	ev.Seq = m.mseq[id]
	m.queued = append(m.queued, m.item(id, ev))
	return nil
}

// moveUnder commits a transition of ev as another engine would: the
// state this engine cached or loaded is then one revision behind.
func (m *memStore) moveUnder(t *testing.T, def *dsl.Workflow, id InstanceID, ev Event) *Transition {
	t.Helper()
	if ev.Time.IsZero() {
		ev.Time = t0
	}
	tr, err := New(Options{}).Step(def, m.states[id], ev)
	if err != nil || tr == nil {
		t.Fatalf("another engine's step: %v, %v", tr, err)
	}
	m.states[id] = tr.State
	return tr
}

func (m *memStore) status(id InstanceID) RuntimeStatus { return m.states[id].Status }

func (m *memStore) isAcked(items ...WorkItem) bool {
	for _, it := range items {
		if !m.acked[it.ID] {
			return false
		}
	}
	return true
}

func quietEngine(m *memStore, opts EngineOptions) *Engine {
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Clock = func() time.Time { return t0 }
	return NewEngine(m, NewCatalog(m), opts)
}

const pairFlow = `name: Pair
steps:
  - wait: {event: a, result: x}
  - wait: {event: b, result: y}
  - return: ${ [x, y] }
`

// Applied: the items of one instance run in order, one round each, the
// start from the state it carries and the next ones from the cache: no
// load at all.
func TestRoundAppliesInOrderWithoutLoads(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{})
	items := []WorkItem{m.create(def, "i"), m.raise("i", "a", "1"), m.raise("i", "b", "2")}
	e.Process(context.Background(), items)
	st := m.states["i"]
	if st.Status != StatusCompleted || string(st.Output) != "[1,2]" {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
	if m.loads != 0 || len(m.commits) != 3 || !m.isAcked(items...) {
		t.Fatalf("loads %d commits %d acked %v", m.loads, len(m.commits), m.acked)
	}
}

// Duplicate: another engine applied the item already; it is dropped and
// the next item runs on the state that engine made, loaded.
func TestRoundDuplicateDropsAndReloads(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{})
	start := m.create(def, "i")
	e.Process(context.Background(), []WorkItem{start})
	a, b := m.raise("i", "a", "1"), m.raise("i", "b", "2")
	// The other engine applied a (and acknowledged it) after this one
	// cached the instance.
	m.moveUnder(t, def, "i", a.Event)
	m.acked[a.ID] = true
	e.Process(context.Background(), []WorkItem{a, b})
	st := m.states["i"]
	if st.Status != StatusCompleted || string(st.Output) != "[1,2]" || m.loads != 1 {
		t.Fatalf("status %s output %s loads %d", st.Status, st.Output, m.loads)
	}
}

// Conflict: the instance moved under the cached state; the same item is
// applied again on the loaded state, and nothing the other engine did is
// lost.
func TestRoundConflictReloadsAndRetries(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{})
	e.Process(context.Background(), []WorkItem{m.create(def, "i")})
	m.moveUnder(t, def, "i", Event{Kind: EvRaised, Name: "a", Data: json.RawMessage(`"other"`)})
	b := m.raise("i", "b", "2")
	e.Process(context.Background(), []WorkItem{b})
	st := m.states["i"]
	if st.Status != StatusCompleted || string(st.Output) != `["other",2]` || m.loads != 1 || !m.isAcked(b) {
		t.Fatalf("status %s output %s loads %d", st.Status, st.Output, m.loads)
	}
}

// A conflict every time: the chain gives up after maxLoads loads in a row
// and leaves its items pending for a reclaim.
func TestRoundGivesUpOnContendedInstance(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{})
	e.Process(context.Background(), []WorkItem{m.create(def, "i")})
	m.answer = func(*Transition) error { return ErrConflict }
	a := m.raise("i", "a", "1")
	e.Process(context.Background(), []WorkItem{a})
	if m.loads != maxLoads || m.isAcked(a) || m.status("i") != StatusRunning {
		t.Fatalf("loads %d acked %v status %s", m.loads, m.isAcked(a), m.status("i"))
	}
}

// Another failure of one commit: its items stay pending, the cache forgets
// the instance, and the other instances of the round go on.
func TestRoundCommitFailureLeavesWorkPending(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{})
	e.Process(context.Background(), []WorkItem{m.create(def, "i"), m.create(def, "j")})
	broken := errors.New("script error")
	m.answer = func(t *Transition) error {
		if t.State.ID == "i" {
			return broken
		}
		return nil
	}
	ia, ib, ja := m.raise("i", "a", "1"), m.raise("i", "b", "2"), m.raise("j", "a", "3")
	e.Process(context.Background(), []WorkItem{ia, ib, ja})
	if m.acked[ia.ID] || m.acked[ib.ID] || !m.acked[ja.ID] {
		t.Fatalf("acked %v", m.acked)
	}
	if st, _ := e.cache.get("i"); st != nil {
		t.Fatal("the cache still holds an instance whose commit failed")
	}
	// A whole commit that fails, and a load that fails: nothing is acked.
	m.answer, m.commitErr = nil, errors.New("connection reset")
	e.Process(context.Background(), []WorkItem{ia})
	m.commitErr, m.loadErr = nil, errors.New("connection reset")
	e.Process(context.Background(), []WorkItem{ia})
	if m.acked[ia.ID] {
		t.Fatal("an item was acknowledged without its transition")
	}
	m.loadErr = nil
	e.Process(context.Background(), []WorkItem{ia, ib})
	if st := m.states["i"]; st.Status != StatusCompleted || !m.isAcked(ia, ib) {
		t.Fatalf("after the store came back: %s", st.Status)
	}
}

// A shortcut state may not drop an item: a timer another engine started
// means nothing to the cached state, so the item is tried on the stored
// state before it is dropped.
func TestRoundStaleCacheDoesNotDropItem(t *testing.T) {
	m, def := newMemStore(t, `name: Timed
steps:
  - wait: {event: a, result: x}
  - wait: {event: b, timeout: 10s, result: y, onTimeout: [{set: {y: late}}]}
  - return: ${ [x, y] }
`)
	e := quietEngine(m, EngineOptions{})
	e.Process(context.Background(), []WorkItem{m.create(def, "i")})
	tr := m.moveUnder(t, def, "i", Event{Kind: EvRaised, Name: "a", Data: json.RawMessage(`1`)})
	i := slices.IndexFunc(tr.Commands, func(c Command) bool { _, ok := c.(*StartTimer); return ok })
	if i < 0 {
		t.Fatalf("no timer started: %v", tr.Commands)
	}
	fired := m.item("i", Event{Kind: EvTimer, Timer: tr.Commands[i].(*StartTimer).ID, Time: t0.Add(10 * time.Second)})
	e.Process(context.Background(), []WorkItem{fired})
	if st := m.states["i"]; st.Status != StatusCompleted || string(st.Output) != `[1,"late"]` || m.loads != 1 {
		t.Fatalf("status %s output %s loads %d", st.Status, st.Output, m.loads)
	}
}

// Items for an instance that is gone are acknowledged; so is an item that
// takes no transition on the stored state.
func TestRoundDropsWorkOfGoneInstances(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{CacheSize: -1})
	gone := m.raise("nobody", "a", "1")
	e.Process(context.Background(), []WorkItem{m.create(def, "i"), gone})
	late := m.item("i", Event{Kind: EvTimer, Timer: "t.none"})
	e.Process(context.Background(), []WorkItem{late})
	if !m.isAcked(gone, late) || len(m.commits) != 1 {
		t.Fatalf("acked %v commits %d", m.acked, len(m.commits))
	}
}

const taskFlow = `name: Act
activities:
  Calc: {expr: "input + 1"}
steps:
  - activity: Calc
    input: 1
    result: r
  - return: ${ r }
`

// startTask starts an instance of taskFlow and returns its task's ref and
// completion.
func startTask(t *testing.T, m *memStore, e *Engine, def *dsl.Workflow, id InstanceID) (TaskRef, Event) {
	t.Helper()
	e.Process(context.Background(), []WorkItem{m.create(def, id)})
	return lastTask(t, m, id)
}

// lastTask is the ref and completion (Calc's 2) of the task the last commit
// scheduled for instance id.
func lastTask(t *testing.T, m *memStore, id InstanceID) (TaskRef, Event) {
	t.Helper()
	last := m.commits[len(m.commits)-1]
	i := slices.IndexFunc(last.Commands, func(c Command) bool { _, ok := c.(*ScheduleTask); return ok })
	if i < 0 {
		t.Fatalf("no task scheduled: %v", last.Commands)
	}
	st := last.Commands[i].(*ScheduleTask)
	return TaskRef{Instance: id, TaskID: st.TaskID}, Event{Kind: EvCompleted, Time: t0, TaskID: st.TaskID, Data: json.RawMessage(`2`)}
}

// ApplyTaskOutcome: applied; applied already (a duplicate); declined when
// the outcome takes no transition (nothing acknowledged: the runtime
// finishes the task the usual way); declined after maxLoadsDirect loads
// that all conflict.
func TestApplyTaskOutcomeSettles(t *testing.T) {
	m, def := newMemStore(t, taskFlow)
	e := quietEngine(m, EngineOptions{})
	ref, done := startTask(t, m, e, def, "i")
	if !e.ApplyTaskOutcome(context.Background(), ref, done) || m.status("i") != StatusCompleted || m.loads != 0 {
		t.Fatalf("applied: status %s loads %d", m.status("i"), m.loads)
	}
	// Once the instance has moved past it, the outcome takes no transition.
	if e.ApplyTaskOutcome(context.Background(), ref, done) {
		t.Fatal("an outcome was applied twice")
	}

	// The runtime that took the task over after its lease finished it
	// already (its work item is on the way): applied, nothing written.
	ref, done = startTask(t, m, e, def, "h")
	m.acked[taskKey(ref)] = true
	commits := len(m.commits)
	if !e.ApplyTaskOutcome(context.Background(), ref, done) || len(m.commits) != commits || m.status("h") != StatusRunning {
		t.Fatal("a task acknowledged already is not reported applied")
	}

	ref, done = startTask(t, m, e, def, "j")
	other := done
	other.TaskID = "t.someone-else"
	if e.ApplyTaskOutcome(context.Background(), ref, other) || m.acked[taskKey(ref)] {
		t.Fatal("an outcome that takes no transition was applied")
	}

	ref, done = startTask(t, m, e, def, "k")
	m.answer = func(*Transition) error { return ErrConflict }
	loads := m.loads
	if e.ApplyTaskOutcome(context.Background(), ref, done) || m.loads-loads != maxLoadsDirect {
		t.Fatalf("contended outcome: loads %d", m.loads-loads)
	}
	m.answer = nil
	if !e.ApplyTaskOutcome(context.Background(), ref, done) || m.status("k") != StatusCompleted {
		t.Fatal("the outcome did not apply once the contention ended")
	}
}

func (m *memStore) PartitionOf(InstanceID) int { return 0 }

// CreateInstance stores ni as redisstore's does: as its first transition
// leaves it when it has one (no start item then), else Pending with its
// start item kept in started.
func (m *memStore) CreateInstance(_ context.Context, ni NewInstance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.states[ni.State.ID]; cur != nil && !cur.Status.Terminal() {
		return ErrAlreadyRunning
	}
	if ni.First != nil {
		ni.First.State.Revision = 1
		m.states[ni.State.ID] = ni.First.State
		m.commits = append(m.commits, ni.First)
		return nil
	}
	m.states[ni.State.ID] = ni.State
	m.started = append(m.started, ni.State.ID)
	return nil
}
