// Package sim runs workflows offline: the real interpreter over an in-memory store, with a virtual clock and mocked activities.
package sim

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// Epoch is the virtual time an instance starts at unless told otherwise.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxTransitions bounds one simulation: a workflow that never settles
// (continueAsNew for ever, say) fails its case instead of running on.
const MaxTransitions = 100_000

// Mock is what one call of an activity returns: a result, or an error.
type Mock struct {
	Result json.RawMessage // nil = null
	Error  *interpreter.ErrorInfo
	// Takes is how much virtual time the call takes (0 = none), so that a
	// mock can outlast the activity's timeout.
	Takes time.Duration
}

// Mocks are an activity's mocks: Calls[i] answers call i (attempts
// count as calls); with Every, Calls[0] answers every call.
type Mocks struct {
	Calls []Mock
	Every bool
}

// Message is something sent to the instance from outside, at a virtual
// offset from its start: an event (Name, Data), or a terminate, suspend or
// resume (Control, with Reason).
type Message struct {
	After   time.Duration
	Name    string
	Data    json.RawMessage
	Control interpreter.EventKind // EvTerminate, EvSuspend or EvResume; "" = an event
	Reason  string
}

// Config is one simulated instance.
type Config struct {
	Workflow *dsl.Workflow
	// Child finds the workflow a call step names; when it has none (or
	// Child is nil) the simulation stops with a Problem.
	Child func(name string) (*dsl.Workflow, error)
	Input json.RawMessage // nil = null
	ID    interpreter.InstanceID
	Start time.Time // zero = Epoch
	// Activities are the mocks by activity name, for the instance and its
	// children; an expr-bound activity without one runs its expression.
	Activities map[string]*Mocks
	Messages   []Message
	// StopAfter ends the simulation at this virtual offset even when the
	// instance could go on (0 = when nothing more can happen).
	StopAfter time.Duration
}

// Run is what happened to a simulated instance.
type Run struct {
	Status interpreter.RuntimeStatus
	// Output is the instance's output: the return value, the ErrorInfo
	// of a Failed instance, the reason of a Terminated one.
	Output json.RawMessage
	// Statuses holds every custom status set, in order.
	Statuses []json.RawMessage
	// Calls counts the calls (attempts) of each activity.
	Calls map[string]int
	// Duration is the virtual time from the start to the last transition.
	Duration time.Duration
	// Timeline is every history line of the instance and its children.
	Timeline []Entry
	// Problem says why the simulation could not go on (an activity
	// without a mock, a call to an unknown workflow, no end); "" = none.
	Problem string
	// Reached lists, per workflow file, the steps seen running.
	Reached map[string]*Reach
	// Transitions counts the interpreter steps taken, children included.
	Transitions int
	State       *interpreter.State // the instance's last state
}

// Entry is one line of the timeline.
type Entry struct {
	At       time.Duration // virtual offset from the start
	Instance interpreter.InstanceID
	interpreter.HistoryEvent
}

// Error returns the ErrorInfo of a Failed run, nil otherwise.
func (r *Run) Error() *interpreter.ErrorInfo {
	if r.Status != interpreter.StatusFailed {
		return nil
	}
	var info interpreter.ErrorInfo
	if json.Unmarshal(r.Output, &info) != nil {
		return nil
	}
	return &info
}

// instance is one simulated instance: the in-memory store's record.
type instance struct {
	def    *dsl.Workflow
	st     *interpreter.State
	timers map[string]time.Time
	seq    int64 // client messages accepted
}

// item is a work item due at a virtual time.
type item struct {
	at    time.Time
	order int // insertion order, for ties
	id    interpreter.InstanceID
	ev    interpreter.Event
	msg   bool // a client message: numbered when delivered
}

type queue []*item

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].order < q[j].order
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*item)) }
func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// world is the in-memory store with its clock.
type world struct {
	cfg   Config
	in    *interpreter.Interpreter
	start time.Time
	now   time.Time
	q     queue
	order int
	insts map[interpreter.InstanceID]*instance
	used  map[string]int // mock calls taken, per activity
	run   *Run
}

