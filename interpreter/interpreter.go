// Package interpreter runs compiled workflows: a pure (state, event) → (state', commands) step function, and the engine loop that drives it against a Store.
package interpreter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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
	ErrTypeExpression   = "ExpressionError"
	ErrTypeStatus       = "CustomStatusError"
	ErrTypeVariables    = "VariablesTooLarge"
	ErrTypeTimeout      = "TimeoutError"
	ErrTypeActivity     = "ActivityFailed"
	ErrTypeActTimeout   = "ActivityTimeout"
	ErrTypeDefinition   = "DefinitionError"
	ErrTypeFail         = "WorkflowFailed"
	ErrTypeInternalStep = "InternalError"
	ErrTypeLoopLimit    = "LoopLimitExceeded" // a while ran max iterations and would run one more
	ErrTypeItems        = "InvalidItems"      // a forEach's items are not a list or too many
	ErrTypeChild        = "ChildWorkflowFailed"
)

// Checks that a called child exists: the first after childCheck, each
// next one twice as late, at most childCheckMax apart.
const (
	childCheck    = 10 * time.Second
	childCheckMax = 10 * time.Minute
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

// NewInstanceState builds what starting an instance writes: a Pending state
// at revision 0 and the ExecutionStarted work item.
func NewInstanceState(def *dsl.Workflow, id InstanceID, input json.RawMessage, now time.Time) NewInstance {
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
	if st.Status.Terminal() {
		return nil, nil
	}
	r := &run{in: in, def: def, st: st.clone(), ev: ev, now: ev.Time.UTC(), views: map[string]map[string]any{}}
	r.tr = &Transition{State: r.st, FromRevision: st.Revision}
	r.load()
	changed, err := r.ordered(ev)
	if err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	r.save()
	if n := len(r.tr.History); n > maxHistoryLines {
		h := r.tr.History
		cut := HistoryEvent{Type: "HistoryTruncated", Timestamp: r.now, Reason: fmt.Sprintf("%d lines of this transition left out", n-maxHistoryLines)}
		r.tr.History = append(append(h[:maxHistoryLines/2:maxHistoryLines/2], cut), h[n-maxHistoryLines/2:]...)
	}
	r.st.Revision = st.Revision + 1
	r.st.LastUpdatedTime = r.now
	if r.st.Status != st.Status || string(r.st.CustomStatus) != string(st.CustomStatus) {
		r.tr.StatusChanged = true
	}
	return r.tr, nil
}

// run is one Step call's working set. The main path and the branches are
// all threads here: the main path is threads[0], with id "", loaded from
// and saved back to State.Cursor, State.Pending and State.Vars.
type run struct {
	in  *Interpreter
	def *dsl.Workflow
	st  *State
	ev  Event
	now time.Time
	tr  *Transition

	main    *Thread
	threads []*Thread // main first, then the branches in the order they started
	queue   []*Thread // threads to run, in order
	running *Thread   // the thread runThread is running
	steps   int       // steps run in this transition

	input     any // the decoded input
	haveInput bool
	views     map[string]map[string]any // decoded variables each thread sees
}

// dispatch applies ev and reports whether anything changed.
func (r *run) dispatch(ev Event) (bool, error) {
	switch ev.Kind {
	case EvTerminate:
		r.stopAll()
		r.st.Status = StatusTerminated
		r.st.Output = mustJSON(ev.Reason)
		r.history(HistoryEvent{Type: "ExecutionTerminated", Reason: ev.Reason})
		return true, nil
	case EvSuspend:
		if r.st.Status == StatusSuspended {
			return false, nil
		}
		r.st.Status = StatusSuspended
		r.history(HistoryEvent{Type: "ExecutionSuspended", Reason: ev.Reason})
		return true, nil
	case EvResume:
		if r.st.Status != StatusSuspended {
			return false, nil
		}
		r.history(HistoryEvent{Type: "ExecutionResumed", Reason: ev.Reason})
		held := r.st.Held
		r.st.Held = nil
		r.st.Status = StatusRunning
		if r.main.Cursor == nil && r.main.Pending == nil {
			r.st.Status = StatusPending // suspended before it started
		}
		for _, h := range held {
			if r.st.Status.Terminal() {
				break
			}
			r.now = h.Time.UTC()
			if _, err := r.apply(h); err != nil {
				return false, err
			}
		}
		r.now = ev.Time.UTC()
		return true, nil
	}
	if r.st.Status == StatusSuspended {
		// Everything else waits until resume, in arrival order.
		r.st.Held = append(r.st.Held, ev)
		return true, nil
	}
	return r.apply(ev)
}

// apply handles the events that advance the workflow.
func (r *run) apply(ev Event) (bool, error) {
	switch ev.Kind {
	case EvStart:
		if r.st.Status != StatusPending || r.main.Cursor != nil {
			return false, nil
		}
		r.st.Status = StatusRunning
		r.main.Cursor = []Frame{{Block: "", Index: 0}}
		r.history(HistoryEvent{Type: "ExecutionStarted", Name: r.st.Name, Data: r.st.Input})
		r.startTimeout()
		r.enqueue(r.main)
		return true, r.runQueue()

	case EvRaised:
		if ev.Name == ChildEvent {
			return r.childEnded(ev)
		}
		r.history(HistoryEvent{Type: "EventRaised", Name: ev.Name, Data: ev.Data})
		if r.st.Status == StatusRunning {
			for _, th := range r.threads {
				if th.Pending == nil || !th.Pending.waitsFor(ev.Name) {
					continue
				}
				step, err := r.waitStep(th)
				if err != nil {
					return false, err
				}
				if !r.receive(th, step, th.Pending, ev.Name, ev.Data) {
					return true, nil // an `all` that waits for more
				}
				r.cancelTimer(th)
				th.Pending = nil
				if r.checkVars(th, step) {
					r.advance(th)
				}
				r.enqueue(th)
				return true, r.runQueue()
			}
		}
		r.st.Buffered = append(r.st.Buffered, BufferedEvent{Name: ev.Name, Data: ev.Data, Time: ev.Time})
		return true, nil

	case EvCompleted:
		th := r.find(func(p *Pending) bool { return p.Kind == WaitActivity && p.TaskID == ev.TaskID })
		if th == nil {
			return false, nil // late or duplicate completion
		}
		step, err := r.activityStep(th)
		if err != nil {
			return false, err
		}
		p := th.Pending
		r.cancelTimer(th)
		th.Pending = nil
		r.history(HistoryEvent{Type: "TaskCompleted", StepID: step.ID, Name: step.Activity, Data: ev.Data, Attempt: p.Attempt})
		if step.Result != "" {
			r.setVar(th, step.Result, decodeJSON(ev.Data))
		}
		if r.checkVars(th, step) {
			r.advance(th)
		}
		r.enqueue(th)
		return true, r.runQueue()

	case EvFailed:
		th := r.find(func(p *Pending) bool { return p.Kind == WaitActivity && p.TaskID == ev.TaskID })
		if th == nil {
			return false, nil
		}
		info := ErrorInfo{Type: ErrTypeActivity, Message: "activity failed", Retryable: true}
		if ev.Error != nil {
			info = *ev.Error
		}
		if err := r.activityFailed(th, info); err != nil {
			return false, err
		}
		return true, r.runQueue()

	case EvTimer:
		if t := r.st.Timeout; t != nil && t.ID == ev.Timer {
			r.st.Timeout = nil
			r.history(HistoryEvent{Type: "TimerFired", Name: ev.Timer})
			r.failInstance(ErrorInfo{Type: ErrTypeTimeout, Message: fmt.Sprintf("the workflow did not finish within its timeout of %s", r.def.Timeout)})
			return true, nil
		}
		th := r.find(func(p *Pending) bool { return p.TimerID != "" && p.TimerID == ev.Timer })
		if th == nil {
			return false, nil // cancelled or superseded timer
		}
		if err := r.timerFired(th, ev); err != nil {
			return false, err
		}
		return true, r.runQueue()
	}
	return false, fmt.Errorf("unknown event kind %q", ev.Kind)
}

// timerFired handles the timer a thread waits on.
func (r *run) timerFired(th *Thread, ev Event) error {
	p := th.Pending
	if p.Kind != WaitYield {
		r.history(HistoryEvent{Type: "TimerFired", StepID: p.StepID, Name: ev.Timer})
	}
	switch p.Kind {
	case WaitTimer, WaitYield:
		th.Pending = nil
		if p.Kind == WaitTimer {
			r.advance(th)
		}
		r.enqueue(th)
	case WaitEvent:
		step, err := r.waitStep(th)
		if err != nil {
			return err
		}
		th.Pending = nil
		if !step.HasOnTimeout {
			r.raise(th, ErrorInfo{Type: ErrTypeTimeout, Message: fmt.Sprintf("step %s: %s before the timeout", step.ID, missing(step, p))})
			return nil
		}
		r.advance(th)
		r.push(th, step.OnTimeoutBlock)
		r.enqueue(th)
	case WaitRetry:
		step, err := r.activityStep(th)
		if err != nil {
			return err
		}
		th.Pending = nil
		r.enqueue(th)
		return r.schedule(th, step, p.Attempt+1, p.FirstAttempt)
	case WaitChild:
		step, ok := r.current(th)
		call, isCall := step.(*dsl.CallStep)
		if !ok || !isCall {
			return fmt.Errorf("thread %q: cursor does not point at the call step %q", th.ID, p.StepID)
		}
		p.TimerID, p.Deadline = "", nil
		r.startChild(th, call, p)
	case WaitActivity:
		// The activity's start-to-close timeout: a retryable failure.
		p.TimerID = ""
		return r.activityFailed(th, ErrorInfo{
			Type:      ErrTypeActTimeout,
			Message:   fmt.Sprintf("activity %s did not finish within its timeout", p.Activity),
			Retryable: true,
		})
	}
	return nil
}

// missing says which events a wait that timed out did not get.
func missing(s *dsl.WaitStep, p *Pending) string {
	switch {
	case s.Event != "":
		return fmt.Sprintf("event %q did not arrive", s.Event)
	case s.All:
		return fmt.Sprintf("events %s did not all arrive (missing %s)", quoteAll(s.Events), quoteAll(p.Events))
	}
	return fmt.Sprintf("none of the events %s arrived", quoteAll(s.Events))
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// exec runs one step of a thread; the thread's cursor points at it.
func (r *run) exec(th *Thread, step dsl.Step) error {
	switch s := step.(type) {
	case *dsl.SetStep:
		for _, a := range s.Vars {
			v, err := a.Value.Eval(r.env(th))
			if err != nil {
				r.raise(th, r.exprError(step, err))
				return nil
			}
			r.setVar(th, a.Name, v)
		}
		if r.checkVars(th, step) {
			r.advance(th)
		}
		return nil

	case *dsl.SetStatusStep:
		r.setStatus(th, s)
		return nil

	case *dsl.SwitchStep:
		for _, c := range s.Cases {
			ok, err := c.When.Eval(r.env(th))
			if err != nil {
				r.raise(th, r.exprError(step, err))
				return nil
			}
			if ok {
				r.advance(th)
				r.push(th, c.Block)
				return nil
			}
		}
		r.advance(th)
		if s.HasDefault {
			r.push(th, s.DefaultBlock)
		}
		return nil

	case *dsl.ReturnStep:
		var out any
		if s.Value != nil {
			v, err := s.Value.Eval(r.env(th))
			if err != nil {
				r.raise(th, r.exprError(step, err))
				return nil
			}
			out = v
		}
		if th != r.main {
			r.raise(th, ErrorInfo{Type: ErrTypeDefinition, Message: fmt.Sprintf("step %s: return inside a branch", s.ID)})
			return nil
		}
		r.complete(s, out)
		return nil

	case *dsl.FailStep:
		info := ErrorInfo{Type: ErrTypeFail, Message: "the workflow failed", StepID: s.ID}
		parts := []*dsl.Value{s.Error, s.Message, s.Data}
		vals := make([]any, len(parts))
		for i, v := range parts {
			if v == nil {
				continue
			}
			x, err := v.Eval(r.env(th))
			if err != nil {
				r.raise(th, r.exprError(step, err))
				return nil
			}
			vals[i] = x
		}
		if s.Error != nil {
			info.Type = fmt.Sprint(vals[0])
		}
		if s.Message != nil {
			info.Message = fmt.Sprint(vals[1])
		}
		if s.Data != nil {
			info.Data = JSONText(mustJSON(vals[2]))
		}
		r.raise(th, info)
		return nil

	case *dsl.ActivityStep:
		return r.schedule(th, s, 1, r.now)

	case *dsl.WaitStep:
		return r.wait(th, s)

	case *dsl.WhileStep:
		top := &th.Cursor[len(th.Cursor)-1]
		ok, err := s.Condition.Eval(r.env(th))
		if err != nil {
			r.raise(th, r.exprError(step, err))
			return nil
		}
		if !ok {
			r.advance(th)
			return nil
		}
		if top.Iter >= s.Max {
			r.raise(th, ErrorInfo{Type: ErrTypeLoopLimit, Message: fmt.Sprintf("step %s: the loop ran its %d iterations (max) and its condition still holds", s.ID, s.Max)})
			return nil
		}
		top.Iter++
		r.push(th, s.Block)
		return nil

	case *dsl.TryStep:
		r.advance(th)
		r.push(th, s.Block)
		return nil

	case *dsl.ForEachStep:
		return r.forEach(th, s)

	case *dsl.ParallelStep:
		r.fork(th, s, len(s.Branches), len(s.Branches), nil)
		return nil

	case *dsl.ContinueAsNewStep:
		return r.continueAsNew(th, s)

	case *dsl.CallStep:
		r.st.Seq++
		p := &Pending{Kind: WaitChild, StepID: s.ID, Child: InstanceID(fmt.Sprintf("%s:%d", r.st.ID, r.st.Seq))}
		r.history(HistoryEvent{Type: "ChildScheduled", StepID: s.ID, Name: string(p.Child)})
		r.startChild(th, s, p)
		return nil
	}
	return fmt.Errorf("step %s: unknown step type %T", step.Base().ID, step)
}

func (r *run) setStatus(th *Thread, s *dsl.SetStatusStep) {
	v, err := s.Value.Eval(r.env(th))
	if err != nil {
		r.raise(th, r.exprError(s, err))
		return
	}
	statusErr := func(format string, args ...any) {
		r.raise(th, ErrorInfo{Type: ErrTypeStatus, Message: fmt.Sprintf("step %s: ", s.ID) + fmt.Sprintf(format, args...)})
	}
	size, err := dsl.StatusSize(v)
	if err != nil {
		statusErr("%v", err)
		return
	}
	if size > dsl.MaxStatusBytes {
		statusErr("custom status is %d bytes of UTF-16 JSON; the limit is %d", size, dsl.MaxStatusBytes)
		return
	}
	raw, err := json.Marshal(v)
	if err != nil {
		statusErr("custom status is not JSON: %v", err)
		return
	}
	if r.def.Status != nil {
		if err := r.def.Status.Validate(v); err != nil {
			statusErr("custom status does not satisfy the workflow's status schema: %v", err)
			return
		}
	}
	r.st.CustomStatus = raw
	r.history(HistoryEvent{Type: "CustomStatusUpdated", StepID: s.ID, Data: raw})
	r.advance(th)
}

// schedule enqueues attempt n of an activity step and waits for it.
func (r *run) schedule(th *Thread, s *dsl.ActivityStep, attempt int, first time.Time) error {
	var input any
	if s.Input != nil {
		v, err := s.Input.Eval(r.env(th))
		if err != nil {
			r.raise(th, r.exprError(s, err))
			return nil
		}
		input = v
	}
	raw, err := json.Marshal(input)
	if err != nil {
		r.raise(th, ErrorInfo{Type: ErrTypeExpression, Message: fmt.Sprintf("step %s: activity input is not JSON: %v", s.ID, err)})
		return nil
	}
	task := r.newID('t')
	opts := r.def.Activities[s.Activity]
	queue := s.Activity
	var timeout time.Duration
	if opts != nil {
		timeout = opts.Timeout
		if opts.Binding != nil && opts.Binding.Kind != dsl.BindWorker {
			queue = LocalQueue
		}
	}
	if queue != LocalQueue && (opts == nil || opts.Binding == nil) && r.in.opts.LocalActivity != nil && r.in.opts.LocalActivity(s.Activity) {
		queue = LocalQueue
	}
	p := &Pending{Kind: WaitActivity, StepID: s.ID, Activity: s.Activity, TaskID: task, Attempt: attempt, FirstAttempt: first}
	if timeout > 0 {
		due := r.now.Add(timeout)
		p.TimerID = r.newTimer(th, due)
		p.Deadline = &due
	}
	th.Pending = p
	r.tr.Commands = append(r.tr.Commands, &ScheduleTask{
		TaskID: task, Instance: r.st.ID, Activity: s.Activity, Input: raw, Attempt: attempt,
		StepID: s.ID, DefHash: r.def.Hash, Workflow: r.def.Name, Queue: queue, Timeout: timeout,
	})
	r.history(HistoryEvent{Type: "TaskScheduled", StepID: s.ID, Name: s.Activity, Data: raw, Attempt: attempt})
	return nil
}

// wait handles a wait step: consume buffered events, or block.
func (r *run) wait(th *Thread, s *dsl.WaitStep) error {
	if s.Event != "" || len(s.Events) > 0 {
		p := &Pending{Kind: WaitEvent, StepID: s.ID, Event: s.Event, All: s.All}
		p.Events = append(p.Events, s.Events...)
		if s.All && s.Result != "" {
			r.setVar(th, s.Result, map[string]any{})
		}
		for i := 0; i < len(r.st.Buffered); {
			b := r.st.Buffered[i]
			if !p.waitsFor(b.Name) {
				i++
				continue
			}
			r.st.Buffered = append(r.st.Buffered[:i:i], r.st.Buffered[i+1:]...)
			if r.receive(th, s, p, b.Name, b.Data) {
				if r.checkVars(th, s) {
					r.advance(th)
				}
				return nil
			}
		}
		if s.Timeout != nil {
			d, err := r.duration(th, s.Timeout)
			if err != nil {
				r.raise(th, r.exprError(s, err))
				return nil
			}
			due := r.now.Add(d)
			p.TimerID = r.newTimer(th, due)
			p.Deadline = &due
		}
		th.Pending = p
		return nil
	}
	var due time.Time
	switch {
	case s.Duration != nil:
		d, err := r.duration(th, s.Duration)
		if err != nil {
			r.raise(th, r.exprError(s, err))
			return nil
		}
		due = r.now.Add(d)
	case s.Until != nil:
		v, err := s.Until.Eval(r.env(th))
		if err == nil {
			due, err = dsl.ToTime(v)
		}
		if err != nil {
			r.raise(th, r.exprError(s, err))
			return nil
		}
	default:
		return fmt.Errorf("step %s: wait has neither event nor timer", s.ID)
	}
	if !due.After(r.now) {
		r.advance(th)
		return nil
	}
	due = due.UTC()
	th.Pending = &Pending{Kind: WaitTimer, StepID: s.ID, Deadline: &due}
	th.Pending.TimerID = r.newTimer(th, due)
	return nil
}

// receive gives an event to an event wait and reports whether the wait is
// over: at once for `event` and `any`, with the last missing one for `all`.
func (r *run) receive(th *Thread, s *dsl.WaitStep, p *Pending, name string, data json.RawMessage) bool {
	switch {
	case s.Event != "":
		if s.Result != "" {
			r.setVar(th, s.Result, decodeJSON(data))
		}
		return true
	case !s.All:
		if s.Result != "" {
			r.setVar(th, s.Result, map[string]any{"event": name, "data": decodeJSON(data)})
		}
		return true
	}
	for i, e := range p.Events {
		if e == name {
			p.Events = append(p.Events[:i:i], p.Events[i+1:]...)
			break
		}
	}
	p.Got = append(p.Got, name)
	if s.Result != "" {
		got, _ := r.view(th)[s.Result].(map[string]any)
		next := make(map[string]any, len(got)+1)
		for k, v := range got {
			next[k] = v
		}
		next[name] = decodeJSON(data)
		r.setVar(th, s.Result, next)
	}
	return len(p.Events) == 0
}

func (r *run) duration(th *Thread, v *dsl.Value) (time.Duration, error) {
	x, err := v.Eval(r.env(th))
	if err != nil {
		return 0, err
	}
	d, err := dsl.ToDuration(x)
	if err != nil {
		return 0, &dsl.EvalError{Pos: v.Pos, Err: err}
	}
	if d < 0 {
		return 0, &dsl.EvalError{Pos: v.Pos, Err: fmt.Errorf("negative duration %s", d)}
	}
	return d, nil
}

// startChild asks for the child a call step waits for, and for a check
// later.
func (r *run) startChild(th *Thread, s *dsl.CallStep, p *Pending) {
	var input any
	if s.Input != nil {
		v, err := s.Input.Eval(r.env(th))
		if err != nil {
			r.raise(th, r.exprError(s, err))
			return
		}
		input = v
	}
	raw := mustJSON(input)
	if string(raw) == "null" {
		raw = nil
	}
	r.tr.Commands = append(r.tr.Commands, &StartChild{ID: p.Child, Parent: r.st.ID, Workflow: s.Workflow, Input: raw})
	delay := childCheck << min(p.Attempt, 10)
	if delay > childCheckMax {
		delay = childCheckMax
	}
	p.Attempt++
	due := r.now.Add(delay)
	th.Pending = p
	p.TimerID = r.newTimer(th, due)
	p.Deadline = &due
}

// childEnded applies the end of a child to the call step waiting for it.
func (r *run) childEnded(ev Event) (bool, error) {
	var res ChildResult
	if err := json.Unmarshal(ev.Data, &res); err != nil || res.Child == "" {
		return false, nil
	}
	th := r.find(func(p *Pending) bool { return p.Kind == WaitChild && p.Child == res.Child })
	if th == nil || r.st.Status != StatusRunning {
		return false, nil // a repeated notice, or for a call no longer waiting
	}
	step, _ := r.current(th)
	call, ok := step.(*dsl.CallStep)
	if !ok {
		return false, fmt.Errorf("thread %q: cursor does not point at the call step %q", th.ID, th.Pending.StepID)
	}
	r.cancelTimer(th)
	th.Pending = nil
	switch res.Status {
	case StatusCompleted:
		r.history(HistoryEvent{Type: "ChildCompleted", StepID: call.ID, Name: string(res.Child), Data: res.Output})
		if call.Result != "" {
			r.setVar(th, call.Result, decodeJSON(res.Output))
		}
		if r.checkVars(th, call) {
			r.advance(th)
		}
		r.enqueue(th)
	default:
		r.history(HistoryEvent{Type: "ChildFailed", StepID: call.ID, Name: string(res.Child), Data: res.Output})
		info := ErrorInfo{Type: ErrTypeChild, StepID: call.ID, Data: JSONText(res.Output)}
		if res.Status == StatusTerminated {
			info.Message = fmt.Sprintf("step %s: child %s (%s) was terminated: %s", call.ID, res.Child, call.Workflow, decodeJSON(res.Output))
		} else {
			var ce ErrorInfo
			json.Unmarshal(res.Output, &ce)
			info.Message = fmt.Sprintf("step %s: child %s (%s) failed: %s: %s", call.ID, res.Child, call.Workflow, ce.Type, ce.Message)
		}
		r.raise(th, info)
	}
	return true, r.runQueue()
}

// continueAsNew restarts the instance with a new input: no variables, the
// cursor at the first step, the same id, buffered events and custom status.
func (r *run) continueAsNew(th *Thread, s *dsl.ContinueAsNewStep) error {
	var input any
	if s.Input != nil {
		v, err := s.Input.Eval(r.env(th))
		if err != nil {
			r.raise(th, r.exprError(s, err))
			return nil
		}
		input = v
	}
	if th != r.main {
		r.raise(th, ErrorInfo{Type: ErrTypeDefinition, Message: fmt.Sprintf("step %s: continueAsNew inside a branch", s.ID)})
		return nil
	}
	raw := mustJSON(input)
	if string(raw) == "null" {
		raw = nil
	}
	r.stopAll()
	r.st.Input = raw
	r.haveInput = false
	r.st.Generation++
	r.main.Vars = nil
	r.views = map[string]map[string]any{}
	r.main.Cursor = []Frame{{Block: "", Index: 0}}
	r.history(HistoryEvent{Type: "ContinuedAsNew", StepID: s.ID, Data: raw})
	r.startTimeout()
	return nil
}

// startTimeout starts the workflow's timeout timer, if it has one.
func (r *run) startTimeout() {
	if r.def.Timeout <= 0 {
		return
	}
	due := r.now.Add(r.def.Timeout).UTC()
	id := r.newID('w')
	r.tr.Commands = append(r.tr.Commands, &StartTimer{ID: id, Due: due})
	r.history(HistoryEvent{Type: "TimerCreated", Name: id, Data: mustJSON(due.Format(time.RFC3339Nano))})
	r.st.Timeout = &Timer{ID: id, Due: due}
}

// newID allocates a task ('t') or timer ('w') id: the instance's next
// sequence number and its created time, so no task or timer of an earlier
// incarnation of the id (finished, then started again; its task may still
// run, its fired timer may still be queued) can pass for one of this
// incarnation.
func (r *run) newID(kind byte) string {
	r.st.Seq++
	return string(kind) + strconv.FormatInt(r.st.Seq, 10) + "." + strconv.FormatInt(r.st.CreatedTime.UnixMilli(), 36)
}

// newTimer allocates a timer id and the command that starts it.
func (r *run) newTimer(th *Thread, due time.Time) string {
	id := r.newID('w')
	r.tr.Commands = append(r.tr.Commands, &StartTimer{ID: id, Due: due.UTC()})
	r.history(HistoryEvent{Type: "TimerCreated", StepID: r.currentStepID(th), Name: id, Data: mustJSON(due.UTC().Format(time.RFC3339Nano))})
	return id
}

// cancelTimer cancels the timer a thread waits on, if any.
func (r *run) cancelTimer(th *Thread) {
	if p := th.Pending; p != nil && p.TimerID != "" && p.Deadline != nil {
		r.tr.Commands = append(r.tr.Commands, &CancelTimer{ID: p.TimerID, Due: *p.Deadline})
		p.TimerID = ""
	}
}

func (r *run) complete(s *dsl.ReturnStep, out any) {
	raw, err := json.Marshal(out)
	if err != nil {
		r.failInstance(ErrorInfo{Type: ErrTypeExpression, Message: fmt.Sprintf("output is not JSON: %v", err)})
		return
	}
	if string(raw) == "null" {
		raw = nil
	}
	r.stopAll()
	r.st.Status = StatusCompleted
	r.st.Output = raw
	h := HistoryEvent{Type: "ExecutionCompleted", Data: raw}
	if s != nil {
		h.StepID = s.ID
	}
	r.history(h)
}

func (r *run) history(h HistoryEvent) {
	if h.Timestamp.IsZero() {
		h.Timestamp = r.now
	}
	r.tr.History = append(r.tr.History, h)
}
