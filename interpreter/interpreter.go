// Package interpreter runs compiled workflows: a pure (state, event) → (state', commands) step function, and the engine loop that drives it against a Store.
package interpreter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// Limits on what one instance may hold.
const (
	MaxVarsBytes = 1 << 20 // all variables' JSON together, every branch's included
	// MaxItems bounds the list a forEach goes over.
	MaxItems = 10_000
	// maxHistoryLines bounds the history lines of one transition (a loop
	// that never blocks could write thousands): the first and last halves
	// are kept around one HistoryTruncated line.
	maxHistoryLines = 200
	// maxStepsPerTransition bounds the work of one transition: a thread
	// that would run more steps yields and goes on in the next transition
	// (on a timer due at once), so a long loop never holds an engine.
	maxStepsPerTransition = 10_000
)

// Error types an instance can fail with (ErrorInfo.Type).
const (
	ErrTypeExpression = "ExpressionError"
	ErrTypeStatus     = "CustomStatusError"
	ErrTypeVariables  = "VariablesTooLarge"
	ErrTypeTimeout    = "TimeoutError"
	ErrTypeActivity   = "ActivityFailed"
	ErrTypeActTimeout = "ActivityTimeout"
	ErrTypeDefinition = "DefinitionError"
	ErrTypeFail       = "WorkflowFailed"
	ErrTypeInternal   = "InternalError"
	ErrTypeLoopLimit  = "LoopLimitExceeded" // a while ran max iterations and would run one more
	ErrTypeItems      = "InvalidItems"      // a forEach's items are not a list or too many
	ErrTypeChild      = "ChildWorkflowFailed"
	// ErrTypeInvalidInput: a continueAsNew's input breaks the input schema
	// of the version it moves onto.
	ErrTypeInvalidInput = "InvalidInput"
	// ErrTypeInvalidResult: an activity's result breaks its output schema.
	ErrTypeInvalidResult = "InvalidResult"
)

// Options configure an Interpreter.
type Options struct {
	// LocalActivity reports whether an activity name without a binding in
	// the workflow has a Go handler registered in this process; such tasks
	// go to the local queue instead of waiting for an external worker.
	LocalActivity func(name string) bool
}

// Interpreter computes transitions. It holds no state of its own and is safe
// for concurrent use.
type Interpreter struct {
	opts Options
}

// New returns an Interpreter.
func New(opts Options) *Interpreter { return &Interpreter{opts: opts} }

// Instantiate builds what starting an instance writes: a Pending state
// at revision 0 and the ExecutionStarted work item.
func Instantiate(def *dsl.Workflow, id InstanceID, input json.RawMessage, now time.Time) NewInstance {
	now = now.UTC()
	if len(input) == 0 || string(input) == "null" {
		input = nil
	}
	return NewInstance{
		State: &State{
			ID:              id,
			Name:            def.Name,
			DefHash:         def.Hash,
			Status:          StatusPending,
			Input:           input,
			CreatedTime:     now,
			LastUpdatedTime: now,
		},
		Start: Event{Kind: EvStart, Time: now},
	}
}

// Step applies one event to a state and returns the transition to commit.
// It returns (nil, nil) when the event changes nothing (a late timer, a
// duplicate completion, anything sent to a finished instance): the caller
// acknowledges it and moves on. st is not modified.
func (in *Interpreter) Step(def *dsl.Workflow, st *State, ev Event) (*Transition, error) {
	return in.StepOnto(def, nil, st, ev)
}