// Simulate runs one instance until it ends, nothing more can happen, or
// StopAfter passes. Work due at the same virtual time is applied in the
// order it was queued, so scripted messages come before timers set later
// for the same time.
func Simulate(cfg Config) *Run {
	if cfg.ID == "" {
		cfg.ID = "test"
	}
	start := cfg.Start
	if start.IsZero() {
		start = Epoch
	}
	w := &world{
		cfg: cfg, start: start.UTC(), now: start.UTC(),
		in:    interpreter.New(interpreter.Options{}),
		insts: map[interpreter.InstanceID]*instance{},
		used:  map[string]int{},
		run:   &Run{Calls: map[string]int{}, Reached: map[string]*Reach{}},
	}
	w.create(cfg.Workflow, cfg.ID, cfg.Input, "")
	for _, m := range cfg.Messages {
		ev := interpreter.Event{Kind: interpreter.EvRaised, Name: m.Name, Data: m.Data, Reason: m.Reason}
		if m.Control != "" {
			ev.Kind = m.Control
		}
		w.push(w.start.Add(m.After), cfg.ID, ev, true)
	}
	root := w.insts[cfg.ID]
	for w.q.Len() > 0 && w.run.Problem == "" {
		it := heap.Pop(&w.q).(*item)
		if cfg.StopAfter > 0 && it.at.Sub(w.start) > cfg.StopAfter {
			break
		}
		if root.st.Status.Terminal() {
			break
		}
		w.now = it.at
		w.apply(it)
	}
	w.run.State = root.st
	w.run.Status = root.st.Status
	w.run.Output = root.st.Output
	w.run.Duration = root.st.LastUpdatedTime.Sub(w.start)
	if w.run.Problem == "" && w.run.Transitions >= MaxTransitions {
		w.run.Problem = fmt.Sprintf("the instance did not settle within %d transitions", MaxTransitions)
	}
	for _, inst := range w.insts {
		w.reach(inst.def).finish(inst.st)
	}
	return w.run
}

func (w *world) push(at time.Time, id interpreter.InstanceID, ev interpreter.Event, msg bool) {
	w.order++
	heap.Push(&w.q, &item{at: at, order: w.order, id: id, ev: ev, msg: msg})
}

// create writes a new instance and queues its start, as a store's
// CreateInstance does.
func (w *world) create(def *dsl.Workflow, id interpreter.InstanceID, input json.RawMessage, parent interpreter.InstanceID) {
	ni := interpreter.Instantiate(def, id, input, w.now)
	ni.State.Parent = parent
	w.insts[id] = &instance{def: def, st: ni.State, timers: map[string]time.Time{}}
	w.push(w.now, id, ni.Start, false)
}

func (w *world) reach(def *dsl.Workflow) *Reach {
	r := w.run.Reached[def.File]
	if r == nil {
		r = newReach(def)
		w.run.Reached[def.File] = r
	}
	return r
}

// apply delivers one work item and carries out the transition's commands.
func (w *world) apply(it *item) {
	inst := w.insts[it.id]
	if inst == nil {
		return
	}
	ev := it.ev
	if ev.Kind == interpreter.EvTimer {
		if _, live := inst.timers[ev.Timer]; !live {
			return // cancelled
		}
		delete(inst.timers, ev.Timer)
	}
	if ev.Time.IsZero() {
		ev.Time = w.now
	}
	if it.msg {
		inst.seq++
		ev.Seq = inst.seq
	}
	if w.run.Transitions++; w.run.Transitions > MaxTransitions {
		w.run.Problem = fmt.Sprintf("the instance did not settle within %d transitions (a loop that never ends?)", MaxTransitions)
		return
	}
	tr, err := w.in.Step(inst.def, inst.st, ev)
	if err != nil {
		w.run.Problem = fmt.Sprintf("instance %s: the interpreter failed on %s: %v", it.id, ev.Kind, err)
		return
	}
	if tr == nil {
		return
	}
	before := inst.st
	inst.st = tr.State
	w.reach(inst.def).observe(before, tr)
	for _, h := range tr.History {
		if h.Timestamp.IsZero() {
			h.Timestamp = w.now
		}
		w.run.Timeline = append(w.run.Timeline, Entry{At: h.Timestamp.Sub(w.start), Instance: it.id, HistoryEvent: h})
		if it.id == w.cfg.ID && h.Type == "CustomStatusUpdated" {
			w.run.Statuses = append(w.run.Statuses, h.Data)
		}
	}
	for _, c := range tr.Commands {
		switch c := c.(type) {
		case *interpreter.StartTimer:
			inst.timers[c.ID] = c.Due
			w.push(c.Due, it.id, interpreter.Event{Kind: interpreter.EvTimer, Timer: c.ID, Time: c.Due}, false)
		case *interpreter.CancelTimer:
			delete(inst.timers, c.ID)
		case *interpreter.ScheduleTask:
			w.task(inst, c)
		case *interpreter.StartChild:
			w.startChild(c)
		case *interpreter.TerminateChild:
			w.push(w.now, c.ID, interpreter.Event{Kind: interpreter.EvTerminate, Reason: c.Reason}, true)
		}
	}
	if st := inst.st; st.Parent != "" && st.Status.Terminal() {
		w.tellParent(st.Parent, interpreter.ChildResult{Child: st.ID, Status: st.Status, Output: st.Output})
	}
}

// task runs one activity attempt: its mock, else its expr binding.
func (w *world) task(inst *instance, t *interpreter.ScheduleTask) {
	w.run.Calls[t.Activity]++
	ev := interpreter.Event{Kind: interpreter.EvCompleted, TaskID: t.TaskID}
	at := w.now
	if m := w.cfg.Activities[t.Activity]; m != nil && len(m.Calls) > 0 {
		n := w.used[t.Activity]
		w.used[t.Activity]++
		if !m.Every && n >= len(m.Calls) {
			w.run.Problem = fmt.Sprintf("activity %s was called %d times (attempt %d of step %s) but has mocks for %d", t.Activity, n+1, t.Attempt, t.StepID, len(m.Calls))
			return
		}
		call := m.Calls[0]
		if !m.Every {
			call = m.Calls[n]
		}
		at = at.Add(call.Takes)
		if call.Error != nil {
			info := *call.Error
			info.Attempt = t.Attempt
			ev = interpreter.Event{Kind: interpreter.EvFailed, TaskID: t.TaskID, Error: &info}
		} else {
			ev.Data = call.Result
			if len(ev.Data) == 0 {
				ev.Data = json.RawMessage("null")
			}
		}
		ev.Time = at
		w.push(at, inst.st.ID, ev, false)
		return
	}
	opts := inst.def.Activities[t.Activity]
	if opts == nil || opts.Binding == nil || opts.Binding.Kind != dsl.BindExpr {
		kind := dsl.BindWorker
		if opts != nil && opts.Binding != nil {
			kind = opts.Binding.Kind
		}
		w.run.Problem = fmt.Sprintf("activity %s (step %s of %s) runs on %s and has no mock: give it one under activities: {%s: {result: ...}}", t.Activity, t.StepID, inst.def.Name, bindingName(kind), t.Activity)
		return
	}
	raw, info := activity.RunExpr(opts.Binding, t)
	if info != nil {
		ev = interpreter.Event{Kind: interpreter.EvFailed, TaskID: t.TaskID, Error: info}
	} else {
		ev.Data = raw
	}
	ev.Time = at
	w.push(at, inst.st.ID, ev, false)
}

func bindingName(k dsl.BindingKind) string {
	switch k {
	case dsl.BindHTTP:
		return "an http binding"
	case dsl.BindGo:
		return "a Go handler"
	}
	return "an external worker"
}

// startChild makes sure a called child exists, as the engine does after
// a commit: a finished one's end is sent again, a new one is created from
// the workflow of that name in the simulation's folder.
func (w *world) startChild(c *interpreter.StartChild) {
	if cur := w.insts[c.ID]; cur != nil {
		if cur.st.Status.Terminal() {
			w.tellParent(c.Parent, interpreter.ChildResult{Child: c.ID, Status: cur.st.Status, Output: cur.st.Output})
		}
		return
	}
	var def *dsl.Workflow
	var err error
	if w.cfg.Child != nil {
		def, err = w.cfg.Child(c.Workflow)
	}
	if def == nil {
		msg := fmt.Sprintf("a call step of %s calls workflow %s, which the simulation does not have", w.insts[c.Parent].def.Name, c.Workflow)
		if err != nil {
			msg += ": " + err.Error()
		}
		w.run.Problem = msg
		return
	}
	if def.Input != nil {
		var v any
		_ = json.Unmarshal(c.Input, &v)
		if err := def.Input.Validate(v); err != nil {
			info, _ := json.Marshal(interpreter.ErrorInfo{Type: "InvalidInput", Message: fmt.Sprintf("the input does not satisfy workflow %s's input schema: %v", c.Workflow, err)})
			w.tellParent(c.Parent, interpreter.ChildResult{Child: c.ID, Status: interpreter.StatusFailed, Output: info})
			return
		}
	}
	w.create(def, c.ID, c.Input, c.Parent)
}

// tellParent raises a child's end into its parent.
func (w *world) tellParent(parent interpreter.InstanceID, res interpreter.ChildResult) {
	data, _ := json.Marshal(res)
	w.push(w.now, parent, interpreter.Event{Kind: interpreter.EvRaised, Name: interpreter.ChildEvent, Data: data}, true)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