// StepOnto is Step with latest, the latest deployed version of the
// workflow, which a continueAsNew moves the instance onto (unless it says
// version: same). nil or def itself: the next run stays on def.
func (in *Interpreter) StepOnto(def, latest *dsl.Workflow, st *State, ev Event) (*Transition, error) {
	if st.Status.Terminal() {
		return nil, nil
	}
	r := &run{in: in, def: def, latest: latest, st: st.clone(), ev: ev, now: ev.Time.UTC()}
	r.tr = &r.trBuf
	*r.tr = Transition{State: r.st, FromRevision: st.Revision}
	r.load()
	changed, err := r.ordered(ev)
	if err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	r.save()
	r.tr.History = bounded(r.tr.History, r.now)
	r.st.Revision = st.Revision + 1
	// An outcome held through an outage runs at when its activity
	// finished, which can be before the instance's last update: the
	// update time never goes back.
	r.st.LastUpdatedTime = later(r.now, st.LastUpdatedTime)
	if r.st.Status != st.Status || string(r.st.CustomStatus) != string(st.CustomStatus) {
		r.tr.StatusChanged = true
	}
	return r.tr, nil
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// bounded keeps the first and last halves of maxHistoryLines history lines
// around one HistoryTruncated line that counts those left out.
func bounded(h []HistoryEvent, now time.Time) []HistoryEvent {
	n := len(h)
	if n <= maxHistoryLines {
		return h
	}
	cut := HistoryEvent{Type: "HistoryTruncated", Timestamp: now, Reason: fmt.Sprintf("%d lines of this transition left out", n-maxHistoryLines)}
	return append(append(h[:maxHistoryLines/2:maxHistoryLines/2], cut), h[n-maxHistoryLines/2:]...)
}

// run is one Step call's working set. The main path and the branches are
// all threads here: the main path is threads[0], with id "", loaded from
// and saved back to State.Cursor, State.Pending and State.Vars.
//
// Its methods live by concern: dispatch.go applies an event (client
// messages, completions, timers); steps.go runs one step, a function per
// kind, with waits.go and calls.go for waits and call steps; threads.go
// runs the threads and joins their branches; raise.go raises errors into
// handlers, retries and fails the instance; vars.go holds variables, the
// expression environment and eval; cursor.go moves a thread's cursor;
// order.go keeps client messages in order.
type run struct {
	in     *Interpreter
	def    *dsl.Workflow
	latest *dsl.Workflow // what a continueAsNew moves onto; nil = stay on def
	st     *State
	ev     Event
	now    time.Time
	tr     *Transition

	main    *Thread
	threads []*Thread // main first, then the branches in the order they started
	queue   []*Thread // threads to run, in order
	running *Thread   // the thread runThread is running
	steps   int       // steps run in this transition

	// mainThread, threadBuf and queueBuf hold main, threads and queue
	// while they are small, so that the run is one allocation with them.
	mainThread Thread
	threadBuf  [2]*Thread
	queueBuf   [2]*Thread
	// trBuf, histBuf and cmdBuf hold the transition Step returns and its
	// first history lines and commands, likewise: the transition keeps
	// the run alive only until it is committed.
	trBuf   Transition
	histBuf [4]HistoryEvent
	cmdBuf  [4]Command

	input     any // the decoded input
	haveInput bool
	// mainView and views are the decoded variables each thread sees
	// (see view): the main path's, and the branches' by thread id.
	mainView map[string]any
	views    map[string]map[string]any
	envBuf   dsl.Env // see env
}

// newID allocates a task ('t') or timer ('w') id: the instance's next
// sequence number and its created time, so no task or timer of an earlier
// incarnation of the id (finished, then started again; its task may still
// run, its fired timer may still be queued) can pass for one of this
// incarnation.
func (r *run) newID(kind byte) string {
	r.st.Seq++
	var buf [32]byte // one string, built on the stack
	b := append(buf[:0], kind)
	b = strconv.AppendInt(b, r.st.Seq, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, r.st.CreatedTime.UnixMilli(), 36)
	return string(b)
}

// newTimer allocates a timer id and the command that starts it.
func (r *run) newTimer(th *Thread, due time.Time) string {
	id := r.newID('w')
	r.command(&StartTimer{ID: id, Due: due.UTC()})
	r.history(HistoryEvent{Type: "TimerCreated", StepID: r.currentStepID(th), Name: id, Data: timeJSON(due)})
	return id
}

// cancelTimer cancels the timer a thread waits on, if any, and its
// attempt's watch.
func (r *run) cancelTimer(th *Thread) {
	if p := th.Pending; p != nil && p.TimerID != "" && p.Deadline != nil {
		r.command(&CancelTimer{ID: p.TimerID, Due: *p.Deadline})
		p.TimerID = ""
	}
	if p := th.Pending; p != nil {
		r.cancelWatch(p)
	}
}

// history appends a history line, at the transition's time unless it has
// its own. The first lines go to the run's histBuf: a transition most
// often writes several (ReserveTicket's transitions write 3 each), and
// growing a slice from one copies the lines each time.
func (r *run) history(h HistoryEvent) {
	if h.Timestamp.IsZero() {
		h.Timestamp = r.now
	}
	if r.tr.History == nil {
		r.tr.History = r.histBuf[:0]
	}
	r.tr.History = append(r.tr.History, h)
}

// command appends a command to the transition, the first few in the
// run's cmdBuf.
func (r *run) command(c Command) {
	if r.tr.Commands == nil {
		r.tr.Commands = r.cmdBuf[:0]
	}
	r.tr.Commands = append(r.tr.Commands, c)
}

// timeJSON is mustJSON(t.UTC().Format(time.RFC3339Nano)) in one
// allocation: that format writes no character JSON escapes.
func timeJSON(t time.Time) json.RawMessage {
	b := make([]byte, 0, len(`"2006-01-02T15:04:05.999999999Z"`))
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
